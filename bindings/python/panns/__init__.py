"""panns: approximate nearest-neighbour search (the panns 0.x Python API, natively over the
Rust crates ``panns-core`` and ``panns-io``).

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

See :class:`PannsIndex` for the whole API and :class:`AnnoyIndex` for a drop-in of Annoy's class.
:class:`ShardedIndex` searches the shard files of a manifest as one index; ``panns.ray``
builds and serves shards on a Ray cluster.
"""

from . import _panns
from ._panns import PreparedFilter, ShardedIndex, build_defaults, write_manifest
from .annoy import AnnoyIndex
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
    "AnnoyIndex",
    "ShardedIndex",
    "PreparedFilter",
    "write_manifest",
    "CorruptIndexError",
    "UnsupportedError",
    "gaussian_vector",
    "precision",
    "recall",
]

#: The package version (the version of the Rust crates it was built from).
__version__: str = _panns.__version__
#: The path of the native extension module.
library_path: str = _panns.__file__
#: ``BUILD_DEFAULTS`` of the Rust library (``panns_core::BuildParams::default()``, graph degree).
BUILD_DEFAULTS = build_defaults()
