"""Reading ``exposure_audit/data/banner_advisories.json`` with its shape checked.

The accessors are :class:`~exposure_audit.datafile.DataShape`'s, bound to :class:`DataError`.
"""

from __future__ import annotations

from ..datafile import DataShape

__all__ = ["SHAPE", "DataError"]


class DataError(ValueError):
    """``banner_advisories.json`` does not have the expected shape."""


SHAPE = DataShape(DataError)
