#!/usr/bin/env python3
"""Benchmark: a full exposure-audit scan against what a user would otherwise run, side by side.

Starts the loopback benchmark lab (254 hosts by default: DSM over HTTP and HTTPS of several
generations, other web servers, SSH, closed addresses) in its own process, then runs on the
same hosts and ports, alternating, ``--repeat`` times each:

- ``exposure-audit scan`` (discovery, versions, DSM fingerprint, grading, JSON report);
- ``nmap -sT -sV -Pn -n`` (what a user would otherwise run to get versions);
- ``nmap -sT -Pn -n`` (bare discovery: the floor).

Prints median wall time, the ratios, peak RSS of each process (``wait4``'s ru_maxrss; the audit's
own nmap children are not included, they are reported by the nmap rows), whether every DSM
host of the lab was found, and, per web port of the lab, whether the audit names the same
product and version as ``nmap -sT -sV`` (the audit never sends web ports to ``-sV``: it matches
the answer it read against nmap's own service probes). Only loopback is touched.

    python3 bench/bench_audit.py [--count 254] [--repeat 3] [--sv-repeat 1] [--skip-sv]
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import defusedxml.ElementTree as SafeET

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from exposure_audit.ports import default_ports  # noqa: E402

# The default TCP set of exposure-audit (exposure_audit/data/ports.json), for all three runs.
PORTS = default_ports().nmap_spec(udp=False)


def run_measured(argv: list[str]) -> tuple[float, int, int]:
    """Run argv to completion; return (seconds, peak RSS in MiB, exit code)."""
    start = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    return elapsed, usage.ru_maxrss // 1024, proc.returncode


def start_lab(count: int) -> tuple[subprocess.Popen[str], dict[str, object]]:
    lab = subprocess.Popen(
        [sys.executable, "-m", "exposure_audit.lab", "bench", "--count", str(count)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    assert lab.stdout is not None
    info = json.loads(lab.stdout.readline())
    if lab.stdout.readline().strip() != "ready":
        raise SystemExit("the benchmark lab did not start")
    return lab, info


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=254)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--skip-sv", action="store_true", help="leave out nmap -sT -sV (slow)")
    parser.add_argument(
        "--sv-repeat", type=int, default=1, help="runs of nmap -sT -sV (minutes each; default 1)"
    )
    args = parser.parse_args()

    lab, info = start_lab(args.count)
    try:
        hosts = info["hosts"]
        assert isinstance(hosts, list)
        workdir = Path(tempfile.mkdtemp(prefix="ea-bench-"))
        targets = workdir / "targets.txt"
        targets.write_text("".join(f"{h['address']}\n" for h in hosts))
        report = workdir / "report.json"
        commands = {
            "exposure-audit scan": [
                sys.executable,
                "-m",
                "exposure_audit",
                "scan",
                "--allow-private",
                "-q",
                "--no-udp",
                "-p",
                PORTS,
                "-i",
                str(targets),
                "--format",
                "json",
                "-o",
                str(report),
                "--fail-on",
                "never",
            ],
            "nmap -sT -sV": [
                "nmap",
                "-sT",
                "-sV",
                "-Pn",
                "-n",
                "-p",
                PORTS,
                "-iL",
                str(targets),
                "-oX",
                str(workdir / "sv.xml"),
            ],
            "nmap -sT (discovery)": [
                "nmap",
                "-sT",
                "-Pn",
                "-n",
                "-p",
                PORTS,
                "-iL",
                str(targets),
                "-oX",
                "-",
            ],
        }
        if args.skip_sv:
            del commands["nmap -sT -sV"]
        times: dict[str, list[float]] = {name: [] for name in commands}
        rss: dict[str, int] = dict.fromkeys(commands, 0)
        for round_ in range(args.repeat):
            for name, argv in commands.items():
                if name == "nmap -sT -sV" and round_ >= args.sv_repeat:
                    continue
                seconds, peak, code = run_measured(argv)
                if code != 0:
                    raise SystemExit(f"{name} exited {code}")
                times[name].append(seconds)
                rss[name] = max(rss[name], peak)

        expected = {h["address"] for h in hosts if h.get("expect_dsm")}
        doc = json.loads(report.read_text())
        found = {h["address"] for h in doc["hosts"] if any(s.get("dsm") for s in h["services"])}
        audit = statistics.median(times["exposure-audit scan"])
        print(f"lab: {len(hosts)} hosts on loopback, ports {PORTS}")
        print(f"runs: median of {args.repeat} ({args.sv_repeat} for nmap -sT -sV), alternating\n")
        print(f"{'command':<24}{'median s':>10}{'audit / it':>12}{'peak RSS MiB':>14}")
        for name in commands:
            median = statistics.median(times[name])
            print(f"{name:<24}{median:>10.2f}{audit / median:>12.3f}{rss[name]:>14}")
        print(
            f"\nDSM hosts found by the audit: {len(found & expected)} of {len(expected)}"
            f" (extra: {len(found - expected)})"
        )
        if not args.skip_sv:
            print_web_agreement(doc, workdir / "sv.xml")
        return 0 if expected <= found else 1
    finally:
        lab.terminate()
        lab.wait(timeout=10)


def print_web_agreement(doc: dict[str, object], sv_xml: Path) -> None:
    """Per web port of the audit's report: does its product/version equal nmap -sV's?"""
    named: dict[tuple[str, int], tuple[str, str]] = {}
    for host in SafeET.parse(sv_xml).getroot().iter("host"):
        address = host.find("address")
        for port in host.iter("port"):
            service = port.find("service")
            if address is None or service is None:
                continue
            key = (address.get("addr", ""), int(port.get("portid", "0")))
            named[key] = (service.get("product", ""), service.get("version", ""))
    same = 0
    differ: collections.Counter[str] = collections.Counter()
    hosts = doc["hosts"]
    assert isinstance(hosts, list)
    web = [(h["address"], s) for h in hosts for s in h["services"] if s.get("http")]
    for address, service in web:
        ours = (service["product"], service["version"])
        theirs = named.get((address, service["port"]), ("", ""))
        if ours == theirs:
            same += 1
        else:
            differ[f"{service['port']}: audit {ours} / nmap -sV {theirs}"] += 1
    share = 100 * same / len(web) if web else 0.0
    print(f"web ports named as nmap -sV names them: {same} of {len(web)} ({share:.0f}%)")
    for text, count in differ.most_common():
        print(f"  differ x{count}: {text}")


if __name__ == "__main__":
    raise SystemExit(main())
