"""The packaged management catalog validates, and wrong shapes are refused by name."""

from __future__ import annotations

import copy
import json
from importlib.resources import files
from typing import Any

import pytest

from exposure_audit.mgmt import CATEGORIES, CatalogError, check_pattern, load_catalog
from exposure_audit.mgmt.catalog import parse_catalog

REQUIRED = {
    "synology-dsm", "synology-srm", "qnap-qts", "asustor-adm", "terramaster-tos", "wd-mycloud",
    "truenas", "unraid", "openmediavault", "netapp-ontap", "dell-unisphere", "vmware-esxi",
    "vmware-vcenter", "proxmox-ve", "xen-orchestra", "dell-idrac", "hpe-ilo", "supermicro-bmc",
    "pfsense", "opnsense", "mikrotik-routeros", "ubiquiti-unifi", "cockpit", "webmin",
    "portainer", "jupyter", "home-assistant", "syncthing", "transmission", "cups", "supervisor",
    "rabbitmq-management", "netdata",
}  # fmt: skip


def raw() -> dict[str, Any]:
    text = files("exposure_audit.data").joinpath("management_catalog.json").read_text("utf-8")
    data: dict[str, Any] = json.loads(text)
    return data


def test_the_catalog_covers_every_product_the_audit_promises() -> None:
    assert {p.id for p in load_catalog()} >= REQUIRED


def test_every_product_has_two_marker_kinds_a_source_and_a_known_category() -> None:
    for product in load_catalog():
        assert len({m.kind for m in product.markers}) >= 2, product.id
        assert product.sources, product.id
        assert product.category in CATEGORIES, product.id
        assert product.ports, product.id


def test_dsm_and_srm_are_reference_only_so_the_dsm_package_keeps_their_detection() -> None:
    reference = {p.id for p in load_catalog() if p.reference_only}
    assert reference == {"synology-dsm", "synology-srm"}


def test_products_that_can_act_without_credentials_say_how() -> None:
    able = {p.id: p.control.how for p in load_catalog() if p.control.possible}
    assert {"jupyter", "supervisor", "syncthing", "transmission", "portainer"} <= set(able)
    assert all(able.values())


def test_every_probe_path_is_a_plain_read_only_path() -> None:
    for product in load_catalog():
        for path in product.probe_paths:
            assert path.startswith("/") and ".." not in path, (product.id, path)
            assert not any(word in path.lower() for word in ("logout", "delete", "reboot"))


def test_a_product_with_one_marker_kind_is_refused_naming_it() -> None:
    data = raw()
    broken = copy.deepcopy(data)
    product = next(p for p in broken["products"] if p["id"] == "webmin")
    product["markers"] = [m for m in product["markers"] if m["kind"] == "title"]
    with pytest.raises(CatalogError, match=r"webmin.*two distinct kinds"):
        parse_catalog(broken)


def test_a_wrong_field_type_is_refused_naming_product_and_field() -> None:
    broken = copy.deepcopy(raw())
    product = next(p for p in broken["products"] if p["id"] == "cups")
    product["ports"][0]["port"] = "631"
    with pytest.raises(CatalogError, match=r"cups.*'port' must be an integer"):
        parse_catalog(broken)


def test_an_unknown_source_or_category_is_refused() -> None:
    broken = copy.deepcopy(raw())
    broken["products"][0]["sources"] = ["NOWHERE"]
    with pytest.raises(CatalogError, match="unknown source"):
        parse_catalog(broken)
    broken = copy.deepcopy(raw())
    broken["products"][0]["category"] = "toaster"
    with pytest.raises(CatalogError, match="category"):
        parse_catalog(broken)


@pytest.mark.parametrize(
    "pattern",
    [r"(a+)+$", r"(a|aa)*b", r"x.*y", r"a{0,1000}", r"(ab){2,9}", r"(a)\1", r"a{2,}", r"a{0,5}?"],
)
def test_patterns_that_can_backtrack_without_bound_are_refused(pattern: str) -> None:
    with pytest.raises(CatalogError):
        check_pattern(pattern, "test")


@pytest.mark.parametrize(
    "pattern", [r"(?:.{1,128} - )?Proxmox Virtual Environment", r"realm=\"Transmission\"", r"x?y"]
)
def test_bounded_patterns_are_accepted(pattern: str) -> None:
    assert check_pattern(pattern, "test").pattern == pattern
