#!/usr/bin/env python3
"""The peer harness (../shared/bench/run_peers.py) with four more libraries, panns stored as 8-bit
codes: ``panns-i8`` (trees only) and ``panns-graph-i8`` (with the graph), built exactly like
``panns`` and ``panns-graph`` but with ``PannsIndex(dimension, metric, dtype='i8')``, and
``panns-i8f32`` / ``panns-graph-i8f32`` with ``dtype='i8+f32'`` (codes walked, f32 re-ranked). Everything
else (the workers, the timing protocol: one query per call, one thread, through the Python package;
the recall computation; the CSV) is the harness's own code.

    python bindings/python/benches/peers_dtype.py DATA.hdf5 \\
        --libs panns-graph,panns-graph-i8,hnswlib --queries 500 --point-seconds 1.5

Install panns into the harness venv first (``pip install ./bindings/python``). The harness is
found at ``$PANNS_SHARED_BENCH`` or ``../shared/bench`` beside the repository.
"""
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
SHARED = os.environ.get(
    "PANNS_SHARED_BENCH", os.path.join(HERE, "..", "..", "..", "..", "shared", "bench")
)
sys.path.insert(0, os.path.abspath(SHARED))
import run_peers as rp  # noqa: E402


class PannsI8(rp.Panns):
    """panns with its vectors stored as 8-bit codes."""

    DTYPE = "i8"

    def __init__(self, metric, dim, n_trees, graph_degree=0):
        import panns

        self.p = panns.PannsIndex(dimension=dim, metric=metric, dtype=self.DTYPE)
        self.n_trees, self.graph_degree = n_trees, graph_degree


class PannsI8F32(PannsI8):
    """panns with 8-bit codes and the f32 vectors beside them (walk on codes, re-rank f32)."""

    DTYPE = "i8+f32"


rp.PEERS["panns-i8"] = rp.PEERS["panns-graph-i8"] = PannsI8
rp.PEERS["panns-i8f32"] = rp.PEERS["panns-graph-i8f32"] = PannsI8F32
_grids = rp.grids


def grids(n, metric):
    g = _grids(n, metric)
    if n >= 500_000:
        # hnswlib's grid reaches M 32 (64 links per item at its bottom layer): at a
        # million items give the graph a degree of 48 too.
        builds, knobs = g["panns-graph"]
        wide = [b for b in builds if b.get("graph_degree") == 32]
        g["panns-graph"] = (builds + [dict(b, graph_degree=48) for b in wide], knobs)
    g["panns-i8"], g["panns-graph-i8"] = g["panns"], g["panns-graph"]
    g["panns-i8f32"], g["panns-graph-i8f32"] = g["panns"], g["panns-graph"]
    return g


rp.grids = grids
_version = rp.lib_version
rp.lib_version = lambda lib: _version("panns" if lib.startswith("panns") else lib)
# The harness starts each worker as `python <its __file__> --worker ...`: point that at this
# script, so the workers know the two libraries too.
rp.__file__ = os.path.abspath(__file__)

if __name__ == "__main__":
    rp.main()
