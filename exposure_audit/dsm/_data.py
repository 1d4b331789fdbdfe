"""Reading the DSM data files shipped in ``exposure_audit/data`` (``dsm_*.json``).

The files are package data, read with :mod:`importlib.resources` so they work from a wheel or a
zip. Every accessor checks the JSON shape and raises :class:`ValueError` naming the file and key
when it is wrong: a malformed data file is a packaging bug, and the data tests catch it before
release.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from functools import cache
from importlib.resources import files

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

JsonObject = Mapping[str, object]


class DataError(ValueError):
    """A ``dsm_*.json`` file does not have the expected shape."""


@cache
def load_object(name: str) -> JsonObject:
    """Return the top-level JSON object of ``exposure_audit/data/<name>``; read once, cached.

    Raises :class:`DataError` when the file is not a JSON object (OSError if it is missing).
    """
    text = files("exposure_audit.data").joinpath(name).read_text(encoding="utf-8")
    value: object = json.loads(text)
    if not isinstance(value, dict):
        raise DataError(f"{name}: top level is not an object")
    return value


def _need(where: str, key: str, value: object, kind: str) -> DataError:
    return DataError(f"{where}: {key!r} must be {kind}, not {type(value).__name__}")


def get_object(obj: JsonObject, key: str, where: str) -> JsonObject:
    """``obj[key]`` as a JSON object."""
    value = obj.get(key)
    if not isinstance(value, dict):
        raise _need(where, key, value, "an object")
    return value


def get_list(obj: JsonObject, key: str, where: str) -> list[object]:
    """``obj[key]`` as a JSON array."""
    value = obj.get(key)
    if not isinstance(value, list):
        raise _need(where, key, value, "an array")
    return value


def as_object(value: object, where: str) -> JsonObject:
    """``value`` (an array item) as a JSON object."""
    if not isinstance(value, dict):
        raise DataError(f"{where}: item must be an object, not {type(value).__name__}")
    return value


def get_str(obj: JsonObject, key: str, where: str) -> str:
    """``obj[key]`` as a non-empty string."""
    value = obj.get(key)
    if not isinstance(value, str) or not value:
        raise _need(where, key, value, "a non-empty string")
    return value


def get_str_or_none(obj: JsonObject, key: str, where: str) -> str | None:
    """``obj[key]`` as a non-empty string, or None when the key is absent or null."""
    return None if obj.get(key) is None else get_str(obj, key, where)


def get_str_list(obj: JsonObject, key: str, where: str) -> tuple[str, ...]:
    """``obj[key]`` as an array of non-empty strings."""
    items = get_list(obj, key, where)
    if not all(isinstance(item, str) and item for item in items):
        raise DataError(f"{where}: {key!r} must hold non-empty strings only")
    return tuple(str(item) for item in items)


def get_int(obj: JsonObject, key: str, where: str) -> int:
    """``obj[key]`` as an integer (JSON booleans are refused)."""
    value = obj.get(key)
    if not isinstance(value, int) or isinstance(value, bool):
        raise _need(where, key, value, "an integer")
    return value


def get_int_or_none(obj: JsonObject, key: str, where: str) -> int | None:
    """``obj[key]`` as an integer, or None when the key is absent or null."""
    return None if obj.get(key) is None else get_int(obj, key, where)


def get_float_or_none(obj: JsonObject, key: str, where: str) -> float | None:
    """``obj[key]`` as a number, or None when the key is absent or null."""
    value = obj.get(key)
    if value is None:
        return None
    if not isinstance(value, int | float) or isinstance(value, bool):
        raise _need(where, key, value, "a number")
    return float(value)


def get_bool(obj: JsonObject, key: str, where: str) -> bool:
    """``obj[key]`` as a boolean."""
    value = obj.get(key)
    if not isinstance(value, bool):
        raise _need(where, key, value, "a boolean")
    return value
