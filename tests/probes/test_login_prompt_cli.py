"""MGMT004 end to end: HTTP password prompts served on loopback, found by real nmap and the real
HTTP probe through the real CLI. A prompt nothing identifies is never graded A: medium on a
management product's default port, low elsewhere; hostile challenge text stays inert."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..cli.runner import run_cli
from .sample_server import serve_samples

NET = "127.214.0."
# A made-up appliance's login page: a form with a password field, no product named.
_ROUTER_LOGIN = (
    "<!DOCTYPE html><html><head><title>Login</title></head><body>"
    '<form method="post" action="/cgi-bin/login"><input name="user" type="text">'
    "<INPUT NAME=pass TYPE=PASSWORD><button>Sign in</button></form></body></html>"
)


def _page(port: int, status: int, headers: list[list[str]], body: str) -> dict[str, Any]:
    return {
        "scheme": "http",
        "port": port,
        "status": status,
        "headers": headers,
        "body": body,
        "paths": {},
    }


def _prompt(port: int, challenge: str) -> dict[str, Any]:
    return _page(port, 401, [["WWW-Authenticate", challenge]], "Not Authorized\n")


def _scan(tmp_path: Path, placed: dict[str, dict[str, Any]], ports: str) -> dict[str, Any]:
    out = tmp_path / "report.json"
    with serve_samples(placed):
        result = run_cli(
            "scan", *placed, "--allow-private", "--no-udp", "--ports", ports,
            "--format", "json", "-o", str(out), "--host-timeout", "30",
        )  # fmt: skip
    assert result.returncode in (0, 1), result.stderr
    return {h["address"]: h for h in json.loads(out.read_text())["hosts"]}


def test_a_password_prompt_nothing_identifies_is_reported_never_graded_clean(
    tmp_path: Path,
) -> None:
    # Given: the prompt Syncthing's GUI shows with a password set (nothing else names it) on
    # its default port, a prompt whose realm carries terminal escapes on a port no console
    # uses, a plain page without a prompt on the same default port, and a router's login
    # form the catalog does not know, behind a redirect, on a console port
    syncthing_like, elsewhere, no_prompt, router = (f"{NET}{i}" for i in (1, 2, 3, 5))
    form = _page(8080, 200, [], _ROUTER_LOGIN)
    form["status"], form["headers"], form["body"] = 302, [["Location", "/login.htm"]], ""
    form["paths"] = {"/login.htm": {"status": 200, "headers": [], "body": _ROUTER_LOGIN}}
    placed = {
        syncthing_like: _prompt(8384, 'Basic realm="Authorization Required"'),
        elsewhere: _prompt(18080, 'Basic realm="\x1b[2J\x1b[31mvault"'),
        no_prompt: _page(8384, 200, [], "<html><title>hello</title>hello</html>"),
        router: form,
    }
    # When one real scan audits them
    hosts = _scan(tmp_path, placed, "8080,8384,18080")

    # Then the default port's prompt is medium, names the product whose port it is and warns
    # that its password would travel in clear text
    (service,) = [s for s in hosts[syncthing_like]["services"] if s["port"] == 8384]
    assert (
        service["http"]["login_prompt"] == 'WWW-Authenticate: Basic realm="Authorization Required"'
    )
    assert service["management"] is None
    (finding,) = [f for f in hosts[syncthing_like]["findings"] if f["rule"] == "MGMT004"]
    assert (finding["severity"], finding["port"]) == ("medium", 8384)
    assert "Syncthing GUI" in finding["evidence"]
    assert "clear text" in finding["evidence"]
    assert hosts[syncthing_like]["grade"] == "C"

    # and a prompt elsewhere is low, with its reason, its escapes shown not obeyed
    (finding,) = [f for f in hosts[elsewhere]["findings"] if f["rule"] == "MGMT004"]
    assert (finding["severity"], finding["port"]) == ("low", 18080)
    assert "no management product's default port" in finding["severity_reason"]
    assert "\x1b" not in json.dumps(hosts[elsewhere])
    assert "\\x1b[31mvault" in finding["evidence"]
    assert hosts[elsewhere]["grade"] == "B"

    # and a page that asks for nothing gets no MGMT004
    assert "MGMT004" not in [f["rule"] for f in hosts[no_prompt]["findings"]]

    # and the unknown router's login form is a prompt too, on the page the redirect led to
    (service,) = [s for s in hosts[router]["services"] if s["port"] == 8080]
    assert service["http"]["login_prompt"] == "a password field in the page at /login.htm"
    (finding,) = [f for f in hosts[router]["findings"] if f["rule"] == "MGMT004"]
    assert finding["severity"] == "medium"  # 8080 is a console's default port
    assert "a password field in the page at /login.htm" in finding["evidence"]


def test_the_table_tells_what_to_do_about_a_prompt(tmp_path: Path) -> None:
    placed = {f"{NET}4": _prompt(8384, 'Basic realm="Authorization Required"')}
    with serve_samples(placed):
        result = run_cli(
            "scan", *placed, "--allow-private", "--no-udp", "--no-history", "--ports", "8384",
            "--host-timeout", "30",
        )  # fmt: skip
    assert result.returncode in (0, 1), result.stderr
    assert "grade A" not in result.stdout
    assert "MGMT004" in result.stdout
    # The table wraps at 80 columns; the finding, its fix and the product's port are all there.
    words = " ".join(result.stdout.split())
    assert "MEDIUM MGMT004 8384/tcp Password prompt of an" in words
    assert "8384 is the default port of Syncthing GUI" in words
    assert "(MGMT004; medium): Find which device answers" in words
