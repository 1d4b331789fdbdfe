"""Real management consoles that Debian or PyPI ship, each started here and audited by the real
CLI (real nmap): Cockpit (``cockpit-ws``, with and without TLS), CUPS (``cupsd``), Jupyter
Server (with and without a token), Transmission (``transmission-daemon``, with and without
an RPC password), Syncthing (with and without a GUI password), RabbitMQ's management plugin
and Netdata. Each is found with its catalog product and category and gets the rule its
exposure deserves.

Nothing leaves the machine: Cockpit and Jupyter listen on this run's loopback addresses and
contact nothing on their own; cupsd, transmission-daemon, Cockpit with TLS, Syncthing,
RabbitMQ (with its epmd) and Netdata run inside a network namespace of their own that holds
only its loopback interface (with a documentation address on it), and the CLI audits them
from inside it. The address outside 127.0.0.0/8 makes them answer as to a remote client: CUPS
answers 400 to a loopback client's Host header unless it is "localhost" (its valid_host check),
and cockpit-ws serves its page over plain HTTP to a loopback client where a remote one gets a
redirect to https on the same port. Transmission would otherwise try DHT, local peer discovery
and NAT-PMP/UPnP port mapping, Syncthing discovery, relays, NAT traversal, usage and crash
reports and upgrades, Netdata anonymous statistics and a cloud-metadata lookup; all of them
are switched off as well.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import pytest

from exposure_audit.lab.certificates import issue
from tests.nslib import die_with_parent, which

# Loopback addresses of this module (Cockpit, Jupyter) and the documentation addresses the
# namespaced daemons (CUPS, Transmission) listen on inside their own namespace.
COCKPIT_PLAIN = "127.142.3.1"
JUPYTER_OPEN, JUPYTER_TOKEN = "127.142.3.4", "127.142.3.5"
CUPS, TRANSMISSION, COCKPIT_TLS = "192.0.2.31", "192.0.2.32", "192.0.2.33"
SYNCTHING, RABBITMQ, NETDATA = "192.0.2.34", "192.0.2.35", "192.0.2.36"
COCKPIT_WS = "/usr/lib/cockpit/cockpit-ws"
# The broker itself as root (Debian's /usr/sbin/rabbitmq-server switches to its own user, who
# could not write this test's directories) and the plugins it ships.
RABBITMQ_SERVER = "/usr/lib/rabbitmq/bin/rabbitmq-server"
RABBITMQ_PLUGINS = "/usr/lib/rabbitmq/lib"


def _installed(path: str | None) -> bool:
    return path is not None and os.access(path, os.X_OK)


def _jupyter_server_installed() -> bool:
    try:
        import jupyter_server  # noqa: F401
    except ImportError:
        return False
    return True


@contextmanager
def _namespace(name: str, address: str, tag: str = "lb") -> Iterator[str]:
    """A network namespace ``<tag>-<name>-<pid>`` holding only ``lo``, up, with ``address``.

    On the way out every process still inside it is ended, by its id (daemons that fork a
    helper of their own, as Erlang's epmd does for RabbitMQ, would outlive the namespace)."""
    namespace = f"{tag}-{name}-{os.getpid()}"
    subprocess.run(["ip", "netns", "add", namespace], check=True)
    try:
        subprocess.run(["ip", "-n", namespace, "link", "set", "lo", "up"], check=True)
        subprocess.run(
            ["ip", "-n", namespace, "addr", "add", f"{address}/32", "dev", "lo"], check=True
        )
        yield namespace
    finally:
        _end_processes_in(namespace)
        subprocess.run(["ip", "netns", "del", namespace], check=False)


def _pids_in(namespace: str) -> list[int]:
    listed = subprocess.run(
        ["ip", "netns", "pids", namespace], capture_output=True, text=True, check=False
    )
    return [int(p) for p in listed.stdout.split() if p.isdigit()]


def _end_processes_in(namespace: str) -> None:
    """SIGTERM to every process left in ``namespace``, SIGKILL to any still there after 10 s."""
    for signal_number in (signal.SIGTERM, signal.SIGKILL):
        pids = _pids_in(namespace)
        for pid in pids:
            with suppress(ProcessLookupError):
                os.kill(pid, signal_number)
        deadline = time.monotonic() + 10
        while pids and time.monotonic() < deadline:
            time.sleep(0.1)
            pids = _pids_in(namespace)
        if not pids:
            return


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
        # CUPS 2.4 answers TLS (a self-signed certificate it makes) and plain HTTP on 631
        # alike, and which answers first varies from run to run: the same CUPS must get the
        # same rule every time, the worse one, since the console is reachable over plain HTTP.
        audits = [_audit(CUPS, 631, tmp_path, namespace) for _ in range(3)]
    for host, service in audits:
        management = service["management"]
        assert (management["product"], management["category"]) == ("cups", "print-server")
        assert management["version"] == "2.4"  # Server: CUPS/2.4 (the title has 2.4.x)
        assert {"title", "header server"} <= set(management["markers"])
        http = service["http"]
        assert http["scheme"] == "http" or http["also_plain_http"] is True
        rules = _rules(host)
        assert rules["MGMT001"]["severity"] == "critical"
        assert "MGMT002" not in rules
        assert host["grade"] == "F"


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


# --- Syncthing --------------------------------------------------------------------------------

# What a generated config.xml turns off so that nothing leaves the namespace even by accident:
# global and local discovery, relays, NAT traversal (UPnP/NAT-PMP, STUN), usage and crash
# reporting, automatic upgrades (docs.syncthing.net/users/config.html names each option).
_SYNCTHING_OPTIONS = {
    "listenAddress": f"tcp://{SYNCTHING}:22000",
    "globalAnnounceEnabled": "false",
    "localAnnounceEnabled": "false",
    "relaysEnabled": "false",
    "natEnabled": "false",
    "stunKeepaliveStartS": "0",
    "announceLANAddresses": "false",
    "urAccepted": "-1",
    "crashReportingEnabled": "false",
    "autoUpgradeIntervalH": "0",
    "startBrowser": "false",
}


@pytest.mark.skipif(which("syncthing") is None, reason="syncthing not installed (.ci/install)")
@pytest.mark.parametrize("password", [False, True], ids=["no-gui-password", "gui-password"])
def test_syncthing_gui_acts_without_a_login_only_without_a_gui_password(
    tmp_path: Path, password: bool
) -> None:
    syncthing = which("syncthing") or "syncthing"
    home = tmp_path / "syncthing"
    credentials = ["--gui-user=admin", "--gui-password=not-given-to-the-auditor"]
    env = {"HOME": str(tmp_path), "STNOUPGRADE": "1", "STNODEFAULTFOLDER": "1"}
    with _namespace("st", SYNCTHING, "cs") as namespace:
        # Keys and a default config first (inside the namespace too), then the options above.
        subprocess.run(
            _in(
                namespace,
                [
                    syncthing,
                    "generate",
                    f"--home={home}",
                    "--no-default-folder",
                    "--skip-port-probing",
                    *(credentials if password else []),
                ],
            ),
            env={**os.environ, **env},
            capture_output=True,
            check=True,
            timeout=60,
        )
        # The config syncthing generated just now, in this test's directory: trusted input.
        config = ElementTree.parse(home / "config.xml")  # noqa: S314
        options = config.getroot().find("options")
        assert options is not None
        for name, value in _SYNCTHING_OPTIONS.items():
            element = options.find(name)
            if element is None:
                element = ElementTree.SubElement(options, name)
            element.text = value
        gui = config.getroot().find("gui")
        assert gui is not None and gui.get("tls") == "false"
        address = gui.find("address")
        assert address is not None
        address.text = f"{SYNCTHING}:8384"
        config.write(home / "config.xml")
        with _daemon(
            [syncthing, "serve", f"--home={home}", "--no-browser", "--no-restart"],
            SYNCTHING,
            8384,
            namespace=namespace,
            env=env,
            log=tmp_path / "syncthing.log",
        ):
            host, service = _audit(SYNCTHING, 8384, tmp_path, namespace)
    rules = _rules(host)
    if password:
        # Every path, / included, is a bare 401 "Not Authorized" without Syncthing's headers:
        # nothing on the port names Syncthing, and nothing says it is open. It is still a
        # password prompt on Syncthing's default port, never a clean port.
        assert service["http"]["status_code"] == 401
        assert service["management"] is None
        assert service["http"]["login_prompt"].startswith("WWW-Authenticate: Basic realm=")
        assert sorted(r for r in rules if r.startswith("MGMT")) == ["MGMT004"]
        assert rules["MGMT004"]["severity"] == "medium"
        assert "default port of Syncthing GUI" in rules["MGMT004"]["evidence"]
        return
    management = service["management"]
    assert (management["product"], management["category"]) == ("syncthing", "file-sync")
    # X-Syncthing-Version: v1.19.2-ds1 on Debian 12, as the binary says.
    shown = subprocess.run([syncthing, "--version"], capture_output=True, text=True, check=True)
    assert f"v{management['version']}" in shown.stdout.split()
    assert {"header x-syncthing-id", "header x-syncthing-version"} <= set(management["markers"])
    assert "CSRF Error" in management["unauthenticated"]
    # The GUI answers TLS on the same port even with tls off; plain HTTP serves it too.
    assert service["http"]["scheme"] == "http" or service["http"]["also_plain_http"]
    finding = rules["MGMT001"]
    assert finding["severity"] == "critical"
    assert "acts without a login" in finding["evidence"]
    assert "MGMT002" not in rules


# --- RabbitMQ management ----------------------------------------------------------------------


def _rabbitmq_installed() -> bool:
    plugins = Path(RABBITMQ_PLUGINS).glob("rabbitmq_server-*/plugins/rabbitmq_management-*")
    return _installed(RABBITMQ_SERVER) and any(plugins)


def _answers(namespace: str, url: str, deadline: float) -> bool:
    """Whether GET ``url`` (from inside ``namespace``) answers 200 before ``deadline``."""
    probe = (
        "import sys, urllib.request\n"
        "try:\n"
        f"    sys.exit(0 if urllib.request.urlopen({url!r}, timeout=2).status == 200 else 1)\n"
        "except Exception:\n"
        "    sys.exit(1)\n"
    )
    while time.monotonic() < deadline:
        if subprocess.run(_in(namespace, [sys.executable, "-c", probe]), check=False).returncode:
            time.sleep(0.3)
            continue
        return True
    return False


@pytest.mark.skipif(not _rabbitmq_installed(), reason="rabbitmq-server not installed (.ci/install)")
def test_rabbitmq_management_plugin_is_a_console_over_plain_http(tmp_path: Path) -> None:
    # Node name, base, Mnesia, log and plugin-expansion directories, config and the enabled
    # plugins all in this test's directory (the RABBITMQ_* variables of rabbitmq-env); the
    # Erlang cookie in its HOME. epmd, which the node starts on 4369, stays in the namespace.
    base = tmp_path / "rabbitmq"
    for sub in ("mnesia", "log", "home", "plugins-expand"):
        (base / sub).mkdir(parents=True)
    (base / "enabled_plugins").write_text("[rabbitmq_management].\n")
    (base / "rabbitmq.conf").write_text(
        f"listeners.tcp.default = {RABBITMQ}:5672\n"
        f"management.tcp.ip = {RABBITMQ}\n"
        "management.tcp.port = 15672\n"
    )
    env = {
        "HOME": str(base / "home"),
        "RABBITMQ_NODENAME": "rabbit@localhost",
        "RABBITMQ_BASE": str(base),
        "RABBITMQ_MNESIA_BASE": str(base / "mnesia"),
        "RABBITMQ_LOG_BASE": str(base / "log"),
        "RABBITMQ_CONFIG_FILE": str(base / "rabbitmq.conf"),
        "RABBITMQ_ENABLED_PLUGINS_FILE": str(base / "enabled_plugins"),
        "RABBITMQ_PLUGINS_EXPAND_DIR": str(base / "plugins-expand"),
        "RABBITMQ_PID_FILE": str(base / "rabbitmq.pid"),
    }
    with (
        _namespace("rmq", RABBITMQ, "cs") as namespace,
        _daemon(
            [RABBITMQ_SERVER],
            RABBITMQ,
            15672,
            namespace=namespace,
            env=env,
            log=tmp_path / "rabbitmq.log",
        ),
    ):
        # The listener opens as the plugin starts; wait (bounded) for the page itself.
        url = f"http://{RABBITMQ}:15672/"
        assert _answers(namespace, url, time.monotonic() + 30), "no management page in 30 s"
        host, service = _audit(RABBITMQ, 15672, tmp_path, namespace)
    management = service["management"]
    assert (management["product"], management["category"]) == (
        "rabbitmq-management",
        "message-broker",
    )
    assert management["version"] is None  # the plugin shows its version only after a login
    assert {"title", "path /api/auth"} <= set(management["markers"])
    assert management["unauthenticated"] is None
    rules = _rules(host)
    assert rules["MGMT001"]["severity"] == "critical"
    assert host["grade"] == "F"


# --- Netdata ----------------------------------------------------------------------------------


@pytest.mark.skipif(which("netdata") is None, reason="netdata not installed (.ci/install)")
def test_netdata_dashboard_is_a_console_with_its_version(tmp_path: Path) -> None:
    root = tmp_path / "netdata"
    for sub in ("etc", "plugins", "log", "cache", "lib"):
        (root / sub).mkdir(parents=True)
    # No anonymous statistics (this file, and DISABLE_TELEMETRY); Debian builds Netdata
    # without Netdata Cloud/ACLK. The plugins directory is empty: system-info.sh (which asks
    # cloud metadata at 169.254.169.254), anonymous-statistics.sh and alarm-notify.sh are
    # never found, so never run; every collector plugin is off, health (notifications) and
    # the registry too.
    (root / "etc" / ".opt-out-from-anonymous-statistics").touch()
    plugins_off = [
        "proc", "diskspace", "cgroups", "tc", "idlejitter", "statsd", "timex",
        "netdata-monitoring", "apps", "charts.d", "python.d", "go.d", "perf", "slabinfo", "cups",
        "fping", "ioping", "nfacct", "ebpf",
    ]  # fmt: skip
    (root / "netdata.conf").write_text(
        "[global]\n\trun as user = root\n\thostname = lab\n\tmemory mode = ram\n"
        "[directories]\n"
        f"\tconfig = {root / 'etc'}\n\tstock config = /usr/lib/netdata/conf.d\n"
        f"\tlog = {root / 'log'}\n\tcache = {root / 'cache'}\n\tlib = {root / 'lib'}\n"
        f"\thome = {root}\n\tplugins = {root / 'plugins'}\n"
        f"\thealth config = {root / 'etc'}\n\tstock health config = {root / 'etc'}\n"
        f"[logs]\n\terror log = {root / 'log' / 'error.log'}\n\taccess log = none\n"
        f"[web]\n\tbind to = {NETDATA}:19999\n"
        "[plugins]\n\tenable running new plugins = no\n"
        + "".join(f"\t{name} = no\n" for name in plugins_off)
        + "[health]\n\tenabled = no\n[registry]\n\tenabled = no\n[ml]\n\tenabled = no\n"
        "[statsd]\n\tenabled = no\n"
    )
    with (
        _namespace("nd", NETDATA, "cs") as namespace,
        _daemon(
            [which("netdata") or "netdata", "-D", "-c", str(root / "netdata.conf")],
            NETDATA,
            19999,
            namespace=namespace,
            env={"DISABLE_TELEMETRY": "1", "NETDATA_DISABLE_CLOUD": "1"},
            log=tmp_path / "netdata.log",
        ),
    ):
        host, service = _audit(NETDATA, 19999, tmp_path, namespace)
    installed = subprocess.run(
        ["dpkg-query", "-W", "-f=${Version}", "netdata-core"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout
    management = service["management"]
    assert (management["product"], management["category"]) == ("netdata", "monitoring")
    # /api/v1/info says "v1.37.1"; Debian's package version is 1.37.1-2.
    assert management["version"] and installed.startswith(management["version"])
    assert {"title", "header server", "path /api/v1/info"} <= set(management["markers"])
    rules = _rules(host)
    assert rules["MGMT001"]["severity"] == "critical"
    assert host["grade"] == "F"
