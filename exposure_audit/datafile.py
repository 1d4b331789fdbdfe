"""Reading the sourced data files shipped in ``exposure_audit/data`` with their shape checked.

The files are package data, read with :mod:`importlib.resources` so they work from a wheel or a
zip. A :class:`DataShape` is bound to the error its package raises (``dsm``, ``upnp`` and
``mgmt`` each have their own), and every accessor raises that error naming where the wrong value
is: a malformed data file is a packaging bug, and the data tests catch it before release.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from importlib.resources import files

__all__ = ["DataShape", "JsonObject"]

JsonObject = Mapping[str, object]


@cache
def _parsed(name: str) -> object:
    """``exposure_audit/data/<name>`` parsed, read once per process (OSError if missing)."""
    return json.loads(files("exposure_audit.data").joinpath(name).read_text(encoding="utf-8"))


@dataclass(frozen=True)
class DataShape:
    """Typed accessors over JSON values that raise ``error`` (a ``ValueError``) on a wrong shape.

    ``where`` names the file and entry in every message, e.g. ``dsm_builds.json: builds[3]``.
    """

    error: type[ValueError]

    def load(self, name: str) -> JsonObject:
        """The top-level JSON object of ``exposure_audit/data/<name>`` (cached)."""
        value = _parsed(name)
        if not isinstance(value, dict):
            raise self.error(f"{name}: top level is not an object")
        return value

    def _need(self, where: str, key: str, value: object, kind: str) -> ValueError:
        return self.error(f"{where}: {key!r} must be {kind}, not {type(value).__name__}")

    def get_object(self, obj: JsonObject, key: str, where: str) -> JsonObject:
        """``obj[key]`` as a JSON object."""
        value = obj.get(key)
        if not isinstance(value, dict):
            raise self._need(where, key, value, "an object")
        return value

    def get_list(self, obj: JsonObject, key: str, where: str) -> list[object]:
        """``obj[key]`` as a JSON array."""
        value = obj.get(key)
        if not isinstance(value, list):
            raise self._need(where, key, value, "an array")
        return value

    def get_object_list(self, obj: JsonObject, key: str, where: str) -> list[JsonObject]:
        """``obj[key]`` as a JSON array of objects."""
        items = self.get_list(obj, key, where)
        return [self.as_object(item, f"{where}: {key}[{i}]") for i, item in enumerate(items)]

    def as_object(self, value: object, where: str) -> JsonObject:
        """``value`` (an array item) as a JSON object."""
        if not isinstance(value, dict):
            raise self.error(f"{where}: item must be an object, not {type(value).__name__}")
        return value

    def get_str(self, obj: JsonObject, key: str, where: str) -> str:
        """``obj[key]`` as a non-empty string."""
        value = obj.get(key)
        if not isinstance(value, str) or not value:
            raise self._need(where, key, value, "a non-empty string")
        return value

    def get_str_or_none(self, obj: JsonObject, key: str, where: str) -> str | None:
        """``obj[key]`` as a non-empty string, or None when the key is absent or null."""
        return None if obj.get(key) is None else self.get_str(obj, key, where)

    def get_str_list(self, obj: JsonObject, key: str, where: str) -> tuple[str, ...]:
        """``obj[key]`` as an array of non-empty strings."""
        items = self.get_list(obj, key, where)
        if not all(isinstance(item, str) and item for item in items):
            raise self.error(f"{where}: {key!r} must hold non-empty strings only")
        return tuple(str(item) for item in items)

    def get_int(self, obj: JsonObject, key: str, where: str) -> int:
        """``obj[key]`` as an integer (JSON booleans are refused)."""
        value = obj.get(key)
        if not isinstance(value, int) or isinstance(value, bool):
            raise self._need(where, key, value, "an integer")
        return value

    def get_int_or_none(self, obj: JsonObject, key: str, where: str) -> int | None:
        """``obj[key]`` as an integer, or None when the key is absent or null."""
        return None if obj.get(key) is None else self.get_int(obj, key, where)

    def get_float_or_none(self, obj: JsonObject, key: str, where: str) -> float | None:
        """``obj[key]`` as a number, or None when the key is absent or null."""
        value = obj.get(key)
        if value is None:
            return None
        if not isinstance(value, int | float) or isinstance(value, bool):
            raise self._need(where, key, value, "a number")
        return float(value)

    def get_bool(self, obj: JsonObject, key: str, where: str) -> bool:
        """``obj[key]`` as a boolean."""
        value = obj.get(key)
        if not isinstance(value, bool):
            raise self._need(where, key, value, "a boolean")
        return value
