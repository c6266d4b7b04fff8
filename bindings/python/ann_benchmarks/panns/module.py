"""ann-benchmarks algorithm definition of panns (copy this directory to
``ann_benchmarks/algorithms/panns`` of an ann-benchmarks checkout).

Two constructors: ``Panns`` (a forest of random-projection trees; the query knob is the number
of candidates re-ranked) and ``PannsGraph`` (trees + neighbour graph; the knob is the beam
width, like HNSW's ``ef``). Builds use one thread, as the benchmark's other single-thread
entries; single queries run one at a time, ``batch_query`` on all cores.
"""

from __future__ import annotations

import numpy as np

import panns

try:
    from ..base.module import BaseANN
except ImportError:  # outside an ann-benchmarks checkout (the tests)
    from ann_benchmarks.algorithms.base.module import BaseANN  # type: ignore[no-redef]

_METRICS = {"euclidean": "euclidean", "angular": "angular"}


class Panns(BaseANN):
    """Trees only: ``Panns(metric, n_trees)``; query argument: the budget."""

    graph_degree = 0

    def __init__(self, metric: str, n_trees: int) -> None:
        if metric not in _METRICS:
            raise NotImplementedError(f"panns does not support the {metric} metric")
        self._metric = _METRICS[metric]
        self._n_trees = int(n_trees)
        self._budget = 0
        self._index: "panns.PannsIndex | None" = None
        self._batch = None
        self.name = f"panns(n_trees={n_trees})"

    def fit(self, X: np.ndarray) -> None:
        p = panns.PannsIndex(dimension=X.shape[1], metric=self._metric)
        p.load_matrix(np.ascontiguousarray(X, dtype=np.float32))
        p.parallelize(False)
        p.build(self._n_trees, graph_degree=self.graph_degree)
        self._index = p

    def set_query_arguments(self, budget: int) -> None:
        self._budget = int(budget)
        self.name = f"{self._describe()}, budget={budget})"

    def _describe(self) -> str:
        return f"panns(n_trees={self._n_trees}"

    def query(self, v: np.ndarray, n: int) -> "list[int]":
        q = np.ascontiguousarray(v, dtype=np.float32)
        return self._index.query(q, n, self._budget, include_distances=False)

    def batch_query(self, X: np.ndarray, n: int) -> None:
        q = np.ascontiguousarray(X, dtype=np.float32)
        self._batch = self._index.query(q, n, self._budget, include_distances=False)

    def get_batch_results(self) -> np.ndarray:
        return self._batch

    def freeIndex(self) -> None:  # noqa: N802 - the ann-benchmarks name
        if self._index is not None:
            self._index.close()
        self._index = None

    def __str__(self) -> str:
        return self.name


class PannsGraph(Panns):
    """Trees + neighbour graph: ``PannsGraph(metric, n_trees, graph_degree)``; query argument:
    the beam width."""

    def __init__(self, metric: str, n_trees: int, graph_degree: int) -> None:
        super().__init__(metric, n_trees)
        self.graph_degree = int(graph_degree)
        self.name = f"panns-graph(n_trees={n_trees}, degree={graph_degree})"

    def _describe(self) -> str:
        return f"panns-graph(n_trees={self._n_trees}, degree={self.graph_degree}"
