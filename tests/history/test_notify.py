"""Delivering notifications to real servers on loopback: an HTTP receiver for the webhook and
an aiosmtpd server (STARTTLS with a trustme certificate, AUTH) for e-mail. Nothing here leaves
127.0.0.1; ``socket.getfqdn`` is made to fail so a DNS lookup of this host's name would show."""

from __future__ import annotations

import asyncio
import email
import email.policy
import json
import logging
import socket
import socketserver
import ssl
import threading
import time
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass, field
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
import trustme
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from exposure_audit.history.message import Message
from exposure_audit.history.notify import (
    DeliveryResult,
    EmailTarget,
    WebhookTarget,
    make_webhook_client,
    redact_url,
    send_email,
    send_webhook,
)

MESSAGE = Message(
    subject="exposure-audit: grade D (was F): 1 new, 1 resolved, 1 changed",
    text="Grade: D (was F)\n\nNew (1):\n  - HIGH SVC001 198.51.100.7 port 23/tcp: Telnet\n"
    "    Remediation: turn Telnet off\n\nChanged (1):\n  - MEDIUM DSM004 ...\n",
    payload={"schema": "exposure-audit-notification/1", "grade": "D", "new": [{"rule": "SVC001"}]},
    slack={"text": "exposure-audit: grade D (was F)"},
)
USER_ENV, PASSWORD_ENV = "EA_TEST_SMTP_USER", "EA_TEST_SMTP_PASSWORD"
USER, PASSWORD = "audit@example.net", "correct horse battery staple"


@pytest.fixture(autouse=True)
def _no_dns_for_this_host(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(name: str = "") -> str:
        raise AssertionError("socket.getfqdn() called: a DNS lookup of this host's name")

    monkeypatch.setattr(socket, "getfqdn", refuse)


def _dead_port() -> int:
    """A loopback port nobody listens on (bound, then released)."""
    with closing(socket.socket()) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def _run(coro: Any) -> DeliveryResult:
    result: DeliveryResult = asyncio.run(coro)
    return result


async def _post(target: WebhookTarget) -> DeliveryResult:
    async with httpx.AsyncClient(trust_env=False) as client:
        return await send_webhook(client, target, MESSAGE)


# --- webhook ------------------------------------------------------------------------------


@dataclass
class Receiver:
    url: str
    statuses: list[int]
    posts: list[tuple[str, dict[str, str], bytes]] = field(default_factory=list)


class _LoopbackHTTPServer(ThreadingHTTPServer):
    def server_bind(self) -> None:
        # HTTPServer.server_bind asks getfqdn() (DNS) for a name it only uses in logs.
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = "localhost", self.server_address[1]


@contextmanager
def receiver(*statuses: int, redirect: str = "") -> Iterator[Receiver]:
    """An HTTP server on 127.0.0.1 recording POSTs, answering ``statuses`` in turn (then 200)."""
    state = Receiver("", list(statuses))

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            state.posts.append((self.path, dict(self.headers.items()), body))
            status = state.statuses.pop(0) if state.statuses else 200
            answer = b"ok" if status == 200 else b"invalid_token"
            self.send_response(status)
            if redirect:
                self.send_header("Location", redirect)
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = _LoopbackHTTPServer(("127.0.0.1", 0), Handler)
    state.url = f"http://127.0.0.1:{server.server_address[1]}/services/T0/B0/SECRETTOKEN"
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def test_a_json_webhook_is_delivered_with_the_payload() -> None:
    with receiver() as rx:
        result = _run(_post(WebhookTarget(rx.url)))
    assert result == DeliveryResult("webhook", f"{rx.url.split('/services')[0]}/…", True, 1)
    ((path, headers, body),) = rx.posts
    assert path == "/services/T0/B0/SECRETTOKEN"
    assert headers["Content-Type"] == "application/json"
    assert headers["User-Agent"].startswith("exposure-audit/")
    assert json.loads(body) == MESSAGE.payload


def test_a_slack_webhook_gets_the_text_variant() -> None:
    async def post() -> DeliveryResult:
        async with make_webhook_client(trust_env=False) as client:
            return await send_webhook(client, WebhookTarget(rx.url, format="slack"), MESSAGE)

    with receiver() as rx:
        result = _run(post())
    assert result.delivered and result.attempts == 1 and result.error == ""
    assert json.loads(rx.posts[0][2]) == {"text": "exposure-audit: grade D (was F)"}


def test_a_receiver_failing_twice_gets_the_message_on_the_third_attempt() -> None:
    with receiver(500, 500) as rx:
        result = _run(_post(WebhookTarget(rx.url, retries=3, backoff=0.01)))
    assert result.delivered and result.attempts == 3
    assert len(rx.posts) == 3
    assert rx.posts[0][2] == rx.posts[2][2]


def test_retries_are_bounded_and_the_last_error_is_kept(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="exposure_audit")
    with receiver(503, 503, 503, 503) as rx:
        result = _run(_post(WebhookTarget(rx.url, retries=2, backoff=0.01)))
    assert not result.delivered and result.attempts == 3 and len(rx.posts) == 3
    assert result.error == "HTTP 503 (invalid_token)"
    assert [r.getMessage().split(": ", 1)[1] for r in caplog.records] == [
        "attempt 1/3 failed: HTTP 503 (invalid_token)",
        "attempt 2/3 failed: HTTP 503 (invalid_token)",
        "attempt 3/3 failed: HTTP 503 (invalid_token)",
    ]


def test_a_client_error_is_final() -> None:
    with receiver(403) as rx:
        result = _run(_post(WebhookTarget(rx.url, backoff=0.01)))
    assert not result.delivered and result.attempts == 1 and len(rx.posts) == 1
    assert result.error == "HTTP 403 (invalid_token)"


def test_a_redirect_is_not_followed() -> None:
    with receiver(302, redirect="http://127.0.0.1:9/elsewhere") as rx:
        result = _run(_post(WebhookTarget(rx.url, backoff=0.01)))
    assert not result.delivered and result.attempts == 1 and result.error.startswith("HTTP 302")
    assert len(rx.posts) == 1


def test_a_dead_port_is_not_delivered_quickly_and_without_an_exception() -> None:
    url = f"http://127.0.0.1:{_dead_port()}/hook"
    started = time.monotonic()
    result = _run(_post(WebhookTarget(url, retries=2, timeout=2.0, backoff=0.05)))
    assert time.monotonic() - started < 5
    assert not result.delivered and result.attempts == 3
    assert result.error.startswith("ConnectError")


def test_a_receiver_that_never_answers_is_cut_by_the_timeout() -> None:
    # Given a socket that listens (the kernel completes the handshake) but never reads
    with closing(socket.socket()) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(8)
        url = f"http://127.0.0.1:{sock.getsockname()[1]}/hook"
        started = time.monotonic()
        # When the webhook is sent with a short timeout
        result = _run(_post(WebhookTarget(url, retries=1, timeout=0.3, backoff=0.01)))
        elapsed = time.monotonic() - started
    # Then both attempts give up on time
    assert not result.delivered and result.attempts == 2
    assert elapsed < 3
    assert "0.3" in result.error or "Timeout" in result.error


def test_an_unusable_url_is_reported_not_raised() -> None:
    result = _run(_post(WebhookTarget("ftp://127.0.0.1/hook", backoff=0.01)))
    assert not result.delivered and result.attempts == 1
    assert result.error.startswith("unusable URL")


def test_webhook_secrets_never_reach_the_result_or_the_log(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="exposure_audit")
    url = f"http://hook-user:hook-pass@127.0.0.1:{_dead_port()}/api/webhooks/1/SECRETTOKEN?k=QKEY"
    result = _run(_post(WebhookTarget(url, retries=1, backoff=0.01)))
    assert not result.delivered
    shown = repr(result) + caplog.text
    for secret in ("hook-user", "hook-pass", "SECRETTOKEN", "QKEY", "webhooks"):
        assert secret not in shown
    assert result.target.endswith("/…")


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("https://hooks.slack.com/services/T/B/X", "https://hooks.slack.com/…"),
        ("https://u:p@example.net:8443/", "https://example.net:8443"),
        ("http://[2001:db8::1]:8080/x?token=1", "http://[2001:db8::1]:8080/…"),
        ("http://example.net:99999/", "<invalid URL>"),
    ],
)
def test_urls_are_shown_as_their_origin(url: str, shown: str) -> None:
    assert redact_url(url) == shown


# --- e-mail -------------------------------------------------------------------------------


@dataclass
class Mailbox:
    port: int
    envelopes: list[Envelope] = field(default_factory=list)
    sessions: list[Session] = field(default_factory=list)


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def cafile(ca: trustme.CA, tmp_path: Path) -> str:
    path = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(path))
    return str(path)


@contextmanager
def smtp_server(ca: trustme.CA | None, *, auth: bool) -> Iterator[Mailbox]:
    """aiosmtpd on 127.0.0.1: STARTTLS required when ``ca`` is given (certificate for
    127.0.0.1), AUTH required (only after STARTTLS) for USER/PASSWORD when ``auth``."""
    tls: ssl.SSLContext | None = None
    if ca is not None:
        tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ca.issue_cert("127.0.0.1").configure_cert(tls)
    loop = asyncio.new_event_loop()

    class Handler:
        async def handle_DATA(  # noqa: N802 - aiosmtpd's hook name
            self, server: SMTP, session: Session, envelope: Envelope
        ) -> str:
            box.envelopes.append(envelope)
            box.sessions.append(session)
            return "250 Message accepted"

    def authenticator(
        server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any
    ) -> AuthResult:
        ok = isinstance(data, LoginPassword) and (data.login, data.password) == (
            USER.encode(),
            PASSWORD.encode(),
        )
        return AuthResult(success=ok, handled=False)

    def factory() -> SMTP:
        return SMTP(
            Handler(),
            hostname="mx.test",
            tls_context=tls,
            require_starttls=tls is not None,
            authenticator=authenticator if auth else None,
            auth_required=auth,
            auth_require_tls=True,
            loop=loop,
        )

    server = loop.run_until_complete(loop.create_server(factory, "127.0.0.1", 0))
    box = Mailbox(server.sockets[0].getsockname()[1])
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    try:
        yield box
    finally:
        loop.call_soon_threadsafe(server.close)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5)
        loop.close()


def _target(port: int, cafile: str | None, **changes: Any) -> EmailTarget:
    settings: dict[str, Any] = {
        "host": "127.0.0.1",
        "port": port,
        "sender": "Exposure audit <audit@example.net>",
        "to": ("ops@example.net", "sec@example.net"),
        "username_env": USER_ENV,
        "password_env": PASSWORD_ENV,
        "cafile": cafile,
        "backoff": 0.01,
        "timeout": 5.0,
    } | changes
    return EmailTarget(**settings)


ENV = {USER_ENV: USER, PASSWORD_ENV: PASSWORD}


def test_mail_arrives_over_starttls_with_auth_naming_grade_and_rules(
    ca: trustme.CA, cafile: str
) -> None:
    with smtp_server(ca, auth=True) as box:
        result = send_email(_target(box.port, cafile), MESSAGE, ENV)
    assert result == DeliveryResult("email", f"127.0.0.1:{box.port}", True, 1)
    ((envelope,), (session,)) = (box.envelopes, box.sessions)
    assert session.ssl is not None and session.authenticated
    assert envelope.mail_from == "audit@example.net"
    assert envelope.rcpt_tos == ["ops@example.net", "sec@example.net"]
    assert isinstance(envelope.content, bytes)
    mail = email.message_from_bytes(envelope.content, policy=email.policy.default)
    assert isinstance(mail, EmailMessage)
    assert mail["Subject"] == MESSAGE.subject
    assert mail["To"] == "ops@example.net, sec@example.net"
    assert mail["Auto-Submitted"] == "auto-generated"
    assert mail["Message-ID"].endswith("@example.net>")
    body = mail.get_body(("plain",))
    assert body is not None
    text = body.get_content()
    assert "Grade: D (was F)" in text and "SVC001" in text and "DSM004" in text


def test_a_wrong_password_is_refused_once_with_a_clear_error_and_no_secret(
    ca: trustme.CA, cafile: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="exposure_audit")
    wrong = "wrong-but-secret-password"
    with smtp_server(ca, auth=True) as box:
        result = send_email(_target(box.port, cafile), MESSAGE, ENV | {PASSWORD_ENV: wrong})
    assert not result.delivered and result.attempts == 1
    assert result.error.startswith(f"authentication refused for ${USER_ENV}: 535")
    assert wrong not in repr(result) + caplog.text
    assert box.envelopes == []


def test_a_server_that_is_down_is_not_delivered_quickly(cafile: str) -> None:
    started = time.monotonic()
    result = send_email(_target(_dead_port(), cafile, retries=2), MESSAGE, ENV)
    assert time.monotonic() - started < 5
    assert not result.delivered and result.attempts == 3
    assert "Connection refused" in result.error


def test_an_untrusted_certificate_is_refused_without_retrying(ca: trustme.CA) -> None:
    # Given the system's CAs only, the test CA's certificate does not verify
    with smtp_server(ca, auth=True) as box:
        result = send_email(_target(box.port, None), MESSAGE, ENV)
    assert not result.delivered and result.attempts == 1
    assert result.error.startswith("certificate not trusted")
    assert box.envelopes == []


def test_a_server_without_starttls_is_not_downgraded_to(cafile: str) -> None:
    with smtp_server(None, auth=False) as box:
        result = send_email(_target(box.port, cafile), MESSAGE, ENV)
    assert not result.delivered and result.attempts == 1
    assert "STARTTLS" in result.error
    assert box.envelopes == []


def test_a_plain_local_relay_without_credentials_is_allowed() -> None:
    with smtp_server(None, auth=False) as box:
        target = _target(box.port, None, starttls=False, username_env=None, password_env=None)
        result = send_email(target, MESSAGE, {})
    assert result.delivered and len(box.envelopes) == 1


def test_credentials_named_but_missing_from_the_environment_stop_before_connecting() -> None:
    result = send_email(_target(_dead_port(), None), MESSAGE, {USER_ENV: USER})
    assert result.attempts == 0 and not result.delivered
    assert result.error == f"SMTP credentials: environment variable ${PASSWORD_ENV} not set"


def test_credentials_are_never_sent_without_starttls() -> None:
    result = send_email(_target(_dead_port(), None, starttls=False), MESSAGE, ENV)
    assert result.attempts == 0 and "without STARTTLS" in result.error


def test_a_line_break_in_a_header_is_refused_before_connecting() -> None:
    target = _target(_dead_port(), None, to=("ops@example.net\r\nBcc: x@evil.example",))
    result = send_email(target, MESSAGE, ENV)
    assert result.attempts == 0 and not result.delivered
