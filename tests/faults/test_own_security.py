"""The scanner's own security (docs/security.md):

* it never sends a state-changing request: every request of a full ``scan`` against a
  recording DSM look-alike and a recording IGD is checked against a read-only list;
* no shell, no command line built from a string: every subprocess call in the package passes
  an argument list, and python-nmap's string-built ``scan()`` is never used;
* it runs unprivileged unless a privileged scan type is asked for: nmap is started directly
  (never through sudo), ``-sU`` only as root and only when UDP ports are asked for, and only
  addresses follow the ``--`` that ends nmap's options;
* secrets (the SMTP password from the environment, the token in a webhook URL) never reach
  the report, stdout, stderr or the history database, even when both deliveries fail.
"""

from __future__ import annotations

import ast
import asyncio
import contextlib
import ipaddress
import json
import re
import ssl
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import trustme
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

import exposure_audit
from exposure_audit.history.store import HistoryStore

from .support import environment, logging_nmap, run_cli

PACKAGE = Path(exposure_audit.__file__).parent
CAPTURES = Path(__file__).resolve().parents[1] / "data" / "upnp"

DSM_HOST = "127.91.7.10"
IGD_HOST = "127.91.7.11"
CLOSED = "127.91.7.12"

# Every request the scanner may send to a target. GETs: DSM's login page and the endpoints
# that leak its version (dsm/fingerprint.py), and the usual UPnP description paths
# (data/upnp_description_paths.json). POSTs: the three read-only SOAP actions, to the control
# URL the description names. Written out here, not read from the package: a new path must be
# added on purpose.
DSM_PATHS = {
    "/",
    "/webman/index.cgi",
    "/synohdpack/synohdpack.version",
    "/webman/info.cgi?host=",
    "/webapi/query.cgi?api=SYNO.API.Info&version=1&method=query&query=SYNO.API.Auth",
}
DESCRIPTION_PATHS = {
    "/rootDesc.xml",
    "/ssdp/desc-DSM-eth0.xml",
    "/ssdp/desc-DSM-eth1.xml",
    "/ssdp/desc-DSM-ovs_eth0.xml",
    "/ssdp/desc-DSM-bond0.xml",
    "/gatedesc.xml",
    "/etc/linuxigd/gatedesc.xml",
    "/igd.xml",
    "/IGD.xml",
    "/UPnP/IGD.xml",
    "/upnp/IGD.xml",
    "/gateway.xml",
    "/description.xml",
    "/DeviceDescription.xml",
}
READ_ONLY_ACTIONS = {"GetExternalIPAddress", "GetGenericPortMappingEntry", "GetStatusInfo"}
CONTROL_PATH = "/ctl/IPConn"  # in the captured miniupnpd description


# ============================================================================ recording servers


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Recorder:
    """An HTTP/1.1 server on ``host``: records every request (a TLS ClientHello as the
    method ``TLS``) and answers through ``answer``."""

    host: str
    kind: str
    port: int = 0
    seen: list[Request] = field(default_factory=list)

    def answer(self, request: Request) -> tuple[int, bytes]:
        if self.kind == "dsm":
            # Pretend to be DSM on every path, so that every DSM endpoint is asked for too.
            return 200, (
                b"<html><title>x&nbsp;-&nbsp;Synology&nbsp;NAS</title>"
                b"<noscript><div class='syno-no-script'>js</div></noscript></html>"
            )
        if request.method == "GET" and request.path == "/rootDesc.xml":
            return 200, (CAPTURES / "miniupnpd231_igd2_rootDesc.xml").read_bytes()
        action = request.headers.get("soapaction", "").strip('"').rsplit("#", 1)[-1]
        if request.method == "POST" and action == "GetExternalIPAddress":
            return 200, (CAPTURES / "miniupnpd231_GetExternalIPAddress.xml").read_bytes()
        if request.method == "POST" and action == "GetGenericPortMappingEntry":
            index = re.search(rb"<NewPortMappingIndex>(\d+)<", request.body)
            number = int(index.group(1)) if index else 99
            if number < 3:
                name = f"miniupnpd231_GetGenericPortMappingEntry_{number}.xml"
                return 200, (CAPTURES / name).read_bytes()
            return 500, (CAPTURES / "miniupnpd231_fault_713.xml").read_bytes()
        return 404, b""


@contextlib.contextmanager
def recording(recorder: Recorder, port: int) -> Iterator[Recorder]:
    loop = asyncio.new_event_loop()
    ready = threading.Event()
    stop: asyncio.Event | None = None

    async def on_connect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            first = await reader.readexactly(1)
            if first == b"\x16":  # a TLS handshake: the scanner tries TLS on every port
                recorder.seen.append(Request("TLS", "", {}, b""))
                return
            head = first + await reader.readuntil(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            method, target, _ = lines[0].split(" ", 2)
            headers = {
                k.strip().lower(): v.strip()
                for k, _, v in (line.partition(":") for line in lines[1:] if line)
            }
            body = await reader.readexactly(int(headers.get("content-length", "0")))
            request = Request(method, target, headers, body)
            recorder.seen.append(request)
            status, content = recorder.answer(request)
            writer.write(
                f"HTTP/1.1 {status} X\r\nContent-Type: text/html\r\nContent-Length: "
                f"{len(content)}\r\nConnection: close\r\n\r\n".encode()
                + content
            )
            await writer.drain()
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError):
            pass
        finally:
            with contextlib.suppress(OSError):
                writer.close()

    async def main() -> None:
        nonlocal stop
        stop = asyncio.Event()
        server = await asyncio.start_server(on_connect, recorder.host, port)
        recorder.port = server.sockets[0].getsockname()[1]
        ready.set()
        await stop.wait()
        server.close()

    thread = threading.Thread(target=loop.run_until_complete, args=(main(),), daemon=True)
    thread.start()
    assert ready.wait(10)
    try:
        yield recorder
    finally:
        assert stop is not None
        loop.call_soon_threadsafe(stop.set)
        thread.join(10)


def test_a_full_scan_sends_only_read_only_requests() -> None:
    # Given a DSM look-alike on 5000 and a miniupnpd-like IGD on 49152 (both description ports)
    with (
        recording(Recorder(DSM_HOST, "dsm"), 5000) as dsm,
        recording(Recorder(IGD_HOST, "igd"), 49152) as igd,
    ):
        # When a full scan runs against them
        result = run_cli(
            "scan",
            DSM_HOST,
            IGD_HOST,
            "--allow-private",
            "-p",
            "5000,49152",
            "--no-history",
            "--format",
            "json",
        )
    assert result.returncode in (0, 1), result.stderr
    doc = json.loads(result.stdout)
    # Then it did reach every read: DSM's version endpoints and the IGD's mapping table
    dsm_gets = {r.path for r in dsm.seen if r.method == "GET"}
    assert DSM_PATHS - {"/webman/index.cgi"} <= dsm_gets
    igd_actions = [
        r.headers["soapaction"].strip('"').rsplit("#", 1)[-1]
        for r in igd.seen
        if r.method == "POST"
    ]
    assert igd_actions.count("GetGenericPortMappingEntry") == 4  # 3 entries, then fault 713
    igd_host = next(h for h in doc["hosts"] if h["address"] == IGD_HOST)
    assert igd_host["upnp"]["igd"]["mappings_readable"] is True
    assert len(igd_host["upnp"]["mappings"]) == 3
    # And every request, to either, is on the read-only list
    for request in dsm.seen + igd.seen:
        _assert_read_only(request)


def _assert_read_only(request: Request) -> None:
    if request.method == "TLS":
        return  # a ClientHello: the TLS attempt every open port gets
    assert "authorization" not in request.headers and "cookie" not in request.headers, request
    if request.method == "GET":
        assert request.path in DSM_PATHS | DESCRIPTION_PATHS, request
        assert request.body == b"" and "soapaction" not in request.headers, request
        return
    assert request.method == "POST", request
    assert request.path == CONTROL_PATH, request
    action = request.headers["soapaction"].strip('"').rsplit("#", 1)[-1]
    assert action in READ_ONLY_ACTIONS, request
    # the body calls the action the header names, and no other
    called = set(re.findall(rb"<u:(\w+)[\s>]", request.body))
    assert called == {action.encode()}, request


# ================================================================ subprocesses and privileges

# The calls that start a process, by module; the ones that run a shell are refused outright.
_STARTS_A_PROCESS = {
    "asyncio": {"create_subprocess_exec", "create_subprocess_shell"},
    "subprocess": {"Popen", "run", "call", "check_call", "check_output"},
    "os": {"spawnl", "spawnlp", "spawnv", "spawnvp", "execl", "execlp", "execv", "execvp"},
}
_RUNS_A_SHELL = {
    "asyncio": {"create_subprocess_shell"},
    "subprocess": {"getoutput", "getstatusoutput"},
    "os": {"system", "popen"},
}


def _qualified(node: ast.expr) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return f"{_qualified(node.value)}.{node.attr}"
    return "?"


def _list_assignments(tree: ast.AST) -> dict[str, ast.expr]:
    """Name -> the value last assigned to it anywhere in the module (enough for one-liners)."""
    found: dict[str, ast.expr] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign):
            for target in node.targets:
                if isinstance(target, ast.Name):
                    found[target.id] = node.value
    return found


def test_every_subprocess_call_in_the_package_passes_an_argument_list() -> None:
    calls = 0
    for path in sorted(PACKAGE.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        assigned = _list_assignments(tree)
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call):
                continue
            name = _qualified(node.func)
            module, _, function = name.rpartition(".")
            where = f"{path.relative_to(PACKAGE.parent)}:{node.lineno}"
            assert not any(k.arg == "shell" for k in node.keywords), f"{where}: shell="
            owner = module.split(".")[-1]
            assert function not in _RUNS_A_SHELL.get(owner, ()), f"{where}: {name} runs a shell"
            if function not in _STARTS_A_PROCESS.get(owner, ()):
                continue
            calls += 1
            # The command is a list: a list display, or *argv where argv is one.
            first = node.args[0] if node.args else None
            if isinstance(first, ast.Starred) and isinstance(first.value, ast.Name):
                first = assigned.get(first.value.id)
            assert isinstance(first, ast.List), f"{where}: {name} is not given an argv list"
            for item in first.elts:
                text = item.value if isinstance(item, ast.Starred) else item
                assert not isinstance(text, ast.JoinedStr | ast.BinOp), (
                    f"{where}: an argument of {name} is built from a string: {ast.unparse(text)}"
                )
    assert calls >= 1  # nmap is started this way: the check saw it


def test_python_nmaps_string_built_scan_is_never_used() -> None:
    # PortScanner.scan() builds its command line with shlex.split() of a string
    # (CVE-2022-30284 was the same mistake in python-libnmap): only its XML parser is used.
    for path in PACKAGE.rglob("*.py"):
        text = path.read_text(encoding="utf-8")
        assert "PortScanner()" not in text and "PortScannerAsync" not in text, path
        assert not re.search(r"\.scan\(\s*hosts\s*=", text), path
        for word in ("sudo", "doas", "pkexec", "setuid(", "seteuid("):
            assert word not in text, f"{path}: {word}"


def _nmap_calls(log: Path) -> list[list[str]]:
    return [line.split()[1:] for line in log.read_text().splitlines()]


def _assert_only_addresses_after_the_options_end(argv: list[str]) -> None:
    assert argv.count("--") == 1, argv
    for host in argv[argv.index("--") + 1 :]:
        ipaddress.ip_address(host)


@pytest.mark.skipif(sys.platform != "linux", reason="needs a POSIX shell for the fake nmap")
@pytest.mark.parametrize(
    ("as_root", "extra", "udp"),
    [(True, (), True), (True, ("--no-udp",), False), (False, (), False)],
    ids=["root", "root-no-udp", "unprivileged"],
)
def test_nmap_runs_directly_and_scans_udp_only_as_root(
    tmp_path: Path, as_root: bool, extra: tuple[str, ...], udp: bool
) -> None:
    path, log = logging_nmap(tmp_path / "bin")
    argv = ["scan", CLOSED, "--allow-private", "-p", "5000,U:161", "--no-history", "--format"]
    argv += ["json", *extra]
    if as_root:
        result = run_cli(*argv, env=environment(path))
    else:
        # An unprivileged user, as the process sees it: os.geteuid() is not 0.
        result = subprocess.run(
            [
                sys.executable,
                "-c",
                "import os, sys; os.geteuid = lambda: 1000; "
                "from exposure_audit.cli.main import main; sys.exit(main(sys.argv[1:]))",
                *argv,
            ],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
            env=environment(path),
        )
    assert result.returncode == 0, result.stderr
    (call,) = _nmap_calls(log)
    # nmap itself is started (the first PATH entry), never through sudo or a shell
    assert call[0] == str(tmp_path / "bin" / "nmap")
    assert ("-sU" in call) is udp, call
    assert "-sT" in call  # the connect scan: no raw sockets needed
    _assert_only_addresses_after_the_options_end(call)
    notes = json.loads(result.stdout)["notes"]
    if not udp:
        assert any(n.startswith("UDP ports") for n in notes), notes
    if not as_root:
        assert any("UDP scanning needs root" in n for n in notes), notes


# ====================================================================================== secrets

SMTP_USER = "audit-bot"
SMTP_PASSWORD = "pw-Zq8#secret-never-shown"
WEBHOOK_TOKEN = "T00000000/B00000000/XXXXsecretTOKENxxxx"
WEBHOOK_QUERY = "key=query-secret-42"


@contextlib.contextmanager
def refusing_smtp(host: str, ca: trustme.CA) -> Iterator[tuple[int, list[Any]]]:
    """aiosmtpd with STARTTLS (a certificate for ``host``) that refuses every login."""
    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert(host).configure_cert(tls)
    attempts: list[Any] = []
    loop = asyncio.new_event_loop()

    class Handler:
        async def handle_DATA(  # noqa: N802 - aiosmtpd's hook name
            self, server: SMTP, session: Session, envelope: Envelope
        ) -> str:
            return "250 accepted"

    def authenticator(
        server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any
    ) -> AuthResult:
        attempts.append(data)
        return AuthResult(success=False, handled=False)

    def factory() -> SMTP:
        return SMTP(
            Handler(),
            hostname="mx.test",
            tls_context=tls,
            require_starttls=True,
            authenticator=authenticator,
            auth_required=True,
            auth_require_tls=True,
            loop=loop,
        )

    server = loop.run_until_complete(loop.create_server(factory, host, 0))
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    try:
        yield server.sockets[0].getsockname()[1], attempts
    finally:
        loop.call_soon_threadsafe(server.close)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5)
        loop.close()


def test_secrets_never_reach_the_report_the_terminal_or_the_history(tmp_path: Path) -> None:
    ca = trustme.CA()
    cafile = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(cafile))
    history = tmp_path / "history.sqlite3"
    output = tmp_path / "report.json"
    # Given a webhook that refuses, echoing the URL it was called with (token and all)
    webhook = Recorder("127.91.7.20", "echo")
    webhook.answer = lambda request: (403, f"no such hook: {request.path}".encode())  # type: ignore[method-assign]
    with (
        recording(webhook, 0) as hook,
        refusing_smtp("127.91.7.21", ca) as (smtp_port, logins),
    ):
        url = f"http://{hook.host}:{hook.port}/services/{WEBHOOK_TOKEN}?{WEBHOOK_QUERY}"
        config = tmp_path / "audit.toml"
        config.write_text(
            f'targets = ["{CLOSED}"]\nallow_private = true\nports = "5000"\n'
            '[notify]\nwhen = "always"\n'
            f'[notify.email]\nhost = "127.91.7.21"\nport = {smtp_port}\n'
            'sender = "audit@example.net"\nto = ["ops@example.net"]\n'
            'username_env = "AUDIT_SMTP_USER"\npassword_env = "AUDIT_SMTP_PASSWORD"\n'
            "retries = 0\n",
            encoding="utf-8",
        )
        # When a scan notifies both, with the webhook URL on the command line
        result = run_cli(
            "scan",
            "-c",
            str(config),
            "--webhook",
            url,
            "--history",
            str(history),
            "--format",
            "json",
            "-o",
            str(output),
            "--progress",
            env=environment(
                AUDIT_SMTP_USER=SMTP_USER,
                AUDIT_SMTP_PASSWORD=SMTP_PASSWORD,
                SSL_CERT_FILE=str(cafile),
            ),
        )
        # and the stored run is read back through every command that shows it
        shown = [
            run_cli(*command, "--history", str(history))
            for command in (("history",), ("report", "latest", "--format", "json"))
        ]
    # Then both deliveries were tried with the real secrets, and both failed
    assert hook.seen and WEBHOOK_TOKEN in hook.seen[0].path
    assert logins and all(isinstance(login, LoginPassword) for login in logins)
    assert {login.password for login in logins} == {SMTP_PASSWORD.encode()}
    assert "notification by webhook to http://127.91.7.20:" in result.stderr
    assert "notification by email to 127.91.7.21:" in result.stderr
    assert "authentication refused for $AUDIT_SMTP_USER" in result.stderr
    assert result.returncode == 0, result.stderr
    # And no secret is in any output, in the report, or anywhere in the history's files
    texts = {
        "stdout": result.stdout,
        "stderr": result.stderr,
        "report": output.read_text(encoding="utf-8"),
        **{f"shown {i}": r.stdout + r.stderr for i, r in enumerate(shown)},
    }
    files = {p.name: p.read_bytes() for p in tmp_path.glob("history.sqlite3*")}
    assert files, "the history was written"
    for secret in (SMTP_PASSWORD, WEBHOOK_TOKEN, "secretTOKEN", WEBHOOK_QUERY, "query-secret"):
        for where, text in texts.items():
            assert secret not in text, f"{secret!r} in {where}"
        for name, data in files.items():
            assert secret.encode() not in data, f"{secret!r} in {name}"
    # while the history still says where the run went: the origin of the webhook only
    with HistoryStore(history) as store:
        (run,) = store.runs()
    assert f"--webhook http://127.91.7.20:{hook.port}/…" in run.command
