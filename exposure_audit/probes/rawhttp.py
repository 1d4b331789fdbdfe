"""An httpx response written back as the bytes nmap's patterns expect.

nmap matches the raw answer: ``HTTP/1.1 200 OK\\r\\nName: value\\r\\n...\\r\\n\\r\\nbody``. httpx
keeps what that needs: the HTTP version, the status code, the reason phrase as sent, and the
header lines in their order and original case (``Headers.raw``). Differences that remain: the
body is the decoded one (gzip undone, chunks joined: nmap asks without Accept-Encoding, so it
mostly sees plain bodies too) and an HTTP/2 answer has lower-case names and no reason (the
scanner's client speaks HTTP/1.1).
"""

from __future__ import annotations

from collections.abc import Sequence

import httpx

__all__ = ["RAW_RESPONSE_BYTES", "response_bytes"]

# What exposure_audit.nmap.servicematch looks at (its MAX_RESPONSE_BYTES; a test keeps the two
# equal): the status line, the headers and the head of the page. This module lives with the
# probes, which hold the responses and may not import the nmap package (sibling layers).
RAW_RESPONSE_BYTES = 16 * 1024


def response_bytes(
    response: httpx.Response,
    body: bytes | None = None,
    limit: int = RAW_RESPONSE_BYTES,
    *,
    headers: Sequence[tuple[bytes, bytes]] | None = None,
) -> bytes:
    """``response`` as raw HTTP/1.x bytes, at most ``limit`` long.

    ``body`` is what the caller read of a streamed response; without it the response's own
    content is used when it has been read, else no body. ``headers`` are the header lines as
    received when the caller took some out of ``response`` (the HTTP probe hides Location from
    httpx); without them ``response.headers.raw`` is used. Never raises.
    """
    reason = response.extensions.get("reason_phrase")
    if not isinstance(reason, bytes):
        reason = response.reason_phrase.encode("latin-1", errors="replace")
    version = response.http_version.encode("ascii", errors="replace")
    parts = [b"%s %d %s\r\n" % (version, response.status_code, reason)]
    size = len(parts[0])
    for name, value in response.headers.raw if headers is None else headers:
        if size >= limit:
            break
        line = b"%s: %s\r\n" % (name, value)
        parts.append(line)
        size += len(line)
    parts.append(b"\r\n")
    if body is None:
        try:
            body = response.content
        except httpx.ResponseNotRead:
            body = b""
    parts.append(body[: max(0, limit - size - 2)])
    return b"".join(parts)[:limit]
