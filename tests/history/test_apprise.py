"""Notifications through Apprise against real receivers on loopback (127.147.0.0/16): its
``json://`` and ``form://`` schemes to plain HTTP receivers, ``ntfy://`` to a server speaking
ntfy's publish API; a receiver answering 500, one that never answers (bounded by the deadline)
and a refused connection are each reported, never raised; URLs are checked before use and
never shown whole."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from urllib.parse import parse_qs

import pytest

from exposure_audit.errors import UsageError
from exposure_audit.history.apprise_notify import (
    AppriseTarget,
    check_apprise_urls,
    send_apprise,
    shown_url,
    split_urls,
)
from exposure_audit.history.message import Message, compose

from ..report_samples import HOSTILE_TITLE, sample_report
from ..servers import Server, serve

HOST = "127.147.0.1"
SECRET = "zq9SECRETTOKENx7"


@dataclass
class Received:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Receiver:
    server: Server
    received: list[Received] = field(default_factory=list)

    @property
    def origin(self) -> str:
        return f"{self.server.host}:{self.server.port}"


async def _read(reader: asyncio.StreamReader) -> Received:
    head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1")
    request_line, *lines = head.split("\r\n")
    method, path, _ = request_line.split(" ", 2)
    headers = {}
    for line in lines:
        if ":" in line:
            name, value = line.split(":", 1)
            headers[name.strip().lower()] = value.strip()
    body = await reader.readexactly(int(headers.get("content-length", "0")))
    return Received(method, path, headers, body)


def _receiver(status: int = 200, *, hang: bool = False, port: int = 0) -> Iterator[Receiver]:
    """A loopback HTTP receiver recording each request; answers ``status`` (or never)."""
    received: list[Received] = []

    async def handle(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter, server: Server
    ) -> None:
        request = await _read(reader)
        received.append(request)
        if hang:
            await asyncio.sleep(3600)
        reason = b"OK" if status == 200 else b"Internal Server Error"
        body = b'{"id":"x1","event":"message"}' if status == 200 else b"boom"
        writer.write(
            b"HTTP/1.1 %d %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n"
            b"Connection: close\r\n\r\n%s" % (status, reason, len(body), body)
        )
        await writer.drain()

    with serve(handle, host=HOST) as server:
        yield Receiver(server, received)


@pytest.fixture
def ok() -> Iterator[Receiver]:
    yield from _receiver(200)


@pytest.fixture
def failing() -> Iterator[Receiver]:
    yield from _receiver(500)


@pytest.fixture
def hanging() -> Iterator[Receiver]:
    yield from _receiver(hang=True)


def _refused_port() -> int:
    """A port on our loopback address with nothing listening (bound, then closed)."""
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return int(probe.getsockname()[1])


def _message() -> Message:
    return compose(sample_report(), None)


def test_json_scheme_delivers_the_titled_markdown_message(ok: Receiver) -> None:
    message = _message()
    url = f"json://{ok.origin}/hook/{SECRET}"
    [result] = send_apprise(AppriseTarget((url,), timeout=10), message)
    assert result.delivered and result.channel == "apprise", result
    assert SECRET not in result.target and result.target == f"#1 json://{ok.origin}/…"
    [request] = ok.received
    assert request.method == "POST" and request.path == f"/hook/{SECRET}"
    payload = json.loads(request.body)
    assert payload["title"] == message.subject
    assert "**Grade F**" in payload["message"]  # Markdown kept for a service that takes it
    assert "DSM001" in payload["message"]
    assert payload["type"] == "warning"  # new findings


def test_form_scheme_delivers_title_and_message_as_form_fields(ok: Receiver) -> None:
    message = _message()
    [result] = send_apprise(AppriseTarget((f"form://{ok.origin}/form",)), message)
    assert result.delivered, result
    [request] = ok.received
    assert request.headers["content-type"].startswith("application/x-www-form-urlencoded") or (
        request.headers["content-type"].startswith("multipart/form-data")
    )
    body = request.body.decode()
    if request.headers["content-type"].startswith("application/x-www-form-urlencoded"):
        fields = {k: v[0] for k, v in parse_qs(body).items()}
        assert fields["title"] == message.subject
        assert "DSM001" in fields["message"]
    else:
        assert message.subject in body and "DSM001" in body


def test_ntfy_scheme_publishes_to_the_topic_with_title_and_markdown(ok: Receiver) -> None:
    message = _message()
    url = f"ntfy://{ok.origin}/audits?format=markdown"
    [result] = send_apprise(AppriseTarget((url,)), message)
    assert result.delivered, result
    [request] = ok.received
    # ntfy's publish API: POST/PUT /topic with Title/Markdown headers, or a JSON POST to the
    # root naming the topic (what Apprise sends without attachments).
    if request.path == "/":
        published = json.loads(request.body)
        assert published["topic"] == "audits"
        title, text = published["title"], published["message"]
    else:
        assert request.method in ("POST", "PUT") and request.path == "/audits"
        title = request.headers.get("x-title") or request.headers["title"]
        text = request.body.decode()
    assert title == message.subject
    assert "**Grade F**" in text
    assert request.headers.get("x-markdown") == "yes"


def test_a_500_is_reported_with_the_status_and_without_the_secret(failing: Receiver) -> None:
    url = f"json://user:{SECRET}@{failing.origin}/hook/{SECRET}?token={SECRET}"
    [result] = send_apprise(AppriseTarget((url,)), _message())
    assert not result.delivered and result.attempts == 1
    assert "500" in result.error, result.error
    assert SECRET not in result.error + result.target


def test_a_receiver_that_never_answers_is_given_up_at_the_deadline(hanging: Receiver) -> None:
    started = time.monotonic()
    [result] = send_apprise(
        AppriseTarget((f"json://{hanging.origin}/hook",), timeout=1), _message()
    )
    elapsed = time.monotonic() - started
    assert not result.delivered
    assert "within 1 s" in result.error or "timed out" in result.error.lower(), result.error
    assert elapsed < 5  # the bound a hostile receiver must not break
    assert hanging.received  # it was asked


def test_a_refused_connection_is_reported(ok: Receiver) -> None:
    refused = f"json://{HOST}:{_refused_port()}/hook/{SECRET}"
    good = f"json://{ok.origin}/hook"
    results = send_apprise(AppriseTarget((refused, good)), _message())
    assert [r.delivered for r in results] == [False, True]
    assert results[0].error and SECRET not in results[0].error
    assert results[0].target.startswith("#1 ") and results[1].target.startswith("#2 ")


def test_urls_are_checked_by_apprise_and_never_quoted_back() -> None:
    check_apprise_urls([f"json://{HOST}/x", f"ntfy://{HOST}/topic", "discord://123/abc"])
    with pytest.raises(UsageError) as caught:
        check_apprise_urls([f"json://{HOST}/x", f"nosuchscheme://{SECRET}@host/"])
    assert "#2 nosuchscheme://…" in str(caught.value) and SECRET not in str(caught.value)


def test_urls_are_shown_without_their_tokens() -> None:
    assert shown_url(f"tgram://{SECRET}/12345", 1) == "#1 tgram://…"
    assert shown_url(f"discord://1234/{SECRET}", 2) == "#2 discord://…"
    assert shown_url(f"json://u:{SECRET}@{HOST}:8080/p/{SECRET}", 3) == f"#3 json://{HOST}:8080/…"


def test_urls_from_the_environment_split_on_spaces_and_commas() -> None:
    text = "json://a/x, ntfy://h/t\nmailto://u:p@h?to=a@x,b@x  form://f"
    assert split_urls(text) == ["json://a/x", "ntfy://h/t", "mailto://u:p@h?to=a@x,b@x", "form://f"]


def test_target_text_in_the_markdown_body_is_inert() -> None:
    # Given a finding whose title came from a hostile banner (escapes, HTML, a mention, a link)
    report = sample_report()
    nas = report.hosts[0]
    title = HOSTILE_TITLE + " @everyone [click](https://evil.example) **bold** `x`"
    hostile = dataclasses.replace(nas.findings[0], title=title)
    nas = dataclasses.replace(nas, findings=(hostile, *nas.findings[1:]))
    body = compose(dataclasses.replace(report, hosts=(nas, *report.hosts[1:])), None).markdown
    # Then nothing of it acts in Markdown or a terminal
    assert "\x1b" not in body and "<script>" not in body and "\u202e" not in body
    assert "\\<script\\>" in body and "\\[click\\]" in body and "\\*\\*bold" in body
    assert "@everyone" not in body and "@\u200beveryone" in body
