"""The built-in lab, exercised over real loopback sockets: HTTP(S) pages, certificates, DNS,
banners (checked by nmap -sV too), robustness against junk, start/stop hygiene and the CLI."""

from __future__ import annotations

import contextlib
import datetime as dt
import errno
import json
import os
import re
import shutil
import socket
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import dns.flags
import dns.message
import dns.query
import dns.rcode
import dns.rdatatype
import httpx
import pytest
from cryptography import x509
from cryptography.x509.oid import NameOID

import exposure_audit.lab as lab_package
from exposure_audit.lab import (
    DEMO_ZONE,
    Lab,
    LabHost,
    LabService,
    bench_lab,
    corpus_lab,
    demo_lab,
)
from exposure_audit.lab.banners import FTP_GREETING, SSH_BANNER, TELNET_GREETING
from exposure_audit.lab.certificates import issue
from exposure_audit.lab.sites import SITES

NMAP = shutil.which("nmap")
NMAP_PROBES = Path("/usr/share/nmap/nmap-service-probes")
# nmap's SMB1 negotiate probe (nmap-service-probes, "Probe TCP SMBProgNeg").
SMB_PROBE = (
    b"\0\0\0\xa4\xff\x53\x4d\x42\x72\0\0\0\0\x08\x01\x40\0\0\0\0\0\0\0\0\0\0\0\0\0\0\x40\x06"
    b"\0\0\x01\0\0\x81\0\x02PC NETWORK PROGRAM 1.0\0\x02MICROSOFT NETWORKS 1.03\0\x02MICROSOFT "
    b"NETWORKS 3.0\0\x02LANMAN1.0\0\x02LM1.2X002\0\x02Samba\0\x02NT LANMAN 1.0\0\x02NT LM 0.12\0"
)


def _start(default: Lab, fallback: Lab) -> Lab:
    """``default`` started, or ``fallback`` when its addresses are taken (a developer's
    ``exposure-audit demo`` running next to the tests): same lab, another loopback /24."""
    try:
        default.start()
    except OSError as exc:
        if exc.errno != errno.EADDRINUSE:
            raise
        fallback.start()
        return fallback
    return default


@pytest.fixture(scope="module")
def demo() -> Iterator[Lab]:
    lab = _start(demo_lab(), demo_lab("127.177.0.0/24", None))
    try:
        yield lab
    finally:
        lab.stop()


@pytest.fixture(scope="module")
def corpus() -> Iterator[Lab]:
    lab = _start(corpus_lab(), corpus_lab("127.178.0.0/24"))
    try:
        yield lab
    finally:
        lab.stop()


@pytest.fixture(scope="module")
def resolver() -> Iterator[Lab]:
    # The demo zone alone: its DNS server binds an ephemeral port, so it never collides.
    with Lab([], DEMO_ZONE) as lab:
        yield lab


def at(lab: Lab, name: str) -> str:
    return lab.host(name).address


@pytest.fixture(scope="module")
def client() -> Iterator[httpx.Client]:
    # trust_env=False: no proxy variables may send lab traffic anywhere but loopback.
    with httpx.Client(verify=False, trust_env=False, timeout=5, follow_redirects=False) as c:
        yield c


def _recv_all(sock: socket.socket, limit: float = 3.0) -> bytes:
    sock.settimeout(limit)
    data = b""
    try:
        while chunk := sock.recv(65536):
            data += chunk
    except TimeoutError:
        pass
    return data


def _greeting(address: str, port: int, length: int) -> bytes:
    with socket.create_connection((address, port), timeout=3) as sock:
        data = b""
        while len(data) < length:
            chunk = sock.recv(length - len(data))
            if not chunk:
                break
            data += chunk
        return data


def _peer_certificate(address: str, port: int) -> x509.Certificate:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    with (
        socket.create_connection((address, port), timeout=3) as raw,
        context.wrap_socket(raw) as tls,
    ):
        der = tls.getpeercert(binary_form=True)
    assert der is not None
    return x509.load_der_x509_certificate(der)


def _query(lab: Lab, name: str, rdtype: str, *, tcp: bool = False) -> dns.message.Message:
    host, port = lab.resolver.rsplit(":", 1)
    query = dns.message.make_query(name, rdtype)
    send = dns.query.tcp if tcp else dns.query.udp
    return send(query, host, port=int(port), timeout=3)


# -- the package ------------------------------------------------------------------------------


def test_package_exports_exactly_the_lab_api() -> None:
    assert sorted(lab_package.__all__) == sorted(
        ["DEMO_ZONE", "Lab", "LabHost", "LabService", "bench_lab", "corpus_lab", "demo_lab"]
    )


def test_model_refuses_non_loopback_addresses_bad_grades_and_unknown_sites() -> None:
    with pytest.raises(ValueError, match="loopback"):
        LabHost("x", "192.0.2.1", "dsm", (), "A", None)
    with pytest.raises(ValueError, match="grade"):
        LabHost("x", "127.0.0.9", "dsm", (), "E", None)
    with pytest.raises(ValueError, match="kind"):
        LabService(80, "gopher", "nginx")
    with pytest.raises(ValueError, match="unknown site"):
        Lab([LabHost("x", "127.0.0.9", "web", (LabService(80, "http", "nope"),), "A", None)])
    twice = LabHost("x", "127.0.0.9", "web", (LabService(80, "http", "nginx"),), "A", None)
    with pytest.raises(ValueError, match="used by both"):
        Lab([twice, twice])


def test_demo_lab_has_the_specified_hosts_and_expectations() -> None:
    spec = demo_lab()
    expected = {
        "syno43": ("127.77.0.10", (5000, 5001), "F", "4.3-3810"),
        "syno72": ("127.77.0.20", (5001,), "D", "7.2.2-72806"),
        "syno62-moved": ("127.77.0.30", (22, 8080), "F", "6.2.4-25556"),
        "web": ("127.77.0.40", (80, 443), "A", None),
        "upnp": ("127.77.0.50", (5000,), "F", None),
        "legacy": ("127.77.0.60", (23, 139, 445), "F", None),
        "clean": ("127.77.0.70", (), "A", None),
        "hung": ("127.77.0.80", (5001,), "C", None),
        "qnap": ("127.77.0.90", (8080,), "F", None),
        "proxmox": ("127.77.0.91", (8006,), "D", None),
        "jupyter": ("127.77.0.92", (8888,), "F", None),
        "cockpit": ("127.77.0.93", (9090,), "D", None),
    }
    got = {h.name: (h.address, h.ports, h.expect_grade, h.expect_dsm) for h in spec.hosts}
    assert got == expected
    assert spec.addresses() == tuple(v[0] for v in expected.values())
    assert spec.host("syno72").extra_addresses == ("::1",)
    assert spec.zone == DEMO_ZONE


def test_demo_lab_runs_every_service(demo: Lab) -> None:
    assert demo.skipped == ()  # the suite runs as root
    expected = {(h.address, p) for h in demo.hosts for p in h.ports}
    assert expected <= set(demo.listening())


# -- HTTP and HTTPS pages ---------------------------------------------------------------------


def test_dsm43_redirects_to_its_login_page_which_leaks_the_build(
    demo: Lab, client: httpx.Client
) -> None:
    root = client.get(f"http://{at(demo, 'syno43')}:5000/")
    assert root.status_code == 302
    assert root.headers["location"] == f"http://{at(demo, 'syno43')}:5000/webman/index.cgi"
    assert root.headers["server"] == "Apache"

    page = client.get(f"http://{at(demo, 'syno43')}:5000/webman/index.cgi")
    assert page.status_code == 200
    assert "<title>syno43&nbsp;-&nbsp;Synology&nbsp;DiskStation</title>" in page.text
    assert "SYNO.SDS.Session = {" in page.text
    assert '"fullversion" : "3810-s0"' in page.text
    assert 'action="login.cgi"' in page.text


def test_dsm43_version_endpoints(demo: Lab, client: httpx.Client) -> None:
    info = client.get(f"http://{at(demo, 'syno43')}:5000/webman/info.cgi?host=")
    assert info.text == "major=4&minor=3&build=3810&junior=0&unique=synology_cedarview_1512+"
    api = client.get(
        f"http://{at(demo, 'syno43')}:5000/webapi/query.cgi"
        "?api=SYNO.API.Info&version=1&method=query&query=SYNO.API.Auth"
    )
    assert api.json() == {
        "data": {"SYNO.API.Auth": {"maxVersion": 3, "minVersion": 1, "path": "auth.cgi"}},
        "success": True,
    }
    missing = client.get(f"http://{at(demo, 'syno43')}:5000/synohdpack/synohdpack.version")
    assert missing.status_code == 404
    assert "was not found on this server" in missing.text


def test_dsm62_login_page_and_version_file_over_http_on_8080(
    demo: Lab, client: httpx.Client
) -> None:
    page = client.get(f"http://{at(demo, 'syno62-moved')}:8080/")
    assert page.status_code == 200
    assert page.headers["server"] == "nginx"
    for marker in (
        "<title>syno62-moved&nbsp;-&nbsp;Synology&nbsp;DiskStation</title>",
        '<meta name="description" content="DiskStation provides a full-featured network '
        "attached storage",
        "<noscript><div class='syno-no-script'",
        "webapi/entry.cgi?api=SYNO.Core.Desktop.Defs&version=1&method=getjs",
        "synoSDSjslib/sds.js",
    ):
        assert marker in page.text
    version = client.get(f"http://{at(demo, 'syno62-moved')}:8080/synohdpack/synohdpack.version")
    fields = dict(re.findall(r'(\w+)="([^"]*)"', version.text))
    assert fields == {
        "majorversion": "6",
        "minorversion": "2",
        "major": "6",
        "minor": "2",
        "micro": "4",
        "productversion": "6.2.4",
        "buildphase": "GM",
        "buildnumber": "25556",
        "smallfixnumber": "7",
        "nano": "0",
        "base": "25556",
    }
    api = client.get(
        f"http://{at(demo, 'syno62-moved')}:8080/webapi/query.cgi"
        "?api=SYNO.API.Info&version=1&method=query&query=SYNO.API.Auth"
    )
    assert api.json()["data"]["SYNO.API.Auth"] == {
        "maxVersion": 6,
        "minVersion": 1,
        "path": "auth.cgi",
    }
    assert api.headers["p3p"].startswith('CP="IDC DSP COR ADM')
    assert api.headers["x-content-type-options"] == "nosniff"


@pytest.mark.parametrize("family", ["ipv4", "ipv6"])
def test_dsm72_over_https_on_both_address_families(
    demo: Lab, client: httpx.Client, family: str
) -> None:
    if family == "ipv6":
        if ("::1", 5001) not in demo.listening():
            pytest.skip("the demo's [::1]:5001 is held by another demo lab")
        address = "[::1]"
    else:
        address = at(demo, "syno72")
    page = client.get(f"https://{address}:5001/")
    assert page.status_code == 200
    assert "<title>syno72&nbsp;-&nbsp;Synology&nbsp;NAS</title>" in page.text
    assert (
        '<meta name="description" content="Synology NAS provides a full-featured network '
        "attached storage (NAS) solution to help you manage, backup and share data among "
        'Windows, Mac and Linux easily." />' in page.text
    )
    assert "syno-no-script" in page.text
    assert "synoSDSjslib/dist/sds.bundle.js" in page.text
    version = client.get(f"https://{address}:5001/synohdpack/synohdpack.version").text
    assert 'productversion="7.2.2"' in version
    assert 'buildnumber="72806"' in version
    assert 'smallfixnumber="3"' in version
    api = client.get(
        f"https://{address}:5001/webapi/query.cgi"
        "?api=SYNO.API.Info&version=1&method=query&query=SYNO.API.Auth"
    ).json()
    assert api["data"]["SYNO.API.Auth"] == {"maxVersion": 7, "minVersion": 1, "path": "entry.cgi"}


def test_plain_http_on_a_tls_port_gets_nginx_s_plain_http_error(
    demo: Lab, client: httpx.Client
) -> None:
    answer = client.get(f"http://{at(demo, 'syno72')}:5001/")
    assert answer.status_code == 400
    assert "<title>400 The plain HTTP request was sent to HTTPS port</title>" in answer.text


def test_nginx_welcome_page_on_80_and_443_and_its_404(demo: Lab, client: httpx.Client) -> None:
    for url in (f"http://{at(demo, 'web')}/", f"https://{at(demo, 'web')}/"):
        page = client.get(url)
        assert page.status_code == 200
        assert page.headers["server"] == "nginx/1.22.1"
        assert "<title>Welcome to nginx!</title>" in page.text
    missing = client.get(f"http://{at(demo, 'web')}/webman/index.cgi")
    assert missing.status_code == 404
    assert "<hr><center>nginx/1.22.1</center>" in missing.text


def test_upnp_description_server_is_not_a_web_ui(demo: Lab, client: httpx.Client) -> None:
    root = client.get(f"http://{at(demo, 'upnp')}:5000/")
    assert root.status_code == 404
    assert root.headers["server"] == "Linux/5.10 UPnP/1.1 MiniUPnPd/2.3.3"
    desc = client.get(f"http://{at(demo, 'upnp')}:5000/rootDesc.xml")
    assert desc.status_code == 200
    assert "urn:schemas-upnp-org:device:InternetGatewayDevice:1" in desc.text


def test_server_headers_are_exact_with_no_trailing_space(demo: Lab) -> None:
    # nmap -sV matches banners exactly; "Server: nginx " makes it walk every probe.
    for name, port in (("syno43", 5000), ("syno62-moved", 8080), ("web", 80), ("upnp", 5000)):
        address = at(demo, name)
        with socket.create_connection((address, port), timeout=3) as sock:
            sock.sendall(b"GET / HTTP/1.0\r\n\r\n")
            head = _recv_all(sock).partition(b"\r\n\r\n")[0]
        server = [line for line in head.split(b"\r\n") if line.lower().startswith(b"server:")]
        assert len(server) == 1
        assert server[0] == server[0].rstrip()


# -- negative corpus --------------------------------------------------------------------------


def test_corpus_has_negatives_without_dsm_and_positives_with_it(corpus: Lab) -> None:
    negatives = {h.name for h in corpus.hosts if h.expect_dsm is None}
    assert {
        "neg-qnap",
        "neg-router",
        "neg-webstation",
        "neg-srm",
        "neg-echo",
        "neg-notfound",
        "neg-qnap-https",
    } <= negatives
    positives = {h.expect_dsm for h in corpus.hosts if h.expect_dsm}
    assert positives == {"4.3-3810", "6.2.4-25556", "7.2.2-72806"}
    assert all(
        SITES[s.site].dsm is None for h in corpus.hosts if h.expect_dsm is None for s in h.services
    )


def test_echo_reflects_the_raw_request_and_notfound_is_a_404(
    corpus: Lab, client: httpx.Client
) -> None:
    echo = corpus.host("neg-echo").address
    reflected = client.get(
        f"http://{echo}:5000/webman/index.cgi?x=1", headers={"X-Probe": "SYNO.SDS.Session"}
    )
    assert reflected.status_code == 200
    assert reflected.text.startswith("GET /webman/index.cgi?x=1 HTTP/1.1\r\n")
    assert "X-Probe: SYNO.SDS.Session\r\n" in reflected.text
    assert reflected.text.endswith("\r\n\r\n")

    notfound = corpus.host("neg-notfound").address
    for path in ("/", "/synohdpack/synohdpack.version"):
        answer = client.get(f"http://{notfound}:5000{path}")
        assert answer.status_code == 404
        assert "Synology DiskStation - page not found" in answer.text


def test_look_alikes_show_their_own_products(corpus: Lab, client: httpx.Client) -> None:
    def get(name: str, path: str = "/", scheme: str = "http", port: int = 5000) -> httpx.Response:
        return client.get(f"{scheme}://{corpus.host(name).address}:{port}{path}")

    assert "<title>QNAP Turbo NAS</title>" in get("neg-qnap").text
    assert "<title>QNAP Turbo NAS</title>" in get("neg-qnap-https", scheme="https", port=5001).text
    assert "ASUS Login" in get("neg-router").text
    assert "Hello! Welcome to Synology Web Station!" in get("neg-webstation").text
    srm = get("neg-srm")
    assert "Synology Router provides a full-featured" in srm.text
    assert "SynologyRouter" in srm.text
    assert 'productversion="1.3.1"' in get("neg-srm", "/synohdpack/synohdpack.version").text


# -- certificates -----------------------------------------------------------------------------


def test_dsm43_presents_the_expired_legacy_synology_certificate(demo: Lab) -> None:
    cert = _peer_certificate(at(demo, "syno43"), 5001)
    expected = "CN=synology.com,OU=FTP Team,O=Synology Inc.,L=Taipei,ST=Taiwan,C=TW"
    assert cert.subject.rfc4514_string() == expected
    assert cert.issuer == cert.subject
    assert cert.not_valid_after_utc < dt.datetime(2020, 1, 1, tzinfo=dt.UTC)


def test_dsm72_presents_the_default_certificate_from_synology_inc_ca(demo: Lab) -> None:
    cert = _peer_certificate(at(demo, "syno72"), 5001)
    assert cert.subject.rfc4514_string() == "CN=synology,O=Synology Inc.,C=TW"
    assert cert.issuer.rfc4514_string() == "CN=Synology Inc. CA,O=Synology Inc.,L=Taipei,C=TW"
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["synology"]
    now = dt.datetime.now(dt.UTC)
    assert cert.not_valid_before_utc < now < cert.not_valid_after_utc
    ca_pem = issue("dsm-default").ca_pem
    assert ca_pem is not None
    cert.verify_directly_issued_by(x509.load_pem_x509_certificate(ca_pem))


def test_web_server_presents_an_example_lab_certificate(demo: Lab) -> None:
    cert = _peer_certificate(at(demo, "web"), 443)
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "www.example.net"
    issuer_cn = cert.issuer.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value
    assert issuer_cn == "Example Lab CA"


# -- DNS --------------------------------------------------------------------------------------


def test_dns_follows_the_cname_chain(resolver: Lab) -> None:
    reply = _query(resolver, "nas.example.net", "A")
    assert reply.rcode() == dns.rcode.NOERROR
    assert reply.flags & dns.flags.AA
    assert [rr.to_text() for rr in reply.answer] == [
        "nas.example.net. 60 IN CNAME syno43.example.net.",
        "syno43.example.net. 60 IN A 127.77.0.10",
    ]


def test_dns_answers_aaaa_over_udp_and_tcp(resolver: Lab) -> None:
    for tcp in (False, True):
        reply = _query(resolver, "dsm7.example.net", "AAAA", tcp=tcp)
        assert [rr.to_text() for rr in reply.answer] == ["dsm7.example.net. 60 IN AAAA ::1"]
    assert _query(resolver, "diskstation.myds.me", "A").answer[0][0].to_text() == "127.77.0.30"


def test_dns_nodata_nxdomain_and_refused(resolver: Lab) -> None:
    nodata = _query(resolver, "v4only.example.net", "AAAA")
    assert nodata.rcode() == dns.rcode.NOERROR
    assert nodata.answer == []
    assert nodata.authority[0].rdtype == dns.rdatatype.SOA

    gone = _query(resolver, "gone.example.net", "A")
    assert gone.rcode() == dns.rcode.NXDOMAIN

    outside = _query(resolver, "example.com", "A")
    assert outside.rcode() == dns.rcode.REFUSED


# -- banners ----------------------------------------------------------------------------------


def test_banner_services_send_their_exact_greetings(demo: Lab) -> None:
    assert _greeting(at(demo, "legacy"), 23, len(TELNET_GREETING)) == TELNET_GREETING
    assert _greeting(at(demo, "syno62-moved"), 22, len(SSH_BANNER)) == SSH_BANNER


def test_smb_answers_nmaps_negotiate_probe_as_samba(demo: Lab) -> None:
    with socket.create_connection((at(demo, "legacy"), 445), timeout=3) as sock:
        sock.sendall(SMB_PROBE)
        sock.settimeout(3)
        answer = sock.recv(4096)
    # nmap-service-probes: match netbios-ssn ... p/Samba smbd/ v/3.X - 4.X/
    samba = (
        rb"^\0\0\0.\xffSMBr\0\0\0\0\x88..\0\0[-\w. ]*\0+@\x06\0\0\x01\0\x11\x06\0"
        rb".{42}(.*)\0\0(.*)\0\0$"
    )
    match = re.match(samba, answer, re.S)
    assert match is not None
    assert "WORKGROUP" in match.group(1).decode("utf-16-le", "replace")


def test_silent_service_hangs_up_on_input_without_a_byte(demo: Lab) -> None:
    with socket.create_connection((at(demo, "legacy"), 139), timeout=3) as sock:
        sock.sendall(b"GET / HTTP/1.0\r\n\r\n")
        started = time.monotonic()
        assert _recv_all(sock, 3.0) == b""
        assert time.monotonic() - started < 2.0


@pytest.mark.skipif(NMAP is None, reason="nmap is not installed")
def test_nmap_names_telnet_smb_and_openssh(demo: Lab) -> None:
    legacy = subprocess.run(
        [NMAP or "nmap", "-sV", "-Pn", "-n", "-p", "23,445", at(demo, "legacy")],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout
    assert re.search(r"23/tcp\s+open\s+telnet\s+Synology DiskStation 1512\+ NAS telnetd", legacy)
    assert re.search(r"445/tcp\s+open\s+netbios-ssn\s+Samba smbd 3\.X - 4\.X", legacy)
    ssh = subprocess.run(
        [NMAP or "nmap", "-sV", "-Pn", "-n", "-p", "22", at(demo, "syno62-moved")],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout
    assert re.search(r"22/tcp\s+open\s+ssh\s+OpenSSH 8\.2p1 Ubuntu 4ubuntu0\.5", ssh)


# -- robustness -------------------------------------------------------------------------------


def test_junk_gets_400_or_a_closed_connection_and_prints_nothing(
    demo: Lab, capfd: pytest.CaptureFixture[str]
) -> None:
    web, syno72, legacy = at(demo, "web"), at(demo, "syno72"), at(demo, "legacy")
    junk = [
        (web, 80, b"\x00\xff\x13garbage\r\n\r\n"),
        (web, 80, b"GET / HTTP/1.1\r\nX: " + b"a" * 20_000 + b"\r\n\r\n"),
        (web, 80, b"POST / HTTP/1.1\r\nContent-Length: 999999\r\n\r\n"),
        (syno72, 5001, b"\x16\x03\x01\x00\x05hello"),  # a broken TLS record
        (syno72, 5001, b"\x16\x03\x01\x02\x00" + os.urandom(512)),
        (legacy, 445, b"\x00\x00\x00\x04\xfeSMB"),
        (legacy, 23, b"\xff\xfb\x18\xff\xfa\x18\x00xterm\xff\xf0root\r\n"),
    ]
    for address, port, payload in junk:
        with socket.create_connection((address, port), timeout=3) as sock:
            try:
                sock.sendall(payload)
                sock.shutdown(socket.SHUT_WR)
                answer = _recv_all(sock, 3.0)
            except ConnectionResetError:
                answer = b""
        if port == 80:
            assert answer.startswith(b"HTTP/1.1 4"), (payload[:30], answer[:60])
        if port == 5001:
            assert answer[:1] in (b"", b"\x15")  # nothing, or a TLS alert record
    out, err = capfd.readouterr()
    assert out == ""
    assert err == ""


# -- lifecycle --------------------------------------------------------------------------------


def _open_fds() -> set[tuple[str, str]]:
    """This process's open descriptors as (number, target) pairs."""
    fds = set()
    for fd in os.listdir("/proc/self/fd"):
        with contextlib.suppress(OSError):
            fds.add((fd, os.readlink(f"/proc/self/fd/{fd}")))
    return fds


def test_a_lab_stops_cleanly_even_with_connections_open() -> None:
    hosts = [
        LabHost(
            "mixed",
            "127.79.0.1",
            "test",
            (
                LabService(2121, "banner", "ftp_syno"),
                LabService(5000, "http", "dsm62"),
                LabService(5001, "https", "dsm72"),
                LabService(4445, "silent", "quiet"),
            ),
            "F",
            "6.2.4-25556",
        )
    ]
    threads_before, fds_before = set(threading.enumerate()), _open_fds()
    lab = Lab(hosts, {"mixed.example.org": (("A", "127.79.0.1"),)})
    with lab:
        assert _greeting("127.79.0.1", 2121, len(FTP_GREETING)) == FTP_GREETING
        idle = socket.create_connection(("127.79.0.1", 4445), timeout=5)
        half = socket.create_connection(("127.79.0.1", 5001), timeout=5)
        half.sendall(b"\x16\x03\x01")  # a handshake that never completes
        assert lab.running
    assert not lab.running
    # Both held connections were closed by the lab, not left to time out.
    for sock in (idle, half):
        sock.settimeout(2)
        with contextlib.suppress(ConnectionResetError):
            assert sock.recv(1) == b""
        sock.close()
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.79.0.1", 5000), timeout=2).close()
    assert set(threading.enumerate()) == threads_before
    assert _open_fds() - fds_before == set()  # nothing new left open (others may close)
    with pytest.raises(RuntimeError):
        _ = lab.resolver
    # And it can run again.
    with lab:
        assert _greeting("127.79.0.1", 2121, 3) == b"220"


def test_a_taken_port_fails_start_and_leaves_nothing_running() -> None:
    blocker = socket.socket()
    blocker.bind(("127.79.0.2", 5000))
    blocker.listen()
    threads_before = set(threading.enumerate())
    try:
        lab = Lab(
            [LabHost("x", "127.79.0.2", "web", (LabService(5000, "http", "nginx"),), "A", None)]
        )
        with pytest.raises(OSError, match=r"cannot listen on 127\.79\.0\.2:5000"):
            lab.start()
        assert not lab.running
        assert set(threading.enumerate()) == threads_before
    finally:
        blocker.close()


def test_bench_lab_mix_is_deterministic() -> None:
    lab = bench_lab()
    assert lab.addresses()[0] == "127.88.0.1"
    assert lab.addresses()[-1] == "127.88.0.254"
    assert [h.name for h in bench_lab(9).hosts] == [
        "b1-web",
        "b2-ssh",
        "b3-closed",
        "b4-dsm62",
        "b5-web",
        "b6-closed",
        "b7-closed",
        "b8-dsm72",
        "b9-web",
    ]
    assert bench_lab(8).host("b8-dsm72").ports == (5000, 5001)


def test_bench_lab_starts_254_hosts_quickly() -> None:
    started = time.monotonic()
    # A private /24 so that a benchmark running next to the tests does not collide.
    with bench_lab(network="127.189.0.0/24") as lab:
        elapsed = time.monotonic() - started
        assert len(lab.hosts) == 254
        dsm = [h for h in lab.hosts if h.expect_dsm]
        assert len(dsm) == 63
        assert {h.expect_dsm for h in dsm} == {"4.3-3810", "6.2.4-25556", "7.2.2-72806"}
        assert len(lab.listening()) == sum(len(h.services) for h in lab.hosts)
        with httpx.Client(verify=False, trust_env=False, timeout=5) as http:
            assert http.get("https://127.189.0.8:5001/").status_code == 200
            assert "Welcome to nginx!" in http.get("http://127.189.0.1/").text
    assert elapsed < 5.0


SETPRIV = shutil.which("setpriv")


@pytest.mark.skipif(
    os.geteuid() != 0 or SETPRIV is None, reason="needs root and setpriv to drop a capability"
)
def test_cli_runs_a_lab_until_stdin_closes_and_skips_low_ports_without_privilege() -> None:
    # Given the CLI started without CAP_NET_BIND_SERVICE (ports below 1024 cannot be bound),
    # a small bench lab on a private /24
    with subprocess.Popen(
        [
            SETPRIV or "setpriv",
            "--bounding-set",
            "-net_bind_service",
            "--",
            sys.executable,
            "-m",
            "exposure_audit.lab",
            "bench",
            "--count",
            "9",
            "--network",
            "127.188.0.0/24",
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ) as process:
        try:
            assert process.stdout is not None and process.stdin is not None
            # When it reports itself ready
            description = json.loads(process.stdout.readline())
            assert process.stdout.readline().strip() == "ready"
            # Then the low ports are skipped and everything else serves
            assert description["resolver"].startswith("127.0.0.1:")
            skipped = " ".join(description["skipped"])
            assert "127.188.0.1:80/tcp" in skipped
            assert "127.188.0.2:22/tcp" in skipped
            hosts = {h["name"]: h for h in description["hosts"]}
            assert hosts["b1-web"]["ports"] == []
            assert hosts["b8-dsm72"]["ports"] == [5000, 5001]
            assert hosts["b8-dsm72"]["expect_dsm"] == "7.2.2-72806"
            with httpx.Client(trust_env=False, timeout=5) as http:
                assert "Synology&nbsp;NAS" in http.get("http://127.188.0.8:5000/").text
            # And closing stdin stops it cleanly, saying nothing on stderr
            process.stdin.close()
            assert process.wait(timeout=15) == 0
            assert process.stderr is not None
            assert process.stderr.read() == ""
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
