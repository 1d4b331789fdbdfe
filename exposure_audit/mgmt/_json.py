"""Shape checks for the catalog JSON, in the style of :mod:`exposure_audit.dsm._data`.

A copy of the few helpers the catalog needs: ``mgmt`` and ``dsm`` sit in one layer of the
import contract as independent siblings, so ``mgmt`` may not import ``dsm``. Every accessor
raises :class:`CatalogError` naming where the wrong value is.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from importlib.resources import files

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

JsonObject = Mapping[str, object]


class CatalogError(ValueError):
    """The management catalog does not have the expected shape."""


def load_object(name: str) -> JsonObject:
    """The top-level JSON object of ``exposure_audit/data/<name>``."""
    text = files("exposure_audit.data").joinpath(name).read_text(encoding="utf-8")
    value: object = json.loads(text)
    if not isinstance(value, dict):
        raise CatalogError(f"{name}: top level is not an object")
    return value


def _need(where: str, key: str, value: object, kind: str) -> CatalogError:
    return CatalogError(f"{where}: {key!r} must be {kind}, not {type(value).__name__}")


def get_list(obj: JsonObject, key: str, where: str) -> list[object]:
    """``obj[key]`` as a JSON array."""
    value = obj.get(key)
    if not isinstance(value, list):
        raise _need(where, key, value, "an array")
    return value


def as_object(value: object, where: str) -> JsonObject:
    """``value`` as a JSON object."""
    if not isinstance(value, dict):
        raise CatalogError(f"{where}: item must be an object, not {type(value).__name__}")
    return value


def get_str(obj: JsonObject, key: str, where: str) -> str:
    """``obj[key]`` as a non-empty string."""
    value = obj.get(key)
    if not isinstance(value, str) or not value:
        raise _need(where, key, value, "a non-empty string")
    return value


def get_str_or_none(obj: JsonObject, key: str, where: str) -> str | None:
    """``obj[key]`` as a non-empty string, or None when absent or null."""
    return None if obj.get(key) is None else get_str(obj, key, where)


def get_str_list(obj: JsonObject, key: str, where: str) -> tuple[str, ...]:
    """``obj[key]`` as an array of non-empty strings."""
    items = get_list(obj, key, where)
    if not all(isinstance(item, str) and item for item in items):
        raise CatalogError(f"{where}: {key!r} must hold non-empty strings only")
    return tuple(str(item) for item in items)


def get_int(obj: JsonObject, key: str, where: str) -> int:
    """``obj[key]`` as an integer (booleans refused)."""
    value = obj.get(key)
    if not isinstance(value, int) or isinstance(value, bool):
        raise _need(where, key, value, "an integer")
    return value


def get_bool(obj: JsonObject, key: str, where: str) -> bool:
    """``obj[key]`` as a boolean."""
    value = obj.get(key)
    if not isinstance(value, bool):
        raise _need(where, key, value, "a boolean")
    return value
