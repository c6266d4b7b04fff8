"""Shared fixtures of the panns Python tests."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Tuple

import numpy as np
import pytest

from panns import PannsIndex

#: The repository's shared data sets (../shared/data beside the checkout).
SHARED_DATA = Path(__file__).resolve().parents[3].parent / "shared" / "data"


@pytest.fixture
def rng() -> np.random.Generator:
    """A seeded generator: every test sees the same data."""
    return np.random.default_rng(12345)


@pytest.fixture
def data(rng: np.random.Generator) -> np.ndarray:
    """500 Gaussian vectors of dimension 24."""
    return rng.standard_normal((500, 24)).astype(np.float32)


@pytest.fixture
def built(data: np.ndarray) -> PannsIndex:
    """A Euclidean index over :func:`data` with 16 trees."""
    p = PannsIndex(dimension=data.shape[1], metric="euclidean")
    p.load_matrix(data)
    p.build(16, seed=7)
    yield p
    p.close()


def fixture_dir() -> Path:
    """The cross-language fixture directory (``$PANNS_FIXTURE_DIR``), or skip the test."""
    d = os.environ.get("PANNS_FIXTURE_DIR")
    if not d:
        pytest.skip("PANNS_FIXTURE_DIR is not set: no cross-language fixture to compare against")
    path = Path(d)
    if not (path / "index.panns").is_file():
        pytest.fail(f"PANNS_FIXTURE_DIR={d} has no index.panns")
    return path


def read_meta(path: Path) -> dict:
    """Parses ``meta.txt`` of the fixture (``key=value`` lines)."""
    meta = {}
    for line in (path / "meta.txt").read_text().splitlines():
        if "=" in line:
            key, value = line.split("=", 1)
            meta[key.strip()] = value.strip()
    return meta


def gauss_file(metric: str = "angular") -> Path:
    """The shared 5000×200 Gaussian data set, or skip the test."""
    path = SHARED_DATA / f"gauss-5000x200-{metric}.hdf5"
    if not path.is_file():
        pytest.skip(f"{path} is absent (shared data sets are not available here)")
    return path


def exact_knn(
    data: np.ndarray, q: np.ndarray, k: int, metric: str
) -> Tuple[np.ndarray, np.ndarray]:
    """Brute-force k-NN in NumPy (float64), for checking the library."""
    if metric == "euclidean":
        d = np.sqrt(((data.astype(np.float64) - q) ** 2).sum(axis=1))
    elif metric == "angular":
        x = data / np.linalg.norm(data, axis=1, keepdims=True)
        d = 1.0 - x.astype(np.float64) @ (q / np.linalg.norm(q))
    else:
        d = -(data.astype(np.float64) @ q)
    order = np.lexsort((np.arange(len(d)), d))[:k]
    return order, d[order]
