"""Loading the composed sightings in tests/data/mgmt (also meant to feed the demo lab)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from exposure_audit.mgmt import PathAnswer, WebSighting

DATA = Path(__file__).resolve().parent.parent / "data" / "mgmt"


def _headers(items: list[list[str]]) -> tuple[tuple[str, str], ...]:
    return tuple((name, value) for name, value in items)


def sighting(doc: dict[str, Any]) -> WebSighting:
    """A :class:`WebSighting` from one sample file's object."""
    return WebSighting(
        port=doc["port"],
        scheme=doc["scheme"],
        status=doc["status"],
        headers=_headers(doc["headers"]),
        cookie_names=tuple(doc["cookie_names"]),
        body=doc["body"],
        cert_subject=doc.get("cert_subject"),
        cert_issuer=doc.get("cert_issuer"),
        favicon_mmh3=doc.get("favicon_mmh3"),
        nmap_product=doc.get("nmap_product"),
        nmap_extrainfo=doc.get("nmap_extrainfo"),
        paths={
            path: PathAnswer(answer["status"], _headers(answer["headers"]), answer["body"])
            for path, answer in doc["paths"].items()
        },
    )


def load(kind: str) -> dict[str, dict[str, Any]]:
    """Every sample of ``kind`` ("positive" or "negative") by file stem."""
    return {
        path.stem: json.loads(path.read_text(encoding="utf-8"))
        for path in sorted((DATA / kind).glob("*.json"))
    }
