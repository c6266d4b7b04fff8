"""The neighbour graph: build(graph_degree=...), build_graph(), graph_degree, save/load."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest

from panns import PannsIndex


def _clustered(rng: np.random.Generator) -> "tuple[np.ndarray, np.ndarray]":
    """2000 points near 20 centres (dimension 16) and 100 queries: stored points + small noise."""
    centres = rng.standard_normal((20, 16)) * 4
    data = centres[rng.integers(0, 20, 2000)] + rng.standard_normal((2000, 16))
    picks = rng.choice(2000, 100, replace=False)
    queries = data[picks] + 0.05 * rng.standard_normal((100, 16))
    return data.astype(np.float32), queries.astype(np.float32)


def _recall(p: PannsIndex, queries: np.ndarray, truth: "list[set[int]]", budget: int) -> float:
    hits = sum(
        len(t & {i for i, _ in p.query(q, 10, budget=budget)}) for q, t in zip(queries, truth)
    )
    return hits / (10 * len(queries))


def test_graph_build_recall_save_load(rng: np.random.Generator, tmp_path: Path) -> None:
    data, queries = _clustered(rng)
    trees = PannsIndex(dimension=16)
    trees.load_matrix(data)
    trees.build(16, seed=1)
    assert trees.graph_degree == 0

    graph = PannsIndex(dimension=16)
    assert graph.graph_degree == 0  # not built yet
    graph.load_matrix(data)
    graph.build(16, seed=1, graph_degree=16)
    assert graph.graph_degree == 16 and graph.n_trees == 16 and len(graph) == 2000

    truth = [{i for i, _ in trees.linear_search(q, 10)} for q in queries]
    r_trees = _recall(trees, queries, truth, 40)
    r_graph = _recall(graph, queries, truth, 40)
    assert r_graph >= r_trees, f"graph recall {r_graph:.3f} < trees-only {r_trees:.3f}"
    assert r_graph >= 0.9, f"graph recall@10 at budget 40 = {r_graph:.3f}"

    # build_graph() adds (or replaces) the graph of an index built in memory; default degree 24
    trees.build_graph()
    assert trees.graph_degree == 24
    trees.build_graph(8, threads=1)
    assert trees.graph_degree == 8

    # the graph built on exact distances throughout is another graph of the same quality
    exact = PannsIndex(dimension=16)
    exact.load_matrix(data)
    exact.build(16, seed=1, graph_degree=16, exact_graph_build=True)
    assert exact.to_bytes() != graph.to_bytes()
    assert _recall(exact, queries, truth, 40) >= 0.9
    exact.build_graph(16, exact_graph_build=True)
    assert exact.to_bytes() != graph.to_bytes()
    exact.build_graph(16)
    assert exact.to_bytes() == graph.to_bytes()
    exact.close()

    # save/load keeps the graph, and the loaded index answers the same
    path = tmp_path / "graph.idx"
    graph.save(path)
    loaded = PannsIndex()
    loaded.load(path)
    assert loaded.graph_degree == 16
    for q in queries[:20]:
        assert loaded.query(q, 10, budget=40) == graph.query(q, 10, budget=40)
    ids, _ = loaded.query(queries, 10, budget=40)
    assert ids.tolist() == [[i for i, _ in graph.query(q, 10, budget=40)] for q in queries]

    # a graph can be added to an index opened from a file too (it lives in memory beside the
    # mapping until saved); the file is not touched
    before = path.read_bytes()
    loaded.build_graph(8)
    assert loaded.graph_degree == 8 and path.read_bytes() == before
    assert _recall(loaded, queries, truth, 40) >= 0.8
    for p in (trees, graph, loaded):
        p.close()


def test_build_graph_errors(built: PannsIndex) -> None:
    with pytest.raises(RuntimeError):
        PannsIndex(dimension=4).build_graph()  # nothing built
    with pytest.raises(ValueError) as e:
        built.build_graph(100000)  # above the library's maximum degree
    assert e.value.status == 2 and built.graph_degree == 0
    with pytest.raises(ValueError):
        built.build_graph(-1)


def test_build_with_bad_graph_degree_keeps_the_forest(data: np.ndarray) -> None:
    p = PannsIndex(dimension=data.shape[1])
    p.load_matrix(data)
    with pytest.raises(ValueError) as e:
        p.build(4, graph_degree=100000)
    assert e.value.status == 2
    assert p.n_trees == 4 and p.graph_degree == 0 and len(p) == 500
    assert p.query(data[3], 1)[0][0] == 3
    p.close()


def test_build_graph_while_other_threads_search(built: PannsIndex, data: np.ndarray) -> None:
    errors: "list[BaseException]" = []
    stop = threading.Event()

    def search() -> None:
        try:
            while not stop.is_set():
                assert built.query(data[5], 1, budget=20)[0][0] == 5
        except BaseException as exc:  # noqa: BLE001 - reported by the main thread
            errors.append(exc)

    workers = [threading.Thread(target=search) for _ in range(2)]
    for w in workers:
        w.start()
    try:
        for degree in (8, 12, 16):
            built.build_graph(degree)
            assert built.graph_degree == degree
    finally:
        stop.set()
        for w in workers:
            w.join()
    assert not errors, errors
