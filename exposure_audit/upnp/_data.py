"""Reading the UPnP data files shipped in ``exposure_audit/data`` (``upnp_*.json``).

The accessors are :class:`~exposure_audit.datafile.DataShape`'s, bound to
:class:`~.errors.UpnpDataError`: a wrong shape raises it naming the file and key (a packaging bug
the data tests catch).
"""

from __future__ import annotations

from ..datafile import DataShape, JsonObject
from .errors import UpnpDataError

__all__ = ["JsonObject", "get_list", "get_str", "get_str_list", "get_str_or_none", "load"]

_SHAPE = DataShape(UpnpDataError)
load = _SHAPE.load
get_list = _SHAPE.get_object_list
get_str = _SHAPE.get_str
get_str_or_none = _SHAPE.get_str_or_none
get_str_list = _SHAPE.get_str_list
