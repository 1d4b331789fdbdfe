"""Real management consoles that Debian or PyPI ship, each started here and audited by the real
CLI (real nmap): Cockpit (``cockpit-ws``, with and without TLS), CUPS (``cupsd``), Jupyter
Server (with and without a token) and Transmission (``transmission-daemon``, with and without
an RPC password). Each is found with its catalog product and category and gets the rule its
exposure deserves.

Nothing leaves the machine: Cockpit and Jupyter listen on this run's loopback addresses and
contact nothing on their own; cupsd, transmission-daemon and Cockpit with TLS run inside a
network namespace of their own that holds only its loopback interface (with a documentation
address on it), and the CLI audits them from inside it. The address outside 127.0.0.0/8 makes
them answer as to a remote client: CUPS answers 400 to a loopback client's Host header unless
it is "localhost" (its valid_host check), and cockpit-ws serves its page over plain HTTP to a
loopback client where a remote one gets a redirect to https on the same port. Transmission
would otherwise try DHT, local peer discovery and NAT-PMP/UPnP port mapping; they are switched
off as well.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from exposure_audit.lab.certificates import issue
from tests.nslib import die_with_parent, which

# Loopback addresses of this module (Cockpit, Jupyter) and the documentation addresses the
# namespaced daemons (CUPS, Transmission) listen on inside their own namespace.
COCKPIT_PLAIN = "127.142.3.1"
JUPYTER_OPEN, JUPYTER_TOKEN = "127.142.3.4", "127.142.3.5"
CUPS, TRANSMISSION, COCKPIT_TLS = "192.0.2.31", "192.0.2.32", "192.0.2.33"
COCKPIT_WS = "/usr/lib/cockpit/cockpit-ws"


def _installed(path: str | None) -> bool:
    return path is not None and os.access(path, os.X_OK)


def _jupyter_server_installed() -> bool:
    try:
        import jupyter_server  # noqa: F401
    except ImportError:
        return False
    return True


@contextmanager
def _namespace(name: str, address: str) -> Iterator[str]:
    """A network namespace ``lb-<name>-<pid>`` holding only ``lo``, up, with ``address``."""
    namespace = f"lb-{name}-{os.getpid()}"
    subprocess.run(["ip", "netns", "add", namespace], check=True)
    try:
        subprocess.run(["ip", "-n", namespace, "link", "set", "lo", "up"], check=True)
        subprocess.run(
            ["ip", "-n", namespace, "addr", "add", f"{address}/32", "dev", "lo"], check=True
        )
        yield namespace
    finally:
        subprocess.run(["ip", "netns", "del", namespace], check=False)


def _in(namespace: str | None, argv: Sequence[str]) -> list[str]:
    return ["ip", "netns", "exec", namespace, *argv] if namespace else list(argv)


def _listening(namespace: str | None, address: str, port: int) -> bool:
    if namespace is None:
        try:
            socket.create_connection((address, port), timeout=0.2).close()
        except OSError:
            return False
        return True
    # ss reads the namespace's own socket table: no connection is made to the daemon.
    table = subprocess.run(
        _in(namespace, ["ss", "-Htln", f"src {address}:{port}"]),
        capture_output=True,
        text=True,
        check=False,
    )
    return bool(table.stdout.strip())


@contextmanager
def _daemon(
    argv: Sequence[str],
    address: str,
    port: int,
    *,
    namespace: str | None = None,
    env: dict[str, str] | None = None,
    log: Path,
) -> Iterator[None]:
    """``argv`` in the foreground (inside ``namespace`` when given) until the block ends;
    entered once ``address:port`` accepts connections (at most 30 s)."""
    with log.open("wb") as out:
        process = subprocess.Popen(
            _in(namespace, argv),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ, **(env or {})},
            preexec_fn=die_with_parent,
        )
    try:
        deadline = time.monotonic() + 30
        while not _listening(namespace, address, port):
            assert process.poll() is None, log.read_text(errors="replace")
            assert time.monotonic() < deadline, f"{argv[0]} did not listen on {address}:{port}"
            time.sleep(0.1)
        yield
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _audit(
    address: str, port: int, tmp_path: Path, namespace: str | None = None
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The real CLI's JSON report for ``address:port`` (from inside ``namespace`` when given):
    the host and its service on ``port``."""
    out = tmp_path / "report.json"
    result = subprocess.run(
        _in(
            namespace,
            [
                sys.executable,
                "-m",
                "exposure_audit",
                "scan",
                address,
                "--allow-private",
                "--ports",
                str(port),
                "--no-udp",
                "--no-upnp",
                "--format",
                "json",
                "-o",
                str(out),
                "--host-timeout",
                "30",
            ],
        ),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode in (0, 1), result.stderr
    (host,) = json.loads(out.read_text())["hosts"]
    (service,) = [s for s in host["services"] if s["port"] == port]
    return host, service


def _rules(host: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {f["rule"]: f for f in host["findings"]}


# --- Cockpit ----------------------------------------------------------------------------------

needs_cockpit = pytest.mark.skipif(
    not _installed(COCKPIT_WS), reason="cockpit-ws not installed (.ci/install)"
)


@needs_cockpit
def test_cockpit_without_tls_is_a_console_over_plain_http(tmp_path: Path) -> None:
    with _daemon(
        [COCKPIT_WS, "--no-tls", "--port", "9090", "--address", COCKPIT_PLAIN],
        COCKPIT_PLAIN,
        9090,
        log=tmp_path / "cockpit.log",
    ):
        host, service = _audit(COCKPIT_PLAIN, 9090, tmp_path)
    assert service["http"]["scheme"] == "http"
    management = service["management"]
    assert (management["product"], management["category"]) == ("cockpit", "server-console")
    assert "path /cockpit/login" in management["markers"]
    assert management["unauthenticated"] is None  # its login asks for credentials
    assert _rules(host)["MGMT001"]["severity"] == "critical"
    assert host["grade"] == "F"


@needs_cockpit
def test_cockpit_with_its_certificate_is_a_console_over_https(tmp_path: Path) -> None:
    # cockpit-ws finds its certificate in <config dir>/cockpit/ws-certs.d; XDG_CONFIG_DIRS
    # points it at a temporary one instead of /etc/cockpit.
    certs = tmp_path / "config" / "cockpit" / "ws-certs.d"
    certs.mkdir(parents=True)
    issued = issue("example")
    (certs / "lab.crt").write_bytes(issued.leaf_pem)
    (certs / "lab.key").write_bytes(issued.key_pem)
    with (
        _namespace("cockpit", COCKPIT_TLS) as namespace,
        _daemon(
            [COCKPIT_WS, "--port", "9090", "--address", COCKPIT_TLS],
            COCKPIT_TLS,
            9090,
            namespace=namespace,
            env={"XDG_CONFIG_DIRS": str(tmp_path / "config")},
            log=tmp_path / "cockpit.log",
        ),
    ):
        host, service = _audit(COCKPIT_TLS, 9090, tmp_path, namespace)
    # Plain HTTP got a 301 to https:// on the same port; the page behind TLS is the console.
    assert service["http"]["scheme"] == "https"
    assert service["management"]["product"] == "cockpit"
    rules = _rules(host)
    assert rules["MGMT002"]["severity"] == "high"
    assert "MGMT001" not in rules
    assert host["grade"] == "D"


# --- CUPS -------------------------------------------------------------------------------------


@pytest.mark.skipif(
    which("cupsd") is None or not Path("/usr/share/cups/doc-root").is_dir(),
    reason="cupsd or its web pages not installed (.ci/install: cups-daemon, cups-server-common)",
)
def test_cups_web_interface_is_a_console_with_its_version(tmp_path: Path) -> None:
    root = tmp_path / "cups"
    for sub in ("cache", "state", "spool", "tmp", "log", "ssl"):
        (root / sub).mkdir(parents=True)
    places = {
        "ServerRoot": root,
        "CacheDir": root / "cache",
        "StateDir": root / "state",
        "RequestRoot": root / "spool",
        "TempDir": root / "tmp",
        "ServerKeychain": root / "ssl",  # the self-signed certificate cupsd makes goes here
        "ErrorLog": root / "log" / "error_log",
        "AccessLog": root / "log" / "access_log",
        "PageLog": root / "log" / "page_log",
    }
    (root / "cups-files.conf").write_text("".join(f"{k} {v}\n" for k, v in places.items()))
    # A print server left listening on its public address with the web interface on, as the
    # CUPS remediation warns against; no browsing, no DNS-SD.
    (root / "cupsd.conf").write_text(
        f"Listen {CUPS}:631\nBrowsing No\nBrowseLocalProtocols none\nWebInterface Yes\n"
        "LogLevel warn\n<Location />\n  Order allow,deny\n  Allow all\n</Location>\n"
    )
    with (
        _namespace("cups", CUPS) as namespace,
        _daemon(
            [
                which("cupsd") or "cupsd",
                "-f",
                "-c",
                str(root / "cupsd.conf"),
                "-s",
                str(root / "cups-files.conf"),
            ],
            CUPS,
            631,
            namespace=namespace,
            log=tmp_path / "cupsd.log",
        ),
    ):
        host, service = _audit(CUPS, 631, tmp_path, namespace)
    management = service["management"]
    assert (management["product"], management["category"]) == ("cups", "print-server")
    assert management["version"] == "2.4"  # Server: CUPS/2.4 (the title has 2.4.x)
    assert {"title", "header server"} <= set(management["markers"])
    # CUPS 2.4 answers TLS (a self-signed certificate it makes) and plain HTTP on 631 alike;
    # the probe keeps whichever answers first, and the rule follows the scheme it kept.
    rules = _rules(host)
    if service["http"]["scheme"] == "http":
        assert rules["MGMT001"]["severity"] == "critical"
    else:
        assert rules["MGMT002"]["severity"] == "high"


# --- Jupyter ----------------------------------------------------------------------------------


def _jupyter(address: str, token: str, tmp_path: Path) -> Any:
    home = tmp_path / "jupyter"
    for sub in ("config", "data", "runtime", "root"):
        (home / sub).mkdir(parents=True)
    return _daemon(
        [
            sys.executable,
            "-m",
            "jupyter_server",
            f"--ServerApp.ip={address}",
            "--ServerApp.port=8888",
            "--ServerApp.port_retries=0",
            f"--IdentityProvider.token={token}",
            "--ServerApp.password=",
            "--ServerApp.open_browser=False",
            f"--ServerApp.root_dir={home / 'root'}",
            "--allow-root",
        ],
        address,
        8888,
        env={
            "JUPYTER_CONFIG_DIR": str(home / "config"),
            "JUPYTER_DATA_DIR": str(home / "data"),
            "JUPYTER_RUNTIME_DIR": str(home / "runtime"),
            "JUPYTER_PLATFORM_DIRS": "1",
            "HOME": str(home),
        },
        log=tmp_path / "jupyter.log",
    )


needs_jupyter = pytest.mark.skipif(
    not _jupyter_server_installed(), reason="jupyter_server not installed (setup.cfg test extras)"
)


@needs_jupyter
def test_jupyter_without_a_token_acts_without_a_login(tmp_path: Path) -> None:
    with _jupyter(JUPYTER_OPEN, "", tmp_path):
        host, service = _audit(JUPYTER_OPEN, 8888, tmp_path)
    management = service["management"]
    assert (management["product"], management["category"]) == ("jupyter", "notebook")
    import jupyter_server

    assert management["version"] == jupyter_server.__version__  # from GET /api
    assert "/api/kernels" in management["unauthenticated"]
    finding = _rules(host)["MGMT001"]
    assert finding["severity"] == "critical"
    assert "acts without a login" in finding["evidence"]


@needs_jupyter
def test_jupyter_with_a_token_is_found_but_not_called_open(tmp_path: Path) -> None:
    with _jupyter(JUPYTER_TOKEN, "lab-token-not-given-to-the-auditor", tmp_path):
        host, service = _audit(JUPYTER_TOKEN, 8888, tmp_path)
    management = service["management"]
    assert management["product"] == "jupyter"
    assert management["unauthenticated"] is None  # /api/kernels answered 403
    finding = _rules(host)["MGMT001"]
    assert finding["severity"] == "critical"  # plain HTTP
    assert "acts without a login" not in finding["evidence"]


# --- Transmission -----------------------------------------------------------------------------


@pytest.mark.skipif(
    which("transmission-daemon") is None,
    reason="transmission-daemon not installed (.ci/install)",
)
@pytest.mark.parametrize("password", [False, True], ids=["no-rpc-password", "rpc-password"])
def test_transmission_is_found_and_open_only_without_an_rpc_password(
    tmp_path: Path, password: bool
) -> None:
    auth = ["-t", "-u", "admin", "-v", "not-given-to-the-auditor"] if password else ["-T"]
    (tmp_path / "config").mkdir()
    (tmp_path / "downloads").mkdir()
    argv = [
        which("transmission-daemon") or "transmission-daemon",
        "-f",
        "-g",
        str(tmp_path / "config"),
        "-w",
        str(tmp_path / "downloads"),
        "-r",
        TRANSMISSION,
        "-p",
        "9091",
        "-a",
        "*",
        *auth,
        # No DHT, local peer discovery, uTP, port mapping or blocklist; peers only on the
        # namespace's own address.
        "-O",
        "-Y",
        "--no-utp",
        "-M",
        "-B",
        "-C",
        "-i",
        TRANSMISSION,
        "-P",
        "51413",
    ]
    with (
        _namespace("tr", TRANSMISSION) as namespace,
        _daemon(argv, TRANSMISSION, 9091, namespace=namespace, log=tmp_path / "transmission.log"),
    ):
        host, service = _audit(TRANSMISSION, 9091, tmp_path, namespace)
    management = service["management"]
    assert (management["product"], management["category"]) == ("transmission", "download-client")
    finding = _rules(host)["MGMT001"]
    assert finding["severity"] == "critical"
    if password:
        assert service["http"]["status_code"] == 401
        assert management["unauthenticated"] is None
        assert "acts without a login" not in finding["evidence"]
    else:
        assert "409" in management["unauthenticated"]
        assert "acts without a login" in finding["evidence"]
