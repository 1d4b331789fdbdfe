"""The management catalog as docs/rules.md lists it, rendered from the data file.

``python3 -m tests.mgmt.catalog_doc --write`` rewrites the generated part of docs/rules.md
(between the ``catalog:begin`` and ``catalog:end`` comments); tests/mgmt/test_catalog_doc.py
fails when the two disagree, so the document can never drift from
exposure_audit/data/management_catalog.json.
"""

from __future__ import annotations

import json
import sys
from importlib.resources import files
from pathlib import Path
from typing import Any

from exposure_audit.mgmt import CATEGORIES

RULES_MD = Path(__file__).parents[2] / "docs" / "rules.md"
BEGIN = "<!-- catalog:begin (generated: python3 -m tests.mgmt.catalog_doc --write) -->"
END = "<!-- catalog:end -->"


def _code(text: str) -> str:
    """``text`` as inline code in a Markdown list (no table cell: "|" stays as it is)."""
    return "`" + text.replace("`", "'") + "`"


def _marker(marker: dict[str, Any]) -> str:
    kind = marker["kind"]
    if kind == "header":
        return f"header {marker['name']} ~ {_code(marker['regex'])}"
    if kind == "cookie":
        star = "*" if marker.get("prefix") else ""
        return f"cookie {_code(marker['name'] + star)}"
    if kind == "body":
        return f"body contains {_code(marker['contains'])}"
    if kind == "path":
        contains = marker.get("contains")
        what = f" containing {_code(contains)}" if contains else ""
        return f"path {_code(marker['path'])} answers {marker['status']}{what}"
    if kind == "favicon":
        return f"favicon mmh3 {marker['mmh3']}"
    return f"{kind} ~ {_code(marker['regex'])}"


def _version(place: dict[str, Any]) -> str:
    where = f"header {place['header']} of {place['path']}" if place.get("header") else place["path"]
    return f"{where} ({place['note']})"


def _product(product: dict[str, Any]) -> list[str]:
    ports = ", ".join(f"{p['port']}/{p['scheme']}" for p in product["ports"]) or "none"
    versions = "; ".join(_version(v) for v in product["versions"]) or "no unauthenticated place"
    note = ", deep detection in exposure_audit.dsm" if product["reference_only"] else ""
    return [
        f"- **{product['name']}** ({_code(product['id'])}; {product['vendor']}; "
        f"confidence {product['confidence']}{note})",
        f"  - default ports: {ports}",
        "  - markers: " + "; ".join(_marker(m) for m in product["markers"]),
        f"  - version: {versions}",
        "  - sources: " + ", ".join(product["sources"]),
    ]


def render() -> str:
    """The generated part of docs/rules.md, markers included."""
    text = files("exposure_audit.data").joinpath("management_catalog.json").read_text()
    data = json.loads(text)
    lines = [BEGIN, ""]
    for category in CATEGORIES:
        products = [p for p in data["products"] if p["category"] == category]
        if not products:
            continue
        lines += [f"#### {category}", ""]
        for product in products:
            lines += _product(product)
        lines.append("")
    lines += ["#### Catalog sources", "", "| id | source | read |", "|---|---|---|"]
    for source in data["sources"]:
        title = source["title"].replace("|", "&#124;")
        read = "yes" if source.get("read", True) else "no (named for the reader)"
        lines.append(f"| {source['id']} | [{title}]({source['url']}) | {read} |")
    lines += ["", END]
    return "\n".join(lines)


def current() -> str:
    """The generated part as docs/rules.md holds it now ("" when the markers are missing)."""
    text = RULES_MD.read_text()
    start, end = text.find(BEGIN), text.find(END)
    return text[start : end + len(END)] if 0 <= start < end else ""


def write() -> None:
    """Replace the generated part of docs/rules.md with :func:`render`."""
    text = RULES_MD.read_text()
    old = current()
    if not old:
        raise SystemExit(f"{RULES_MD}: the {BEGIN!r} and {END!r} markers are missing")
    RULES_MD.write_text(text.replace(old, render()))


if __name__ == "__main__":
    if sys.argv[1:] == ["--write"]:
        write()
    else:
        print(render())
