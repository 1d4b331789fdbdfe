"""Web ports carry the product and version ``nmap -sV`` gives them, without ``-sV``.

Real servers on loopback (127.140.0.1): Python's http.server, and nginx (Debian's nginx-light,
from ``.ci/install``) over HTTP and HTTPS. The real CLI audits them and its JSON is compared
with what the real ``nmap -sT -sV`` says of the same ports; an ``nmap`` first on PATH logs
every call, to show the web ports were never sent through ``-sV``.
"""

from __future__ import annotations

import asyncio
import contextlib
import http.server
import json
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import defusedxml.ElementTree as SafeET
import httpx
import pytest
import trustme

from exposure_audit.nmap.installed import match_http_response
from exposure_audit.probes.http import HttpProbeSettings, fingerprint_port, make_client

from ..cli.runner import run_cli
from ..faults.support import environment, logging_nmap
from ..faults.support import run_cli as run_cli_with_env

ADDRESS = "127.140.0.1"
PYTHON_PORT = 18083
NGINX_PORT = 18080
NGINX_TLS_PORT = 18443
BANNER_PORT = 18022
SSH_BANNER = b"SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3\r\n"


@pytest.fixture(scope="module")
def www(tmp_path_factory: pytest.TempPathFactory) -> Path:
    work = tmp_path_factory.mktemp("web")
    (work / "www").mkdir()
    (work / "www" / "index.html").write_text("<html><head><title>hello</title></head></html>\n")
    work.chmod(0o755)
    return work


@pytest.fixture(scope="module")
def python_server(www: Path) -> Iterator[int]:
    class Quiet(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, directory=str(www / "www"), **kwargs)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    class Server(http.server.ThreadingHTTPServer):
        def handle_error(self, request: Any, client_address: Any) -> None:
            pass  # nmap's probes hang up mid-request: nothing to report

    server = Server((ADDRESS, PYTHON_PORT), Quiet)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield PYTHON_PORT
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="module")
def nginx(www: Path) -> Iterator[tuple[int, int]]:
    binary = shutil.which("nginx")
    assert binary is not None, "nginx is missing: .ci/install installs nginx-light"
    leaf = trustme.CA().issue_cert(ADDRESS)
    cert, key = www / "cert.pem", www / "key.pem"
    leaf.cert_chain_pems[0].write_to_path(str(cert))
    leaf.private_key_pem.write_to_path(str(key))
    conf = www / "nginx.conf"
    temp = " ".join(
        f"{kind}_temp_path {www}/nginx-{kind};"
        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    conf.write_text(
        f"""user root;
daemon off;
pid {www}/nginx.pid;
error_log {www}/nginx-error.log;
events {{ worker_connections 64; }}
http {{
  access_log off;
  {temp}
  server {{ listen {ADDRESS}:{NGINX_PORT}; root {www}/www; }}
  server {{ listen {ADDRESS}:{NGINX_TLS_PORT} ssl; root {www}/www;
           ssl_certificate {cert}; ssl_certificate_key {key}; }}
}}
"""
    )
    process = subprocess.Popen(
        [binary, "-e", str(www / "nginx-error.log"), "-c", str(conf)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        _wait_for(f"http://{ADDRESS}:{NGINX_PORT}/", process)
        _wait_for(f"https://{ADDRESS}:{NGINX_TLS_PORT}/", process)
        yield NGINX_PORT, NGINX_TLS_PORT
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture
def ssh_banner() -> Iterator[int]:
    """A port that greets with an OpenSSH banner and is not HTTP: -sV's to name."""

    async def greet(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(SSH_BANNER)
        with contextlib.suppress(OSError):
            await writer.drain()
            await asyncio.wait_for(reader.read(4096), 5)
        writer.close()

    loop = asyncio.new_event_loop()
    server = loop.run_until_complete(asyncio.start_server(greet, ADDRESS, BANNER_PORT))
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    try:
        yield BANNER_PORT
    finally:
        loop.call_soon_threadsafe(server.close)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)


def _wait_for(url: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 20
    while True:
        try:
            httpx.get(url, verify=False, timeout=2)
            return
        except httpx.HTTPError:
            assert process.poll() is None, "nginx exited"
            assert time.monotonic() < deadline, f"{url} did not come up"
            time.sleep(0.1)


def _audit(*ports: int, env: dict[str, str] | None = None) -> dict[int, dict[str, Any]]:
    args = (
        "scan",
        "--allow-private",
        "--no-udp",
        "--no-upnp",
        "--no-history",
        "--format",
        "json",
        "-p",
        ",".join(map(str, ports)),
        ADDRESS,
    )
    done = run_cli(*args) if env is None else run_cli_with_env(*args, env=env, timeout=120)
    assert done.returncode in (0, 1), done.stderr
    report = json.loads(done.stdout)
    (host,) = report["hosts"]
    return {s["port"]: s for s in host["services"]}


def _nmap_sv(*ports: int) -> dict[int, tuple[str, str, list[str]]]:
    xml = subprocess.run(
        ["nmap", "-sT", "-sV", "-Pn", "-n", "-p", ",".join(map(str, ports)), ADDRESS, "-oX", "-"],
        capture_output=True,
        check=True,
        timeout=120,
    ).stdout
    named: dict[int, tuple[str, str, list[str]]] = {}
    for port in SafeET.fromstring(xml).iter("port"):
        service = port.find("service")
        assert service is not None
        cpes = [c.text or "" for c in service.iter("cpe")]
        named[int(port.get("portid", "0"))] = (
            service.get("product", ""),
            service.get("version", ""),
            cpes,
        )
    return named


def test_web_ports_get_the_product_and_version_nmap_sv_names(
    python_server: int, nginx: tuple[int, int]
) -> None:
    # Given Python's http.server and nginx (HTTP and HTTPS) on loopback,
    ports = (python_server, *nginx)
    # when the CLI audits them and nmap -sV looks at the same ports,
    services = _audit(*ports)
    named = _nmap_sv(*ports)
    # then each web port's product, version and CPEs in the JSON are nmap's.
    for port in ports:
        service = services[port]
        product, version, cpes = named[port]
        assert product, f"nmap -sV named nothing on {port}"
        assert (service["product"], service["version"]) == (product, version), port
        assert sorted(service["cpe"]) == sorted(cpes), port
        assert service["http"] is not None
    assert services[nginx[1]]["service"] == "https"
    assert services[python_server]["product"] == "SimpleHTTPServer"
    assert services[nginx[0]]["product"] == "nginx"


def test_a_web_port_is_named_without_being_sent_through_sv(
    python_server: int, ssh_banner: int, tmp_path: Path
) -> None:
    # Given a web port and an SSH banner, and an nmap that logs every call,
    path, log = logging_nmap(tmp_path / "bin")
    # when the CLI audits both (version detection on, the default),
    services = _audit(python_server, ssh_banner, env=environment(path))
    # then -sV ran, for the SSH port alone,
    calls = log.read_text().splitlines()
    version_calls = [c for c in calls if " -sV " in f" {c} "]
    assert version_calls, calls
    for call in version_calls:
        argv = call.split()
        assert argv[argv.index("-p") + 1] == str(ssh_banner), call
    assert services[ssh_banner]["product"] == "OpenSSH"
    # and the web port still has nmap's name for it.
    web = services[python_server]
    assert web["service"] == "http"
    assert (web["product"], web["version"]) == ("SimpleHTTPServer", http.server.__version__)


def test_without_a_namer_a_web_port_carries_no_name_and_stays_unknown(python_server: int) -> None:
    """Where nmap's probe file is not found the probe gets no namer: the port is still
    fingerprinted, and carries no product (unknown, not a made-up name)."""

    async def probe() -> Any:
        settings = HttpProbeSettings(request_timeout=5, identify_timeout=5)
        async with make_client(settings) as client:
            return await fingerprint_port(client, ADDRESS, python_server, settings=settings)

    found = asyncio.run(probe())
    assert found.http is not None and found.http.status_code == 200
    assert found.nmap is None


def test_a_namer_that_fails_costs_the_name_only(python_server: int) -> None:
    def broken(raw: bytes) -> None:
        raise RuntimeError("matcher bug")

    async def probe() -> Any:
        settings = HttpProbeSettings(request_timeout=5, identify_timeout=5)
        async with make_client(settings) as client:
            return await fingerprint_port(
                client, ADDRESS, python_server, settings=settings, namer=broken
            )

    found = asyncio.run(probe())
    assert found.http is not None and found.http.status_code == 200
    assert found.nmap is None


# What nmap's line 9913 (nmap 7.93) calls "Cockpit management console": Cockpit's bare 400.
COCKPIT_400 = b"<html><head><title>400 Bad request</title></head><body>Bad request</body></html>"


@pytest.fixture
def cockpit_like() -> Iterator[int]:
    """Cockpit's default port (9090): ``/`` answers Cockpit's bare 400, which only nmap's
    name tells apart, and ``/cockpit/login`` asks for credentials (one catalog marker)."""

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            first = await asyncio.wait_for(reader.readexactly(1), 5)
            if first == b"\x16":  # a TLS ClientHello: hang up, as a plain HTTP server does
                writer.close()
                return
            head = first + await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
            if head.startswith(b"GET /cockpit/login "):
                writer.write(b"HTTP/1.1 401 Authentication failed\r\nContent-Length: 0\r\n\r\n")
            else:
                length = b"%d" % len(COCKPIT_400)
                writer.write(b"HTTP/1.1 400 Bad request\r\nContent-Length: " + length + b"\r\n\r\n")
                writer.write(COCKPIT_400)
            await writer.drain()
        writer.close()

    loop = asyncio.new_event_loop()
    server = loop.run_until_complete(asyncio.start_server(answer, ADDRESS, 9090))
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    try:
        yield 9090
    finally:
        loop.call_soon_threadsafe(server.close)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)


def _probe_cockpit(port: int, *, named: bool) -> Any:
    async def probe() -> Any:
        settings = HttpProbeSettings(request_timeout=3, identify_timeout=3)
        async with make_client(settings) as client:
            return await fingerprint_port(
                client,
                ADDRESS,
                port,
                settings=settings,
                namer=match_http_response if named else None,
            )

    return asyncio.run(probe())


def test_nmaps_name_for_the_port_is_a_marker_of_the_management_catalog(cockpit_like: int) -> None:
    # Without nmap's name, the login path is the only marker: a "possibly" hint at most.
    bare = _probe_cockpit(cockpit_like, named=False)
    assert bare.http is not None and bare.http.management is None
    # With it, nmap's "Cockpit management console" is the second, independent marker.
    named = _probe_cockpit(cockpit_like, named=True)
    assert named.nmap is not None and named.nmap.product == "Cockpit management console"
    management = named.http.management
    assert management is not None and management.product == "cockpit"
    assert len(management.markers) == 2
