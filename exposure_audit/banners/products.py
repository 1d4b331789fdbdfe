"""The products the banner advisories know, and how nmap names them (``products[]`` of
``banner_advisories.json``)."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

from ._data import SHAPE

__all__ = ["FILE", "Product", "product_for", "products"]

FILE = "banner_advisories.json"


@dataclass(frozen=True)
class Product:
    """A product: ``key`` (what advisories name), its display ``name``, the version ``scheme``
    (``openssh`` or ``plain``), nmap's product strings and service names for it, the version
    strings nmap prints without reading them (``nmap_guess_versions``) and whether the service
    shows its version at all (``version_visible``)."""

    key: str
    name: str
    scheme: str
    nmap_products: tuple[str, ...]
    nmap_services: tuple[str, ...]
    nmap_guess_versions: tuple[str, ...]
    version_visible: bool


@cache
def products() -> tuple[Product, ...]:
    """Every product of the data file, in file order."""
    data = SHAPE.load(FILE)
    result = []
    for index, row in enumerate(SHAPE.get_object_list(data, "products", FILE)):
        where = f"{FILE}: products[{index}]"
        scheme = SHAPE.get_str(row, "scheme", where)
        if scheme not in ("openssh", "plain"):
            raise SHAPE.error(f"{where}: unknown scheme {scheme!r}")
        result.append(
            Product(
                key=SHAPE.get_str(row, "key", where),
                name=SHAPE.get_str(row, "name", where),
                scheme=scheme,
                nmap_products=SHAPE.get_str_list(row, "nmap_products", where),
                nmap_services=SHAPE.get_str_list(row, "nmap_services", where),
                nmap_guess_versions=SHAPE.get_str_list(row, "nmap_guess_versions", where),
                version_visible=SHAPE.get_bool(row, "version_visible", where),
            )
        )
    return tuple(result)


def product_for(nmap_product: str, nmap_service: str) -> Product | None:
    """The product nmap named (its product string, case-insensitive; else its service name),
    or None."""
    wanted = nmap_product.strip().casefold()
    for product in products():
        if wanted and wanted in (p.casefold() for p in product.nmap_products):
            return product
    service = nmap_service.strip().casefold()
    for product in products():
        if service and service in (s.casefold() for s in product.nmap_services):
            return product
    return None
