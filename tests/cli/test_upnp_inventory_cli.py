"""``upnp-inventory`` says what failed (issue 14, item 5): against gateways on loopback whose
description is fine but whose SOAP control answers HTTP 500 with garbage, or a UPnP fault, or
whose description is missing, the table lists the errors (never a clean "0 mapping(s)"), the
run exits 3, and with ``--igd`` given no message suggests passing ``--igd``. A malformed
``--igd`` URL is a usage error (exit 2) before anything is sent. A healthy gateway (the
recorded miniupnpd answers) reads as before. Servers bind 127.143.2.0/24, this suite's block;
``--igd`` skips SSDP, so nothing is multicast."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from ..servers import Server, read_request, serve
from ..upnp.captures import capture
from .runner import run_cli

HOST = "127.143.2.1"
DESCRIPTION = capture("miniupnpd231_igd1_rootDesc.xml")
FAULT_606 = capture("fault_606.xml")


def _http(status: str, body: bytes, kind: str = "text/xml") -> bytes:
    head = f"HTTP/1.1 {status}\r\nContent-Type: {kind}\r\nContent-Length: {len(body)}\r\n"
    return head.encode() + b"Connection: close\r\n\r\n" + body


Answer = Callable[[str, bytes], bytes]


def _gateway(answer: Answer) -> Callable[..., object]:
    async def handle(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter, server: Server
    ) -> None:
        head = await read_request(reader, server)
        lines = head.split(b"\r\n")
        path = lines[0].split(b" ")[1].decode()
        sizes = [line[15:] for line in lines if line.lower().startswith(b"content-length:")]
        length = int(sizes[0]) if sizes else 0
        body = await reader.readexactly(length) if length else b""
        writer.write(answer(path, body))
        await writer.drain()

    return handle


def _soap_500_garbage(path: str, body: bytes) -> bytes:
    if path == "/rootDesc.xml":
        return _http("200 OK", DESCRIPTION)
    return _http("500 Internal Server Error", b"\x00\xffnot soap at all<<<", "text/plain")


def _soap_fault_606(path: str, body: bytes) -> bytes:
    if path == "/rootDesc.xml":
        return _http("200 OK", DESCRIPTION)
    return _http("500 Internal Server Error", FAULT_606)


def _no_description(path: str, body: bytes) -> bytes:
    return _http("404 Not Found", b"no such page", "text/plain")


def _healthy(path: str, body: bytes) -> bytes:
    if path == "/rootDesc.xml":
        return _http("200 OK", DESCRIPTION)
    if b"GetExternalIPAddress" in body:
        return _http("200 OK", capture("miniupnpd231_GetExternalIPAddress.xml"))
    if b"<NewPortMappingIndex>0<" in body:
        return _http("200 OK", capture("miniupnpd231_GetGenericPortMappingEntry_0.xml"))
    return _http("500 Internal Server Error", capture("miniupnpd231_fault_713.xml"))


@pytest.fixture()
def gateway(request: pytest.FixtureRequest) -> Iterator[str]:
    with serve(_gateway(request.param), host=HOST) as server:  # type: ignore[arg-type]
        yield f"http://{HOST}:{server.port}/rootDesc.xml"


def _inventory(url: str, *extra: str) -> tuple[int, str, str]:
    done = run_cli("upnp-inventory", "--igd", url, *extra, timeout=60)
    return done.returncode, done.stdout, done.stderr


@pytest.mark.parametrize(
    ("gateway", "said"),
    [(_soap_500_garbage, "HTTP 500"), (_soap_fault_606, "UPnP error 606")],
    indirect=["gateway"],
)
def test_failed_soap_calls_are_shown_not_read_as_an_empty_table(gateway: str, said: str) -> None:
    code, table, stderr = _inventory(gateway, "--format", "table")
    assert code == 3
    first = table.splitlines()[0]
    assert "0 mapping" not in first
    assert "no mapping read: 2 errors reading the gateway" in first
    assert "GetExternalIPAddress" in table and "GetGenericPortMappingEntry(0)" in table
    assert said in table
    assert "may be incomplete" in stderr
    assert "--igd" not in stderr.replace(f"--igd {gateway}", "")
    assert "pass --igd" not in stderr + table


@pytest.mark.parametrize("gateway", [_soap_500_garbage], indirect=True)
def test_the_json_inventory_keeps_the_errors_and_stderr_names_them(
    gateway: str, tmp_path: Path
) -> None:
    out = tmp_path / "inventory.json"
    code, stdout, stderr = _inventory(gateway, "-o", str(out))
    assert code == 3 and stdout == ""
    document = json.loads(out.read_text())
    assert document["mappings"] == [] and len(document["errors"]) == 2
    assert "GetGenericPortMappingEntry(0): HTTP 500" in stderr
    assert "pass --igd" not in stderr


@pytest.mark.parametrize("gateway", [_no_description], indirect=True)
def test_a_gateway_that_cannot_be_read_names_the_igd_given(gateway: str) -> None:
    code, table, stderr = _inventory(gateway, "--format", "table")
    assert code == 3
    assert table.startswith(f"IGD {gateway}: not read; external address unknown; no mapping")
    assert "description not served (HTTP 404)" in table
    assert f"the gateway at --igd {gateway} could not be read" in stderr
    assert "pass --igd" not in stderr
    assert "SSDP" not in stderr


@pytest.mark.parametrize("gateway", [_healthy], indirect=True)
def test_a_healthy_gateway_reads_cleanly(gateway: str) -> None:
    code, table, stderr = _inventory(gateway, "--format", "table")
    assert code == 0, stderr
    assert "1 mapping(s)" in table.splitlines()[0] and "errors" not in table
    assert stderr == ""


@pytest.mark.parametrize(
    "url",
    [
        "192.168.1.1:5000/rootDesc.xml",
        "ftp://192.168.1.1/rootDesc.xml",
        "http:///rootDesc.xml",
        "http://192.168.1.1:99999/rootDesc.xml",
        "http://192.168.1.1:port/rootDesc.xml",
        "http://[::1/rootDesc.xml",
        "http://192.168.1.1/root Desc.xml",
        "",
    ],
)
def test_a_malformed_igd_url_is_a_usage_error(url: str) -> None:
    code, stdout, stderr = _inventory(url)
    assert code == 2, stderr
    assert stdout == ""
    assert stderr.startswith("exposure-audit: error: --igd") and "Traceback" not in stderr
