"""Small probes that the lab tests run *inside* a namespace:
``lab.run(ns, sys.executable, PROBE, COMMAND, ...)``.

usage:
    python probe.py msearch TARGET [TIMEOUT]   unicast SSDP M-SEARCH to TARGET:1900
    python probe.py get TIMEOUT URL [URL ...]  HTTP(S) GETs, certificates not checked
    python probe.py tcp HOST PORT [PORT ...]   TCP connect: open, closed or filtered

Each prints one JSON document on standard output: ``msearch`` a list of replies (``from`` and
the headers with upper-case names), ``get`` a list of ``{"status", "headers", "text"}`` or
``{"error"}``, ``tcp`` ``{port: state}``. Exit status 0 (a probe that finds nothing is not
an error here: the tests judge the JSON).

The lab namespaces reach nothing but each other, so none of this can leave the test run.
"""

from __future__ import annotations

import concurrent.futures
import json
import socket
import sys
import time

import httpx

M_SEARCH = (
    b"M-SEARCH * HTTP/1.1\r\n"
    b"HOST: 239.255.255.250:1900\r\n"
    b'MAN: "ssdp:discover"\r\n'
    b"MX: 1\r\n"
    b"ST: ssdp:all\r\n"
    b"\r\n"
)


def msearch(target: str, timeout: float) -> list[dict[str, str]]:
    replies: list[dict[str, str]] = []
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.sendto(M_SEARCH, (target, 1900))
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            sock.settimeout(left)
            try:
                data, (address, port) = sock.recvfrom(8192)
            except TimeoutError:
                break
            except ConnectionRefusedError:  # ICMP port unreachable for the datagram
                break
            lines = data.decode("latin-1").split("\r\n")
            reply = {"from": f"{address}:{port}", "STATUS": lines[0]}
            for line in lines[1:]:
                name, sep, value = line.partition(":")
                if sep:
                    reply[name.strip().upper()] = value.strip()
            replies.append(reply)
    return replies


def get(url: str, timeout: float) -> dict[str, object]:
    # trust_env=False: no proxy variable may send the request anywhere else.
    try:
        with httpx.Client(verify=False, trust_env=False, timeout=timeout) as client:
            response = client.get(url)
    except httpx.HTTPError as exc:
        return {"error": f"{type(exc).__name__}: {exc}"}
    return {
        "status": response.status_code,
        "headers": dict(response.headers),
        "text": response.text,
    }


def tcp(host: str, ports: list[int], timeout: float = 1.0) -> dict[str, str]:
    def state(port: int) -> str:
        try:
            with socket.create_connection((host, port), timeout=timeout):
                return "open"
        except ConnectionRefusedError:
            return "closed"
        except OSError:  # timeout, host or network unreachable
            return "filtered"

    # In parallel: each filtered port costs the whole timeout.
    with concurrent.futures.ThreadPoolExecutor(max(1, len(ports))) as pool:
        return dict(zip(map(str, ports), pool.map(state, ports), strict=True))


def main(argv: list[str]) -> int:
    command, args = argv[1], argv[2:]
    result: object
    if command == "msearch":
        result = msearch(args[0], float(args[1]) if len(args) > 1 else 1.5)
    elif command == "get":
        result = [get(url, float(args[0])) for url in args[1:]]
    elif command == "tcp":
        result = tcp(args[0], [int(p) for p in args[1:]])
    else:
        print(__doc__, file=sys.stderr)
        return 2
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
