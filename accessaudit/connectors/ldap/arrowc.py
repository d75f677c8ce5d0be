"""A polars ``Binary`` column from an offsets array and a data buffer, without a value in Python.

The values of a page of search results are cut out of the response bytes by a compiled loop
(:func:`.ber.gather`) into one contiguous buffer and an offsets array: the Arrow layout of a
``LargeBinary`` array. polars takes such an array through the Arrow C data interface
(arrow.apache.org/docs/format/CDataInterface.html; ``pl.Series`` of an object with
``__arrow_c_array__``, the PyCapsule protocol), building its own views over the buffer and
keeping it, not copying it. The buffers stay referenced here (:data:`_KEPT`) until polars calls
the array's ``release`` callback.

pyarrow is not a dependency; the two C structs are declared with ctypes, as the specification
gives them. The callbacks are kept alive for the life of the process (polars may release a
column at interpreter exit, after this module's globals are gone).
"""

from __future__ import annotations

import ctypes
import itertools
from typing import Any

import numpy as np
import polars as pl


class _Schema(ctypes.Structure):
    pass


class _Array(ctypes.Structure):
    pass


_SchemaRelease = ctypes.CFUNCTYPE(None, ctypes.POINTER(_Schema))
_ArrayRelease = ctypes.CFUNCTYPE(None, ctypes.POINTER(_Array))
_Schema._fields_ = [
    ("format", ctypes.c_char_p),
    ("name", ctypes.c_char_p),
    ("metadata", ctypes.c_char_p),
    ("flags", ctypes.c_int64),
    ("n_children", ctypes.c_int64),
    ("children", ctypes.c_void_p),
    ("dictionary", ctypes.c_void_p),
    ("release", _SchemaRelease),
    ("private_data", ctypes.c_void_p),
]
_Array._fields_ = [
    ("length", ctypes.c_int64),
    ("null_count", ctypes.c_int64),
    ("offset", ctypes.c_int64),
    ("n_buffers", ctypes.c_int64),
    ("n_children", ctypes.c_int64),
    ("buffers", ctypes.c_void_p),
    ("children", ctypes.c_void_p),
    ("dictionary", ctypes.c_void_p),
    ("release", _ArrayRelease),
    ("private_data", ctypes.c_void_p),
]

#: what each exported array's buffers belong to, by its private_data key, until released
_KEPT: dict[int, tuple[Any, ...]] = {}
_KEYS = itertools.count(1)
_FORMAT = b"Z"  # large binary: int64 offsets
_NULLABLE = 2


_NO_SCHEMA_RELEASE = _SchemaRelease()
_NO_ARRAY_RELEASE = _ArrayRelease()


def _release_schema(schema: Any, released: Any = _NO_SCHEMA_RELEASE) -> None:
    schema.contents.release = released


# what the callbacks use is bound as defaults: at interpreter exit polars may release a column
# after this module's globals are cleared
def _release_array(
    array: Any, kept: dict[int, Any] = _KEPT, released: Any = _NO_ARRAY_RELEASE
) -> None:
    kept.pop(array.contents.private_data or 0, None)
    array.contents.release = released


_RELEASE_SCHEMA = _SchemaRelease(_release_schema)
_RELEASE_ARRAY = _ArrayRelease(_release_array)
for _callback in (_RELEASE_SCHEMA, _RELEASE_ARRAY):  # never freed: see the module docstring
    ctypes.pythonapi.Py_IncRef(ctypes.py_object(_callback))

_capsule = ctypes.pythonapi.PyCapsule_New
_capsule.restype = ctypes.py_object
_capsule.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_void_p]


class _Exported:
    """One array offered through ``__arrow_c_array__`` (polars moves it out of the capsules)."""

    def __init__(self, schema: _Schema, array: _Array) -> None:
        self.schema, self.array = schema, array

    def __arrow_c_array__(self, requested_schema: object = None) -> tuple[object, object]:
        return (
            _capsule(ctypes.addressof(self.schema), b"arrow_schema", None),
            _capsule(ctypes.addressof(self.array), b"arrow_array", None),
        )


def binary(name: str, offsets: np.ndarray, data: np.ndarray) -> pl.Series:
    """``Binary`` series of ``len(offsets) - 1`` values: value k is ``data[offsets[k]:
    offsets[k + 1]]``. ``offsets`` int64, starting at 0, non-decreasing, ending within
    ``data`` (uint8); both C-contiguous. Neither may be written to afterwards."""
    offsets = np.ascontiguousarray(offsets, dtype=np.int64)
    data = np.ascontiguousarray(data, dtype=np.uint8)
    n = len(offsets) - 1
    if n < 0 or offsets[0] != 0 or offsets[-1] > len(data) or np.any(np.diff(offsets) < 0):
        raise ValueError("offsets do not describe values of the data buffer")
    if len(data) == 0:
        data = np.zeros(1, np.uint8)  # a valid address even for empty values
    key = next(_KEYS)
    buffers = (ctypes.c_void_p * 3)(None, offsets.ctypes.data, data.ctypes.data)
    array = _Array(n, 0, 0, 3, 0, ctypes.cast(buffers, ctypes.c_void_p), None, None,
                   _RELEASE_ARRAY, key)  # fmt: skip
    schema = _Schema(_FORMAT, None, None, _NULLABLE, 0, None, None, _RELEASE_SCHEMA, None)
    _KEPT[key] = (offsets, data, buffers)
    exported = _Exported(schema, array)
    try:
        series = pl.Series(name, exported)
    finally:
        if array.release:  # not taken: nobody else will release it
            _release_array(ctypes.pointer(array))
    return series.alias(name)
