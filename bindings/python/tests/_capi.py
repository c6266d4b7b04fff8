"""ctypes declarations of the panns C ABI (``include/panns.h``), for the cross-language tests.

The Python package is a native extension over the Rust crates and does not use the C ABI; the
tests use this module to check that an index written from Python opens through ``libpanns.so``
(``$PANNS_LIBRARY``, set by ``bindings/python/test.sh``). Importing it raises
``unittest.SkipTest`` (a pytest skip) when ``$PANNS_LIBRARY`` is not set.
"""

from __future__ import annotations

import ctypes
import os
from ctypes import POINTER, c_char_p, c_float, c_int32, c_size_t, c_uint32, c_uint64

__all__ = [
    "LIB",
    "LIBRARY_PATH",
    "PannsBuildOptions",
    "BuilderPtr",
    "IndexPtr",
    "STATUS_NAMES",
    "OK",
    "NULL_POINTER",
    "INVALID_ARGUMENT",
    "DIMENSION_MISMATCH",
    "NON_FINITE",
    "ZERO_VECTOR",
    "EMPTY",
    "IO",
    "CORRUPT",
    "UNSUPPORTED",
    "OUT_OF_RANGE",
    "BUFFER_TOO_SMALL",
    "PANIC",
    "EUCLIDEAN",
    "ANGULAR",
    "DOT",
    "OPEN_VERIFY",
    "last_error_message",
]

# PannsStatus (an int32-sized C enum).
OK = 0
NULL_POINTER = 1
INVALID_ARGUMENT = 2
DIMENSION_MISMATCH = 3
NON_FINITE = 4
ZERO_VECTOR = 5
EMPTY = 6
IO = 7
CORRUPT = 8
UNSUPPORTED = 9
OUT_OF_RANGE = 10
BUFFER_TOO_SMALL = 11
PANIC = 12

#: Symbolic names of the status codes, for messages.
STATUS_NAMES = {
    OK: "PANNS_OK",
    NULL_POINTER: "PANNS_NULL_POINTER",
    INVALID_ARGUMENT: "PANNS_INVALID_ARGUMENT",
    DIMENSION_MISMATCH: "PANNS_DIMENSION_MISMATCH",
    NON_FINITE: "PANNS_NON_FINITE",
    ZERO_VECTOR: "PANNS_ZERO_VECTOR",
    EMPTY: "PANNS_EMPTY",
    IO: "PANNS_IO",
    CORRUPT: "PANNS_CORRUPT",
    UNSUPPORTED: "PANNS_UNSUPPORTED",
    OUT_OF_RANGE: "PANNS_OUT_OF_RANGE",
    BUFFER_TOO_SMALL: "PANNS_BUFFER_TOO_SMALL",
    PANIC: "PANNS_PANIC",
}

# PannsMetric.
EUCLIDEAN = 0
ANGULAR = 1
DOT = 2

#: Flag of ``panns_index_open``: verify the file's checksum before use.
OPEN_VERIFY = 1


class PannsBuildOptions(ctypes.Structure):
    """``PannsBuildOptions``: the parameters of ``panns_builder_build`` (header field order)."""

    _fields_ = [
        ("n_trees", c_uint32),
        ("leaf_size", c_uint32),
        ("pool_size", c_uint32),
        ("candidates", c_uint32),
        ("split", c_uint32),
        ("threads", c_uint32),
        ("seed", c_uint64),
    ]


class _OpaqueBuilder(ctypes.Structure):
    """The opaque ``PannsBuilder`` (only ever handled through a pointer)."""


class _OpaqueIndex(ctypes.Structure):
    """The opaque ``PannsIndex`` (only ever handled through a pointer)."""


#: ``PannsBuilder *``
BuilderPtr = POINTER(_OpaqueBuilder)
#: ``PannsIndex *``
IndexPtr = POINTER(_OpaqueIndex)

_Status = c_int32
_FloatPtr = POINTER(c_float)
_U32Ptr = POINTER(c_uint32)
_SizePtr = POINTER(c_size_t)


def _load() -> "tuple[ctypes.CDLL, str]":
    """Loads ``$PANNS_LIBRARY`` (skips the importing test module when it is not set)."""
    path = os.environ.get("PANNS_LIBRARY")
    if not path:
        import unittest

        raise unittest.SkipTest("PANNS_LIBRARY is not set: no libpanns.so to check the C ABI with")
    return ctypes.CDLL(path), path


LIB, LIBRARY_PATH = _load()


def _declare(name: str, restype, argtypes) -> None:
    """Sets the result and argument types of one foreign function."""
    fn = getattr(LIB, name)
    fn.restype = restype
    fn.argtypes = argtypes


_declare("panns_version", c_char_p, [])
_declare("panns_last_error_message", c_char_p, [])
_declare("panns_build_options_default", PannsBuildOptions, [])

_declare("panns_builder_new", _Status, [c_uint32, c_uint32, POINTER(BuilderPtr)])
_declare("panns_builder_add", _Status, [BuilderPtr, _FloatPtr, c_size_t, _U32Ptr])
_declare("panns_builder_add_batch", _Status, [BuilderPtr, _FloatPtr, c_size_t, c_size_t])
_declare("panns_builder_add_file", _Status, [BuilderPtr, c_char_p, c_char_p, _SizePtr])
_declare("panns_builder_len", c_size_t, [BuilderPtr])
_declare(
    "panns_builder_build", _Status, [BuilderPtr, POINTER(PannsBuildOptions), POINTER(IndexPtr)]
)
_declare("panns_builder_free", None, [BuilderPtr])

_declare("panns_index_save", _Status, [IndexPtr, c_char_p])
_declare("panns_index_open", _Status, [c_char_p, c_uint32, POINTER(IndexPtr)])
_declare("panns_index_free", None, [IndexPtr])

_declare("panns_index_len", c_size_t, [IndexPtr])
_declare("panns_index_dim", c_uint32, [IndexPtr])
_declare("panns_index_metric", c_uint32, [IndexPtr])
_declare("panns_index_n_trees", c_size_t, [IndexPtr])
_declare("panns_index_graph_degree", c_uint32, [IndexPtr])
_declare("panns_index_build_graph", _Status, [IndexPtr, c_uint32, c_uint32])

_declare(
    "panns_index_search",
    _Status,
    [IndexPtr, _FloatPtr, c_size_t, c_size_t, c_size_t, _U32Ptr, _FloatPtr, _SizePtr],
)
_declare(
    "panns_index_linear_search",
    _Status,
    [IndexPtr, _FloatPtr, c_size_t, c_size_t, _U32Ptr, _FloatPtr, _SizePtr],
)
_declare(
    "panns_index_search_batch",
    _Status,
    [IndexPtr, _FloatPtr, c_size_t, c_size_t, c_size_t, c_size_t, _U32Ptr, _FloatPtr],
)
_declare("panns_index_get_vector", _Status, [IndexPtr, c_uint32, _FloatPtr, c_size_t])


def last_error_message() -> str:
    """The calling thread's message of the last failed panns call (``""`` after a success)."""
    raw = LIB.panns_last_error_message()
    return raw.decode("utf-8", errors="replace") if raw else ""


def version() -> str:
    """The version string of the loaded ``libpanns``."""
    raw = LIB.panns_version()
    return raw.decode("utf-8", errors="replace") if raw else ""
