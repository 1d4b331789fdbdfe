"""Line-protocol services that identify themselves by what they say: Telnet, SSH, FTP, SMB.

Each greeting is byte-exact to a line of nmap's ``nmap-service-probes`` so that ``nmap -sV``
names it from the NULL probe (or, for SMB, from its own negotiate probe) without walking the
other probes: a near miss costs minutes per port (docs/reference/performance.md section 4).

=============  ============================================================================
``telnet_syno``  ``sh: /usr/syno/bin/synoautoblock: not found\\n`` + option negotiation +
                 ``DiskStation login: `` (nmap: ``Synology DiskStation 1512+ NAS telnetd``)
``ssh``          ``SSH-2.0-OpenSSH_8.2p1 Ubuntu-4ubuntu0.5\\r\\n``, reads the client's line,
                 closes (nmap: ``OpenSSH 8.2p1 Ubuntu 4ubuntu0.5``)
``ftp_syno``     ``220 DiskStation FTP server ready.\\r\\n``, then refuses every login
                 (nmap: ``Synology DiskStation NAS ftpd``)
``smb``          silent until an SMB1 NEGOTIATE arrives, answered as Samba 3.x on a
                 DiskStation would (nmap: ``netbios-ssn Samba smbd 3.X - 4.X``)
``mute``         takes the connection and never says a byte, whatever arrives, until the
                 client hangs up (a hung DSM, a stalled reverse proxy): unidentifiable
``ssh_slow``     the ``ssh`` banner, but only after :data:`SLOW_BANNER` seconds
``http_slow``    reads a request, answers ``200`` with a small page after
                 :data:`SLOW_HTTP` seconds (an overloaded web UI)
=============  ============================================================================

Every service reads at most :data:`MAX_INPUT` bytes, gives up after :data:`IO_TIMEOUT`
seconds of client silence, and never raises on junk.
"""

from __future__ import annotations

import asyncio
import struct
import time
from collections.abc import Awaitable, Callable, Mapping

__all__ = [
    "BANNERS",
    "FTP_GREETING",
    "IO_TIMEOUT",
    "MAX_INPUT",
    "MUTE_HOLD",
    "SLOW_BANNER",
    "SLOW_HTTP",
    "SSH_BANNER",
    "TELNET_GREETING",
    "serve_silent",
]

IO_TIMEOUT = 10.0
MAX_INPUT = 16 * 1024
#: How long ``mute`` holds a connection at most (longer than any probe waits).
MUTE_HOLD = 120.0
SLOW_BANNER = 3.0
SLOW_HTTP = 8.0

#: nmap-service-probes: ``match telnet m|^sh: /usr/syno/bin/synoautoblock: not found\n
#: \xff\xfd\x01\xff\xfd\x1f\xff\xfb\x01\xff\xfb\x03DiskStation login: |`` (DO ECHO, DO NAWS,
#: WILL ECHO, WILL SUPPRESS-GO-AHEAD).
TELNET_GREETING = (
    b"sh: /usr/syno/bin/synoautoblock: not found\n"
    b"\xff\xfd\x01\xff\xfd\x1f\xff\xfb\x01\xff\xfb\x03"
    b"DiskStation login: "
)
SSH_BANNER = b"SSH-2.0-OpenSSH_8.2p1 Ubuntu-4ubuntu0.5\r\n"
FTP_GREETING = b"220 DiskStation FTP server ready.\r\n"

_Service = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


async def _send(writer: asyncio.StreamWriter, data: bytes) -> None:
    writer.write(data)
    await writer.drain()


async def _read_line(reader: asyncio.StreamReader, budget: list[int]) -> bytes | None:
    """One line (without its end), None at EOF, timeout or when the input budget is spent."""
    try:
        async with asyncio.timeout(IO_TIMEOUT):
            line = await reader.readuntil(b"\n")
    except asyncio.LimitOverrunError:
        return None
    except asyncio.IncompleteReadError as exc:
        if not exc.partial:
            return None
        line = exc.partial
    except TimeoutError:
        return None
    budget[0] -= len(line)
    if budget[0] < 0:
        return None
    return line.rstrip(b"\r\n")


def _strip_telnet_commands(data: bytes) -> bytes:
    """Drop IAC sequences (3-byte options, subnegotiations) and NULs from client input."""
    out = bytearray()
    i = 0
    while i < len(data):
        byte = data[i]
        if byte == 0xFF and i + 1 < len(data):
            command = data[i + 1]
            if command == 0xFA:  # SB ... IAC SE
                end = data.find(b"\xff\xf0", i + 2)
                i = len(data) if end < 0 else end + 2
            elif 0xFB <= command <= 0xFE:
                i += 3
            else:
                i += 2
            continue
        if byte != 0:
            out.append(byte)
        i += 1
    return bytes(out)


async def _telnet_syno(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    # busybox telnetd + login on DSM: three tries, then the connection is dropped.
    await _send(writer, TELNET_GREETING)
    budget = [MAX_INPUT]
    for _attempt in range(3):
        user = await _read_line(reader, budget)
        if user is None:
            return
        if not _strip_telnet_commands(user).strip():
            await _send(writer, b"\r\nDiskStation login: ")
            continue
        await _send(writer, b"\r\nPassword: ")
        if await _read_line(reader, budget) is None:
            return
        await asyncio.sleep(1.0)  # login(1) delays a failed attempt; keep it short for tests
        await _send(writer, b"\r\nLogin incorrect\r\nDiskStation login: ")


async def _ssh(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    # The banner first, as OpenSSH does; then read the client's identification and hang up:
    # a banner grab needs no more, and no key exchange is imitated.
    await _send(writer, SSH_BANNER)
    try:
        async with asyncio.timeout(IO_TIMEOUT):
            await reader.read(MAX_INPUT)
    except TimeoutError:
        pass


_FTP_REPLIES: Mapping[str, bytes] = {
    "SYST": b"215 UNIX Type: L8\r\n",
    "FEAT": b"211-Extensions supported:\r\n UTF8\r\n MDTM\r\n SIZE\r\n AUTH TLS\r\n211 End\r\n",
    "NOOP": b"200 NOOP command successful.\r\n",
    "HELP": b"214 Direct comments to ftp-bugs@DiskStation.\r\n",
    "AUTH": b"234 AUTH TLS successful.\r\n",
}


async def _ftp_syno(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await _send(writer, FTP_GREETING)
    budget = [MAX_INPUT]
    user = ""
    for _ in range(50):
        line = await _read_line(reader, budget)
        if line is None:
            return
        verb, _, argument = line.decode("latin-1").partition(" ")
        verb = verb.upper()
        if verb == "QUIT":
            await _send(writer, b"221 Goodbye.\r\n")
            return
        if verb == "USER":
            user = argument.strip()[:64]
            await _send(writer, f"331 Password required for {user}.\r\n".encode("latin-1"))
        elif verb == "PASS":
            await asyncio.sleep(0.5)
            await _send(writer, b"530 Login incorrect.\r\n")
        elif verb == "AUTH":
            # No TLS behind it: say no, as a DiskStation with FTPS disabled does.
            await _send(writer, b"500 AUTH not understood.\r\n")
        elif verb in _FTP_REPLIES:
            await _send(writer, _FTP_REPLIES[verb])
        elif not verb:
            await _send(writer, b"500 Invalid command: try being more creative\r\n")
        else:
            await _send(writer, b"530 Please login with USER and PASS.\r\n")


def _utf16z(text: str) -> bytes:
    return text.encode("utf-16-le") + b"\0\0"


def _smb1_negotiate_response(request: bytes, dialect: int) -> bytes:
    """The SMB1 NEGOTIATE response of Samba 3.6 (non-extended security, NT LM 0.12 family).

    Echoes the request's PID and MID; ``dialect`` is the index Samba chose in the client's
    list. The shape is what nmap's ``Samba smbd 3.X - 4.X`` line expects: flags 0x88, word
    count 17, an 8-byte challenge, then workgroup and server name in UTF-16.
    """
    pid, mid = request[26:28], request[30:32]
    filetime = int((time.time() + 11644473600) * 10_000_000)
    data = b"\x11\x22\x33\x44\x55\x66\x77\x88" + _utf16z("WORKGROUP") + _utf16z("DISKSTATION")
    words = struct.pack(
        "<HBHHIIIIQhB",
        dialect,
        0x03,  # security mode: user level, challenge/response
        50,  # max multiplexed requests
        1,  # max virtual circuits
        16644,  # max buffer size
        65536,  # max raw size
        0,  # session key
        0x0000F3FD,  # capabilities: NT SMBs, RPC, status32, large files ... no ext security
        filetime,
        0,  # server time zone
        8,  # challenge length
    )
    header = (
        b"\xffSMBr"
        + b"\0\0\0\0"  # NT status: success
        + b"\x88"  # flags: reply, case-insensitive paths
        + b"\x01\xc0"  # flags2: long names, NT status, unicode
        + b"\0\0"  # PID high
        + b"\0" * 8  # signature
        + b"\0\0"  # reserved
        + b"\0\0"  # TID
        + pid
        + b"\0\0"  # UID
        + mid
    )
    message = header + b"\x11" + words + struct.pack("<H", len(data)) + data
    return struct.pack(">I", len(message)) + message


def _smb1_dialects(message: bytes) -> list[bytes]:
    if len(message) < 35:
        return []
    byte_count = struct.unpack_from("<H", message, 33)[0]
    blob = message[35 : 35 + byte_count]
    return [d[1:] for d in blob.split(b"\0") if d.startswith(b"\x02")]


async def _smb(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    # Direct TCP (445): 4-byte length, then the message. Only an SMB1 NEGOTIATE gets an answer
    # (Samba would also speak SMB2; nothing here needs it); anything else ends the connection.
    try:
        async with asyncio.timeout(IO_TIMEOUT):
            prefix = await reader.readexactly(4)
            length = struct.unpack(">I", prefix)[0] & 0x00FFFFFF
            if prefix[0] != 0 or length > MAX_INPUT:
                return
            message = await reader.readexactly(length)
    except (TimeoutError, asyncio.IncompleteReadError):
        return
    if message[:5] != b"\xffSMBr":
        return
    dialects = _smb1_dialects(message)
    for preferred in (b"NT LANMAN 1.0", b"NT LM 0.12"):
        if preferred in dialects:
            await _send(writer, _smb1_negotiate_response(message, dialects.index(preferred)))
            break
    else:
        return
    try:
        async with asyncio.timeout(IO_TIMEOUT):
            await reader.read(MAX_INPUT)  # whatever follows (session setup) is not served
    except TimeoutError:
        pass


async def serve_silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Accept, read, say nothing. Hang up when the client sends something (after draining
    what arrives with it), when it closes, or after :data:`IO_TIMEOUT` seconds of silence.

    Hanging up on input rather than holding the connection is what lets nmap -sV move to its
    next probe at once; holding it would cost nmap the probe's full wait each time.
    """
    try:
        async with asyncio.timeout(IO_TIMEOUT):
            data = await reader.read(MAX_INPUT)
        if data:
            async with asyncio.timeout(0.05):
                while await reader.read(MAX_INPUT):
                    pass
    except TimeoutError:
        pass


async def _mute(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    # Read and drop whatever comes, answer nothing, hold the connection until the client
    # leaves (EOF) or MUTE_HOLD passes: every probe has to wait out its own timeout.
    budget = MAX_INPUT * 4
    try:
        async with asyncio.timeout(MUTE_HOLD):
            while budget > 0 and (data := await reader.read(MAX_INPUT)):
                budget -= len(data)
            if budget <= 0:
                await asyncio.sleep(MUTE_HOLD)
    except TimeoutError:
        pass


async def _ssh_slow(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await asyncio.sleep(SLOW_BANNER)
    await _ssh(reader, writer)


_SLOW_PAGE = b"<html><head><title>Slow web UI</title></head><body>slow</body></html>"


async def _http_slow(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        async with asyncio.timeout(IO_TIMEOUT):
            await reader.readuntil(b"\r\n\r\n")
    except (TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
        return
    await asyncio.sleep(SLOW_HTTP)
    head = (
        "HTTP/1.1 200 OK\r\nServer: slow-lab\r\nContent-Type: text/html\r\n"
        f"Content-Length: {len(_SLOW_PAGE)}\r\nConnection: close\r\n\r\n"
    )
    await _send(writer, head.encode("ascii") + _SLOW_PAGE)


#: Banner services by ``LabService.site`` name (kind ``banner``).
BANNERS: Mapping[str, _Service] = {
    "telnet_syno": _telnet_syno,
    "ssh": _ssh,
    "ftp_syno": _ftp_syno,
    "smb": _smb,
    "mute": _mute,
    "ssh_slow": _ssh_slow,
    "http_slow": _http_slow,
}
