"""Conversion of array-likes to float32 (called by the native module for anything that is not
already a C-contiguous float32 ndarray)."""

from __future__ import annotations

from typing import Any

import numpy as np


def as_f32(a: Any) -> "np.ndarray":
    """``a`` as a C-contiguous float32 array. Values too large for float32 become inf, which the
    library then rejects as non-finite (naming the row and component)."""
    with np.errstate(over="ignore", invalid="ignore"):
        try:
            arr = np.asarray(a, dtype=np.float32)
        except (TypeError, ValueError) as e:
            err = ValueError(f"not a numeric vector/matrix: {e}")
            err.status = 2  # type: ignore[attr-defined]
            raise err from None
    return np.ascontiguousarray(arr)


def _bad(message: str) -> ValueError:
    err = ValueError(message)
    err.status = 2  # type: ignore[attr-defined]
    return err


def as_labels(labels: Any, n: int = -1) -> "np.ndarray":
    """``labels`` (an integer, or a 1-D sequence or array of integers in ``[0, 2**64)``) as a
    C-contiguous uint64 array; ``n >= 0`` is the number required (one per vector)."""
    if isinstance(labels, (bool, np.bool_)):
        raise _bad(f"labels must be integers, got {labels!r}")
    try:
        arr = np.asarray(labels)
    except (TypeError, ValueError) as e:
        raise _bad(f"labels must be integers: {e}") from None
    if not isinstance(labels, np.ndarray) and arr.dtype.kind == "f":
        # Python ints beyond int64 make NumPy choose float64: take them one by one.
        arr = np.asarray(labels, dtype=object)
    if arr.ndim == 0:
        arr = arr.reshape(1)
    if arr.ndim != 1:
        raise _bad(f"labels must be 1-D (one integer per vector), got shape {arr.shape}")
    if n >= 0 and arr.shape[0] != n:
        raise _bad(f"{arr.shape[0]} labels for {n} vectors (one label per vector)")
    if arr.shape[0] == 0:
        return np.zeros(0, dtype=np.uint64)
    kind = arr.dtype.kind
    if kind == "O":
        import operator

        items = arr.tolist()
        bad_type = [
            x for x in items if isinstance(x, (bool, np.bool_)) or not hasattr(x, "__index__")
        ]
        if bad_type:
            raise _bad(f"labels must be integers, got {bad_type[0]!r}")
        vals = [operator.index(x) for x in items]
        bad = [x for x in vals if x < 0 or x >= 2**64]
        if bad:
            raise _bad(f"labels must be in [0, 2**64), got {bad[0]}")
        return np.array(vals, dtype=np.uint64)
    if kind not in "iu":
        raise _bad(f"labels must be integers, got dtype {arr.dtype}")
    if kind == "i" and int(arr.min()) < 0:
        raise _bad(f"labels must be >= 0, got {int(arr.min())}")
    return np.ascontiguousarray(arr, dtype=np.uint64)
