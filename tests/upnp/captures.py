"""Reading the recorded UPnP captures under tests/data/upnp (see its README)."""

from __future__ import annotations

from pathlib import Path

DATA = Path(__file__).resolve().parents[1] / "data" / "upnp"


def capture(name: str) -> bytes:
    return (DATA / name).read_bytes()


def ssdp_all() -> list[bytes]:
    return [capture(f"miniupnpd231_ssdp_all_{i:02d}.txt") for i in range(13)]
