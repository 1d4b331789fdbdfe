"""A minimal STUN (RFC 5389) Binding responder: the UPnP lab's "Internet" for miniupnpd.

usage: python stun_responder.py BIND_IP [PORT]   (runs in the scanner namespace; PORT 3478)

Why it exists: miniupnpd 2.3.1 counts every documentation and private range, the lab's
203.0.113.0/24 included, as "reserved" and disables port forwarding on such a WAN address
unless ``ext_perform_stun`` finds it is not behind a restrictive NAT
(docs/reference/lab.md, section 0 and 4.1). Its ``perform_stun()`` sends four Binding
Requests with CHANGE-REQUEST flags from four ports and only checks that all four answers
arrive with the mapped address equal to its own; it never checks where answers 2-4 come from.
So this responder answers every Binding Request from the one address it has, with
XOR-MAPPED-ADDRESS and MAPPED-ADDRESS of the packet's source, and ignores CHANGE-REQUEST
(real servers such as coturn answer it with an error, and miniupnpd then exits).

Prints ``ready`` on standard output once bound, then logs one line per answer on standard
error. Runs until killed.
"""

from __future__ import annotations

import socket
import struct
import sys

MAGIC_COOKIE = 0x2112A442
BINDING_REQUEST = 0x0001
BINDING_SUCCESS = 0x0101
XOR_MAPPED_ADDRESS = 0x0020
MAPPED_ADDRESS = 0x0001
FAMILY_IPV4 = 1


def binding_response(request: bytes, ip: str, port: int) -> bytes | None:
    """The Binding success response to ``request`` from ``ip``:``port``, or None when
    ``request`` is not a STUN Binding Request."""
    if len(request) < 20 or struct.unpack("!H", request[:2])[0] != BINDING_REQUEST:
        return None
    transaction_id = request[8:20]
    packed_ip = socket.inet_aton(ip)
    xor_port = port ^ (MAGIC_COOKIE >> 16)
    xor_ip = struct.pack("!I", struct.unpack("!I", packed_ip)[0] ^ MAGIC_COOKIE)
    attributes = struct.pack("!HHBBH", XOR_MAPPED_ADDRESS, 8, 0, FAMILY_IPV4, xor_port) + xor_ip
    attributes += struct.pack("!HHBBH", MAPPED_ADDRESS, 8, 0, FAMILY_IPV4, port) + packed_ip
    header = struct.pack("!HHI", BINDING_SUCCESS, len(attributes), MAGIC_COOKIE)
    return header + transaction_id + attributes


def main(argv: list[str]) -> int:
    bind_ip = argv[1] if len(argv) > 1 else "0.0.0.0"
    port = int(argv[2]) if len(argv) > 2 else 3478
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind((bind_ip, port))
    print("ready", flush=True)
    while True:
        data, (ip, source_port) = sock.recvfrom(2048)
        answer = binding_response(data, ip, source_port)
        if answer is not None:
            sock.sendto(answer, (ip, source_port))
            print(f"binding response -> {ip}:{source_port}", file=sys.stderr, flush=True)


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
