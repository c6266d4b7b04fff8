"""panns: approximate nearest-neighbour search (Python API of panns 0.x on the Rust ``libpanns``).

Quick start::

    from panns import *
    p1 = PannsIndex(dimension=100, metric='euclidean')
    for i in range(1000):
        p1.add_vector(gaussian_vector(100))
    p1.parallelize(True)
    p1.build(64)
    p1.save('test.idx')
    p2 = PannsIndex(metric='euclidean')
    p2.load('test.idx')
    n = p2.query(gaussian_vector(100), 10)   # [(id, distance), ...]

See :class:`PannsIndex` for the whole API. ``libpanns.so`` is loaded from ``$PANNS_LIBRARY`` when
set, else from this package, else from the system library path.
"""

from ._lib import LIBRARY_PATH as _LIBRARY_PATH
from ._lib import version as _version
from .index import (
    CorruptIndexError,
    PannsIndex,
    UnsupportedError,
    gaussian_vector,
    precision,
    recall,
)

__all__ = [
    "PannsIndex",
    "CorruptIndexError",
    "UnsupportedError",
    "gaussian_vector",
    "precision",
    "recall",
]

#: The version of the loaded ``libpanns`` (the Python package has the same version).
__version__ = _version()
#: Where ``libpanns.so`` was loaded from.
library_path = _LIBRARY_PATH
