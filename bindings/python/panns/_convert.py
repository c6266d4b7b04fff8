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
