"""Reading the DSM data files shipped in ``exposure_audit/data`` (``dsm_*.json``).

The accessors are :class:`~exposure_audit.datafile.DataShape`'s, bound to :class:`DataError`:
every one checks the JSON shape and raises it naming the file and key when it is wrong.
"""

from __future__ import annotations

from ..datafile import DataShape, JsonObject

__all__ = [
    "DataError",
    "JsonObject",
    "as_object",
    "get_bool",
    "get_float_or_none",
    "get_int",
    "get_int_or_none",
    "get_list",
    "get_object",
    "get_str",
    "get_str_list",
    "get_str_or_none",
    "load_object",
]


class DataError(ValueError):
    """A ``dsm_*.json`` file does not have the expected shape."""


_SHAPE = DataShape(DataError)
load_object = _SHAPE.load
get_object = _SHAPE.get_object
get_list = _SHAPE.get_list
as_object = _SHAPE.as_object
get_str = _SHAPE.get_str
get_str_or_none = _SHAPE.get_str_or_none
get_str_list = _SHAPE.get_str_list
get_int = _SHAPE.get_int
get_int_or_none = _SHAPE.get_int_or_none
get_float_or_none = _SHAPE.get_float_or_none
get_bool = _SHAPE.get_bool
