#!/usr/bin/env python3
"""Benchmark: what silent ports cost a host's audit, against the same host without them.

Starts loopback hosts on 127.63.0.0/24 in a child process (this script with ``--serve-lab``):

- ``base``   127.63.0.10: DSM 7.2 over HTTP on 5000, an SSH banner on 22;
- ``mute1``  127.63.0.11: the same, plus 5001 that takes connections and never says a byte;
- ``mute3``  127.63.0.12: the same, plus 5001, 8443 and 9901 silent like that;
- ``slow``   127.63.0.20: an SSH banner only after 3 s on 22, an HTTP 200 only after 8 s on 8080.

Then runs, alternating, ``--repeat`` times each, on the audit's default TCP ports:

- ``exposure-audit scan HOST`` for each host (the real CLI with its defaults, host timeout
  60 s; ``--allow-private --no-history``, and ``--no-udp`` because the nmap rows are TCP);
- ``nmap -sT -sV`` with the flags the audit gives ``-sV`` (``-T4``, intensity 2, a 2 s first
  banner wait: what the audit used to pay on a silent port, up to its host deadline) on
  base, mute1 and mute3;
- ``nmap -sT -sV`` with nmap's defaults (what a user would otherwise run; minutes per silent
  port: ``--sv-repeat`` runs, default 1, or ``--skip-sv``).

Prints the median wall time of each, the ratios mute1/base and mute3/base, and what the audit
made of each port: the silent ones must end unidentified (UNK001/UNK002), the others, the slow
ones included, identified. Exit status 1 when that does not hold. Only loopback is touched.

    python3 bench/bench_silent.py [--repeat 3] [--sv-repeat 1] [--skip-sv]
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from exposure_audit.lab import Lab, LabHost, LabService  # noqa: E402
from exposure_audit.nmap.scanner import NmapScanner  # noqa: E402
from exposure_audit.nmap.versiondb import quick_banner_versiondb  # noqa: E402
from exposure_audit.ports import default_ports  # noqa: E402

BASE = (
    LabService(5000, "http", "dsm72", "DSM 7.2 over HTTP"),
    LabService(22, "banner", "ssh", "OpenSSH, banner at once"),
)


def _mute(port: int) -> LabService:
    return LabService(port, "banner", "mute", "takes the connection, never answers")


HOSTS = (
    LabHost("base", "127.63.0.10", "dsm", BASE, "F", None),
    LabHost("mute1", "127.63.0.11", "dsm", (*BASE, _mute(5001)), "F", None),
    LabHost("mute3", "127.63.0.12", "dsm", (*BASE, *map(_mute, (5001, 8443, 9901))), "F", None),
    LabHost(
        "slow",
        "127.63.0.20",
        "slow",
        (
            LabService(22, "banner", "ssh_slow", "SSH banner after 3 s"),
            LabService(8080, "banner", "http_slow", "HTTP 200 after 8 s"),
        ),
        "C",
        None,
    ),
)
#: What a correct audit says of each (host, port): the silent ports are unidentified.
SILENT = {(h.address, s.port) for h in HOSTS for s in h.services if s.site == "mute"}


def serve_lab() -> int:
    """The child: run the hosts, print one JSON line and ``ready``, stop at end of stdin."""
    with Lab(HOSTS) as lab:
        print(json.dumps(lab.describe()), flush=True)
        print("ready", flush=True)
        sys.stdin.read()
    return 0


def start_lab() -> subprocess.Popen[str]:
    lab = subprocess.Popen(
        [sys.executable, __file__, "--serve-lab"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    assert lab.stdout is not None
    info = json.loads(lab.stdout.readline())
    if lab.stdout.readline().strip() != "ready" or info["skipped"]:
        raise SystemExit(f"the lab did not start: {info.get('skipped')}")
    return lab


def measured(argv: list[str], stdout: Path) -> float:
    """Run ``argv`` (cwd: the repository) with its output to ``stdout``; the seconds it took."""
    with stdout.open("wb") as out:
        began = time.perf_counter()
        code = subprocess.run(argv, stdout=out, stderr=subprocess.PIPE, cwd=ROOT).returncode
        seconds = time.perf_counter() - began
    if code not in (0, 1):  # the audit exits 1 for findings
        raise SystemExit(f"{' '.join(argv[:4])} ... exited {code}")
    return seconds


def audit_verdicts(report: Path) -> dict[tuple[str, int], str]:
    """(address, port) -> what the audit made of it: ``http``, the -sV product/service, or
    ``unidentified (RULE)``."""
    doc: dict[str, Any] = json.loads(report.read_text())
    verdicts: dict[tuple[str, int], str] = {}
    for host in doc["hosts"]:
        rules = {f.get("port"): f["rule"] for f in host["findings"] if f["rule"].startswith("UNK")}
        for service in host["services"]:
            key = (host["address"], service["port"])
            if service.get("unidentified"):
                verdicts[key] = f"unidentified ({rules.get(service['port'], 'no UNK rule')})"
            elif service.get("http"):
                verdicts[key] = "http"
            else:
                verdicts[key] = service.get("product") or service.get("service") or "?"
    return verdicts


def correct(verdicts: dict[tuple[str, int], str], host: LabHost) -> bool:
    """Every silent port unidentified with its UNK rule, every other port identified."""
    for service in host.services:
        verdict = verdicts.get((host.address, service.port), "missing")
        silent = (host.address, service.port) in SILENT
        if silent != verdict.startswith("unidentified (UNK"):
            return False
    return True


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--sv-repeat", type=int, default=1, help="runs of nmap -sV (defaults)")
    parser.add_argument("--skip-sv", action="store_true", help="leave out nmap -sV (defaults)")
    parser.add_argument("--serve-lab", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_lab:
        return serve_lab()

    ports = default_ports().nmap_spec(udp=False)
    scanner = NmapScanner()
    versiondb = quick_banner_versiondb(shutil.which("nmap") or "nmap")
    as_audit = ["-T4", "--version-intensity", str(scanner.version_intensity)]
    as_audit += ["--max-parallelism", str(scanner.version_parallelism)]
    as_audit += ["--versiondb", versiondb] if versiondb else []
    nmap = ["nmap", "-sT", "-sV", "-Pn", "-n", "-oX", "-", "-p", ports]
    workdir = Path(tempfile.mkdtemp(prefix="ea-silent-bench-"))

    commands: dict[str, list[str]] = {}
    reports: dict[str, tuple[Path, LabHost]] = {}
    for host in HOSTS:
        report = workdir / f"{host.name}.json"
        reports[f"audit {host.name}"] = (report, host)
        commands[f"audit {host.name}"] = [
            *(sys.executable, "-m", "exposure_audit", "scan", host.address, "--allow-private"),
            *("--no-history", "--no-udp", "-q", "--format", "json", "-o", str(report)),
            *("--fail-on", "never"),
        ]
    for host in HOSTS[:3]:
        commands[f"nmap -sV as audit {host.name}"] = [*nmap, *as_audit, "--", host.address]
    if not args.skip_sv:
        for host in HOSTS[:3]:
            commands[f"nmap -sV defaults {host.name}"] = [*nmap, "--", host.address]

    times: dict[str, list[float]] = {name: [] for name in commands}
    ok = True
    verdicts: dict[tuple[str, int], str] = {}
    lab = start_lab()
    try:
        for round_ in range(args.repeat):
            for name, argv in commands.items():
                if name.startswith("nmap -sV defaults") and round_ >= args.sv_repeat:
                    continue
                times[name].append(measured(argv, workdir / "stdout"))
                if name in reports:
                    report, host = reports[name]
                    seen = audit_verdicts(report)
                    # Every round counts: the verdicts must hold each time.
                    ok = correct(seen, host) and ok
                    verdicts.update(seen)
    finally:
        assert lab.stdin is not None
        lab.stdin.close()
        lab.wait(timeout=30)

    def median(name: str) -> float:
        return statistics.median(times[name])

    print(f"hosts on loopback, audit default TCP ports ({ports}), host timeout 60 s")
    print(f"runs: median of {args.repeat} ({args.sv_repeat} for nmap -sV defaults), alternating\n")
    print(f"{'command':<30}{'median s':>10}{'runs':>6}{'/ base':>8}")
    for name in commands:
        if not times[name]:
            continue
        family, _, which = name.rpartition(" ")
        base = f"{family} base"
        ratio = f"{median(name) / median(base):>8.2f}" if which.startswith("mute") else ""
        print(f"{name:<30}{median(name):>10.2f}{len(times[name]):>6}{ratio}")
    print("\nwhat the audit made of each port (last round):")
    for host in HOSTS:
        listed = ", ".join(f"{p} {verdicts.get((host.address, p), 'missing')}" for p in host.ports)
        print(f"  {host.name:<6} {listed}")
    verdict = "yes" if ok else "NO"
    print(f"\nsilent ports unidentified, all others identified, every round: {verdict}")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
