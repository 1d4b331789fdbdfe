"""Shape checks for the catalog JSON: :class:`~exposure_audit.datafile.DataShape`'s accessors,
bound to :class:`CatalogError`, which names where the wrong value is."""

from __future__ import annotations

from ..datafile import DataShape, JsonObject

__all__ = [
    "CatalogError",
    "JsonObject",
    "as_object",
    "get_bool",
    "get_int",
    "get_list",
    "get_str",
    "get_str_list",
    "get_str_or_none",
    "load_object",
]


class CatalogError(ValueError):
    """The management catalog does not have the expected shape."""


_SHAPE = DataShape(CatalogError)
load_object = _SHAPE.load
get_list = _SHAPE.get_list
as_object = _SHAPE.as_object
get_str = _SHAPE.get_str
get_str_or_none = _SHAPE.get_str_or_none
get_str_list = _SHAPE.get_str_list
get_int = _SHAPE.get_int
get_bool = _SHAPE.get_bool
