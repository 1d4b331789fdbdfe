"""docs/rules.md lists the management catalog exactly as the data file holds it."""

from __future__ import annotations

import json
from importlib.resources import files

from .catalog_doc import current, render


def test_docs_rules_md_lists_the_catalog_as_the_data_file_holds_it() -> None:
    assert current() == render(), (
        "docs/rules.md and management_catalog.json disagree: "
        "run python3 -m tests.mgmt.catalog_doc --write and review the diff"
    )


def test_every_product_appears_with_its_id_markers_and_sources() -> None:
    text = current()
    data = files("exposure_audit.data").joinpath("management_catalog.json").read_text()
    catalog = json.loads(data)
    for product in catalog["products"]:
        assert f"`{product['id']}`" in text
        assert "markers: " in text
        for source in product["sources"]:
            assert f"| {source} |" in text
