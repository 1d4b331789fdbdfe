"""Reading the UPnP data files shipped in ``exposure_audit/data`` (``upnp_*.json``).

Read with :mod:`importlib.resources` so they work from a wheel. A wrong shape raises
:class:`~.errors.UpnpDataError` naming the file and key (a packaging bug the data tests catch).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from functools import cache
from importlib.resources import files

from .errors import UpnpDataError

__all__ = ["JsonObject", "get_list", "get_str", "get_str_list", "get_str_or_none", "load"]

JsonObject = Mapping[str, object]


@cache
def load(name: str) -> JsonObject:
    """The top-level JSON object of ``exposure_audit/data/<name>``, read once."""
    text = files("exposure_audit.data").joinpath(name).read_text(encoding="utf-8")
    value: object = json.loads(text)
    if not isinstance(value, dict):
        raise UpnpDataError(f"{name}: top level is not an object")
    return value


def get_list(obj: JsonObject, key: str, where: str) -> list[JsonObject]:
    """``obj[key]`` as an array of objects."""
    value = obj.get(key)
    if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
        raise UpnpDataError(f"{where}: {key!r} must be an array of objects")
    return value


def get_str(obj: JsonObject, key: str, where: str) -> str:
    """``obj[key]`` as a non-empty string."""
    value = obj.get(key)
    if not isinstance(value, str) or not value:
        raise UpnpDataError(f"{where}: {key!r} must be a non-empty string")
    return value


def get_str_or_none(obj: JsonObject, key: str, where: str) -> str | None:
    """``obj[key]`` as a non-empty string, or None when absent or null."""
    return None if obj.get(key) is None else get_str(obj, key, where)


def get_str_list(obj: JsonObject, key: str, where: str) -> tuple[str, ...]:
    """``obj[key]`` as an array of non-empty strings."""
    value = obj.get(key)
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise UpnpDataError(f"{where}: {key!r} must be an array of non-empty strings")
    return tuple(str(v) for v in value)
