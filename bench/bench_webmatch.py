#!/usr/bin/env python3
"""Benchmark: nmap's web identification from one GET, against ``nmap -sV`` on the same ports.

Starts real web servers on loopback only (127.91.0.1, high ports; configs, pages and a
self-signed certificate in a temporary directory; the system services are not used):

- nginx over HTTP and HTTPS, and nginx with ``server_tokens off`` (what DSM's nginx sends);
- Apache httpd over HTTP and HTTPS;
- lighttpd; Python's http.server; Twisted Web (``twist3``).

They come from Debian (``apt-get install -y nginx-light apache2 lighttpd python3-twisted``), for
this benchmark only; a server that is not installed is left out. For each port, alternating,
``--repeat`` times: ``nmap -sT -sV -Pn -n -p PORT 127.91.0.1`` and our fingerprint (an httpx
GET of ``/`` and :meth:`WebMatcher.match` on it). Prints per port nmap's product and version,
ours, whether they agree, and the ratio of the median times (ours / nmap's), then the one-time
cost of loading nmap's file (parse) and of compiling every web line. Only loopback is touched.

    python3 bench/bench_webmatch.py [--repeat 3]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

import defusedxml.ElementTree as SafeET
import httpx
import trustme

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from exposure_audit.nmap.installed import default_matcher  # noqa: E402
from exposure_audit.nmap.servicematch import WebMatcher  # noqa: E402
from exposure_audit.nmap.versiondb import installed_probe_file  # noqa: E402
from exposure_audit.probes.rawhttp import response_bytes  # noqa: E402

ADDRESS = "127.91.0.1"


@dataclass(frozen=True)
class WebPort:
    name: str
    port: int
    scheme: str


@dataclass(frozen=True)
class Identity:
    product: str | None
    version: str | None


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def _nginx(work: Path, cert: Path, key: Path) -> tuple[list[str], list[WebPort]]:
    conf = _write(
        work / "nginx.conf",
        f"""user root;
daemon off;
pid {work}/nginx.pid;
error_log {work}/nginx-error.log;
events {{ worker_connections 64; }}
http {{
  access_log off;
  client_body_temp_path {work}/nginx-body;
  proxy_temp_path {work}/nginx-proxy;
  fastcgi_temp_path {work}/nginx-fastcgi;
  uwsgi_temp_path {work}/nginx-uwsgi;
  scgi_temp_path {work}/nginx-scgi;
  server {{ listen {ADDRESS}:18080; root {work}/www; }}
  server {{ listen {ADDRESS}:18443 ssl; root {work}/www;
           ssl_certificate {cert}; ssl_certificate_key {key}; }}
  server {{ listen {ADDRESS}:18050; root {work}/www; server_tokens off; }}
}}
""",
    )
    ports = [
        WebPort("nginx", 18080, "http"),
        WebPort("nginx HTTPS", 18443, "https"),
        WebPort("nginx, tokens off (DSM-like)", 18050, "http"),
    ]
    return ["nginx", "-c", str(conf)], ports


def _apache(work: Path, cert: Path, key: Path) -> tuple[list[str], list[WebPort]]:
    modules = "/usr/lib/apache2/modules"
    loads = "\n".join(
        f"LoadModule {name}_module {modules}/mod_{name}.so"
        for name in ("mpm_event", "authz_core", "dir", "mime", "socache_shmcb", "ssl")
    )
    conf = _write(
        work / "apache2.conf",
        f"""{loads}
ServerRoot {work}
ServerName localhost
PidFile {work}/apache.pid
ErrorLog {work}/apache-error.log
Mutex file:{work}
User www-data
Group www-data
Listen {ADDRESS}:18081
Listen {ADDRESS}:18444
DocumentRoot /var/www/html
DirectoryIndex index.html
TypesConfig /etc/mime.types
<VirtualHost {ADDRESS}:18444>
  SSLEngine on
  SSLCertificateFile {cert}
  SSLCertificateKeyFile {key}
</VirtualHost>
""",
    )
    ports = [WebPort("Apache httpd", 18081, "http"), WebPort("Apache httpd HTTPS", 18444, "https")]
    return ["apache2", "-f", str(conf), "-DFOREGROUND"], ports


def _lighttpd(work: Path, _cert: Path, _key: Path) -> tuple[list[str], list[WebPort]]:
    conf = _write(
        work / "lighttpd.conf",
        f"""server.bind = "{ADDRESS}"
server.port = 18082
server.document-root = "{work}/www"
server.errorlog = "{work}/lighttpd-error.log"
index-file.names = ("index.html")
mimetype.assign = (".html" => "text/html")
""",
    )
    return ["lighttpd", "-D", "-f", str(conf)], [WebPort("lighttpd", 18082, "http")]


def _python(work: Path, _cert: Path, _key: Path) -> tuple[list[str], list[WebPort]]:
    command = [sys.executable, "-m", "http.server", "--bind", ADDRESS, "18083"]
    return [*command, "--directory", str(work / "www")], [
        WebPort("Python http.server", 18083, "http")
    ]


def _twisted(work: Path, _cert: Path, _key: Path) -> tuple[list[str], list[WebPort]]:
    listen = f"tcp:18084:interface={ADDRESS}"
    command = ["twist3", "web", "--listen", listen, "--path", str(work / "www")]
    return command, [WebPort("Twisted Web", 18084, "http")]


SERVERS = {
    "nginx": _nginx,
    "apache2": _apache,
    "lighttpd": _lighttpd,
    "python3": _python,
    "twist3": _twisted,
}


@contextmanager
def running_servers(work: Path) -> Iterator[list[WebPort]]:
    """Start every installed server on loopback; stop them all on exit."""
    (work / "www").mkdir()
    (work / "www" / "index.html").write_text("<html><head><title>bench</title></head></html>\n")
    work.chmod(0o755)
    authority = trustme.CA()
    leaf = authority.issue_cert(ADDRESS)
    cert, key = work / "cert.pem", work / "key.pem"
    leaf.cert_chain_pems[0].write_to_path(str(cert))
    leaf.private_key_pem.write_to_path(str(key))
    ports: list[WebPort] = []
    with ExitStack() as stack:
        for binary, make in SERVERS.items():
            if shutil.which(binary) is None:
                print(f"(skipped: {binary} not installed)")
                continue
            command, served = make(work, cert, key)
            log = (work / f"{binary}.out").open("w")
            process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
            stack.callback(_stop, process)
            ports += served
        _wait_until_listening(ports)
        yield ports


def _stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def _wait_until_listening(ports: list[WebPort]) -> None:
    deadline = time.monotonic() + 20
    for web in ports:
        while True:
            try:
                httpx.get(_url(web), verify=False, timeout=2)  # noqa: S501 - our own cert
                break
            except httpx.HTTPError:
                if time.monotonic() > deadline:
                    raise SystemExit(f"{web.name} on {web.port} did not come up") from None
                time.sleep(0.2)


def _url(web: WebPort) -> str:
    return f"{web.scheme}://{ADDRESS}:{web.port}/"


def nmap_identity(web: WebPort) -> tuple[Identity, float]:
    started = time.perf_counter()
    xml = subprocess.run(
        ["nmap", "-sT", "-sV", "-Pn", "-n", "-p", str(web.port), ADDRESS, "-oX", "-"],  # noqa: S607
        capture_output=True,
        check=True,
    ).stdout
    elapsed = time.perf_counter() - started
    service = SafeET.fromstring(xml).find(".//port/service")
    if service is None:
        return Identity(None, None), elapsed
    return Identity(service.get("product"), service.get("version")), elapsed


def our_identity(web: WebPort, matcher: WebMatcher) -> tuple[Identity, float]:
    """An httpx GET of / and the match: what a probe would add to its own GET (a fresh client
    each time, as nmap connects afresh)."""
    started = time.perf_counter()
    with httpx.Client(verify=False, timeout=10) as client:  # noqa: S501 - our own cert
        response = client.get(_url(web))
    found = matcher.match(response_bytes(response))
    elapsed = time.perf_counter() - started
    if found is None:
        return Identity(None, None), elapsed
    return Identity(found.product, found.version), elapsed


def load_costs() -> tuple[float, float, WebMatcher]:
    """Seconds to load (parse) the installed file, and to compile every web line."""
    started = time.perf_counter()
    matcher = default_matcher()
    loaded = time.perf_counter() - started
    if matcher is None:
        raise SystemExit("no nmap-service-probes found")
    path = installed_probe_file(shutil.which("nmap") or "nmap")
    assert path is not None
    fresh = WebMatcher.from_text(path.read_text(encoding="latin-1"))
    started = time.perf_counter()
    stats = fresh.compile_all()
    compiled = time.perf_counter() - started
    print(
        f"web lines: {stats.lines}; malformed: {stats.malformed}; "
        f"failed to compile: {stats.failed_to_compile}"
    )
    return loaded, compiled, matcher


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    options = parser.parse_args()
    loaded, compiled, matcher = load_costs()
    rows = []
    with (
        tempfile.TemporaryDirectory(prefix="bench-webmatch-") as temp,
        running_servers(Path(temp)) as ports,
    ):
        for web in ports:
            theirs_times, ours_times = [], []
            for _ in range(options.repeat):
                theirs, seconds = nmap_identity(web)
                theirs_times.append(seconds)
                ours, seconds = our_identity(web, matcher)
                ours_times.append(seconds)
            rows.append(
                (web, theirs, ours, statistics.median(theirs_times), statistics.median(ours_times))
            )
    print(f"\nruns: median of {options.repeat}, alternating; {ADDRESS}, loopback only\n")
    columns = ("nmap -sV", "servicematch")
    print(f"{'server':30} {columns[0]:34} {columns[1]:34} {'same':5}", end=" ")
    print(f"{'-sV s':>7} {'ours s':>7} {'ratio':>7}")
    agree = 0
    for web, theirs, ours, their_time, our_time in rows:
        same_product = theirs.product == ours.product
        agree += same_product
        same = (
            "yes"
            if same_product and theirs.version == ours.version
            else ("prod" if same_product else "NO")
        )
        print(
            f"{web.name:30} {_shown(theirs):34} {_shown(ours):34} {same:5} "
            f"{their_time:7.2f} {our_time:7.3f} {our_time / their_time:7.4f}"
        )
    total_ours = sum(row[4] for row in rows)
    total_theirs = sum(row[3] for row in rows)
    print(
        f"\nsame product as nmap -sV: {agree} of {len(rows)} ports ({100 * agree / len(rows):.0f}%)"
        f"\ntime ratio over all ports: {total_ours / total_theirs:.4f} (ours {total_ours:.3f} s,"
        f" nmap -sV {total_theirs:.2f} s)"
        f"\none-time cost: load (parse the file) {loaded:.3f} s; compile all web lines"
        f" {compiled:.2f} s (the prefilter compiles only the lines a response could match)"
    )
    return 0 if agree == len(rows) else 1


def _shown(identity: Identity) -> str:
    text = " ".join(part for part in (identity.product, identity.version) if part)
    return text[:33] or "-"


if __name__ == "__main__":
    raise SystemExit(main())
