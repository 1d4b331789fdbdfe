"""What exposure_audit knows about web management interfaces other than DSM's deep detection.

- :mod:`.catalog`: the sourced catalog (``exposure_audit/data/management_catalog.json``):
  products, default ports, markers, version places, unauthenticated control;
- :mod:`.match`: :func:`identify` turns what a web probe saw on one port into identified
  products (two independent markers) and single-marker possibilities (notes only).

Pure: nothing here touches the network. Facts and sources: ``docs/reference/management.md``.
"""

from __future__ import annotations

from .catalog import CATEGORIES, CatalogError, Product, check_pattern, load_catalog
from .match import (
    Identification,
    ManagementMatch,
    PathAnswer,
    PossibleManagement,
    WebSighting,
    favicon_hash,
    identify,
    paths_worth_fetching,
)

__all__ = [
    "CATEGORIES",
    "CatalogError",
    "Identification",
    "ManagementMatch",
    "PathAnswer",
    "PossibleManagement",
    "Product",
    "WebSighting",
    "check_pattern",
    "favicon_hash",
    "identify",
    "load_catalog",
    "paths_worth_fetching",
]
