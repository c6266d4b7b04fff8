"""The ann-benchmarks definition (bindings/python/ann_benchmarks/panns) driven as ann-benchmarks
drives it, on the shared digits data set (with a stub BaseANN when ann_benchmarks is absent)."""

from __future__ import annotations

import importlib.util
import sys
import types
from pathlib import Path

import numpy as np
import pytest
from conftest import SHARED_DATA

HERE = Path(__file__).resolve().parents[1] / "ann_benchmarks" / "panns"


def _module():
    try:
        import ann_benchmarks.algorithms.base.module  # noqa: F401
    except ImportError:
        for name in ("ann_benchmarks", "ann_benchmarks.algorithms",
                     "ann_benchmarks.algorithms.base", "ann_benchmarks.algorithms.base.module"):
            sys.modules.setdefault(name, types.ModuleType(name))
        sys.modules["ann_benchmarks.algorithms.base.module"].BaseANN = type("BaseANN", (), {})
    spec = importlib.util.spec_from_file_location("panns_annb_module", HERE / "module.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_config_names_the_constructors() -> None:
    text = (HERE / "config.yml").read_text()
    try:
        import yaml  # type: ignore[import-untyped]
    except ImportError:  # without PyYAML: the constructor lines
        ctors = {line.split(":")[1].strip() for line in text.splitlines() if "constructor:" in line}
    else:
        ctors = {e["constructor"] for e in yaml.safe_load(text)["float"]["any"]}
    mod = _module()
    assert ctors == {"Panns", "PannsGraph"} and all(hasattr(mod, c) for c in ctors)


@pytest.mark.parametrize("ctor,args,knob,floor", [("Panns", (16,), 100, 0.8),
                                                  ("PannsGraph", (8, 24), 16, 0.95)])
def test_fit_query_batch_on_digits(ctor: str, args: tuple, knob: int, floor: float) -> None:
    h5py = pytest.importorskip("h5py")
    path = SHARED_DATA / "digits-64-euclidean.hdf5"
    if not path.is_file():
        pytest.skip(f"{path} is absent")
    with h5py.File(path, "r") as f:
        train, test = f["train"][:], f["test"][:]
        gt = f["neighbors"][:, :10]
    algo = getattr(_module(), ctor)("euclidean", *args)
    algo.fit(train)
    algo.set_query_arguments(knob)
    assert str(knob) in algo.name
    single = [algo.query(q, 10) for q in test]
    rec = np.mean([len(set(r) & set(g)) / 10 for r, g in zip(single, gt.tolist())])
    assert rec > floor, rec  # measured 0.89 (trees, budget 100) and 0.99 (graph, beam 16)
    algo.batch_query(test, 10)
    batch = algo.get_batch_results()
    assert [list(r) for r in batch] == single
    algo.freeIndex()
    with pytest.raises(NotImplementedError):
        getattr(_module(), ctor)("hamming", *args)
