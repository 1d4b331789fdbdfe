#!/usr/bin/env python3
"""Benchmark: nmap discovery timing policies on the filtered-perimeter lab.

Builds the lab of ``tests/perimeter`` (1,024 addresses of 198.18.0.0/22 behind a firewall that
accepts some (address, port) pairs, resets three ports on one /24 and drops the rest; 64 hosts
with DSM, SSH, SMB and nginx) and runs ``nmap -sT -Pn -n`` from its scanner namespace over the
default TCP ports of exposure-audit (31) with each candidate policy. Every run is checked
against the lab's ground truth, which comes from the lab's own layout and rules, not a scan.

Sections (``--sections``):

``full``
    all 1,024 addresses (31,744 probes): the candidates.
``sample``
    64 addresses, every 16th of the /22 (4 of them with services, 16 in the resetting /24),
    for the policies too slow for the full range (nmap's default timing) and a few others,
    like for like.
``dark``
    64 addresses that never answer (no service, outside the resetting /24): the case where
    nmap has no round trip to learn from and waits out its initial timeouts.
``lossy``
    the full range again, with a token bucket on the scanner's line (``--line-rate``,
    default 2mbit: about 3,400 SYNs of 74 bytes a second) that queues probes for up to 20 ms
    and then drops them. A veth is lossless: a policy with no retries looks perfect on
    ``full`` and can lose ports on the Internet; this is where it shows.

Per policy: median wall time over the repeats (runs of all policies alternate), the median
CPU seconds nmap used, and the worst run's accuracy: recall of open ports, open ports missed,
filtered ports reported closed ("could not test" read as "safe": the worst error), closed
ports reported filtered, and any other difference (ports or hosts missing).

    python3 bench/timing_policy.py [--repeat 3] [--sections full,sample,dark,lossy]
        [--line-rate 2mbit] [--only NAME ...] [--json results.json]

The whole sweep takes about two hours on a 2-core machine (nmap's default timing needs ~400 s
for each run over the 64 dark addresses; -T4 alone ~200-380 s over the /22); ``--sections
full --repeat 1`` takes about 20 minutes, ``--only`` a few policies minutes.

Needs root, ``ip``, ``nft``, ``tc`` and ``nmap``. Traffic stays inside the lab's namespaces.
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import statistics
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.perimeter.lab import (  # noqa: E402  (the repository root must be on sys.path first)
    REJECTED_NETWORK,
    NmapRun,
    PerimeterLab,
    compare,
    missing_prerequisites,
    sweep_stale_namespaces,
)

_T4 = ("-T4",)


@dataclass(frozen=True)
class Policy:
    """A named set of nmap timing flags; ``runs`` overrides ``--repeat`` (slow policies)."""

    name: str
    flags: tuple[str, ...]
    runs: int | None = None


def _rate(rate: int, *more: str) -> tuple[str, ...]:
    return (*_T4, "--min-rate", str(rate), *more)


#: The full-range candidates. nmap's -T4 means: initial RTT timeout 500 ms, max 1250 ms,
#: min 100 ms, max-retries 6 (nmap stops retrying a port sooner once it has seen how many
#: tries answers take), and congestion control that backs off when probes go unanswered.
FULL: tuple[Policy, ...] = (
    Policy("T4", _T4, runs=1),
    Policy("T4 rate1000", _rate(1000)),
    Policy("T4 rate2000", _rate(2000)),
    Policy("T4 rate5000", _rate(5000)),
    Policy("T4 rate10000", _rate(10000)),
    Policy("T4 rate20000", _rate(20000)),
    Policy("rate2000 retries1", _rate(2000, "--max-retries", "1")),
    Policy("rate2000 retries2", _rate(2000, "--max-retries", "2")),
    Policy("rate5000 retries0", _rate(5000, "--max-retries", "0")),
    Policy("rate5000 retries1", _rate(5000, "--max-retries", "1")),
    Policy("rate5000 retries2", _rate(5000, "--max-retries", "2")),
    Policy("rate10000 retries1", _rate(10000, "--max-retries", "1")),
    Policy("rate10000 retries2", _rate(10000, "--max-retries", "2")),
    Policy("rate20000 retries0", _rate(20000, "--max-retries", "0")),
    Policy("rate20000 retries1", _rate(20000, "--max-retries", "1")),
    Policy("rate20000 retries2", _rate(20000, "--max-retries", "2")),
    Policy("rate1000-5000", _rate(1000, "--max-rate", "5000")),
    Policy("rate1000-5000 retries2", _rate(1000, "--max-rate", "5000", "--max-retries", "2")),
    Policy("rate500-1000 retries2", _rate(500, "--max-rate", "1000", "--max-retries", "2")),
    Policy("T3 maxrate300 retries2", ("-T3", "--max-rate", "300", "--max-retries", "2"), runs=1),
    Policy(
        "rate5000 r1 rtt200/500",
        _rate(
            5000,
            "--max-retries",
            "1",
            "--initial-rtt-timeout",
            "200ms",
            "--max-rtt-timeout",
            "500ms",
        ),
    ),
    Policy(
        "rate5000 r1 rtt100/200",
        _rate(
            5000,
            "--max-retries",
            "1",
            "--initial-rtt-timeout",
            "100ms",
            "--max-rtt-timeout",
            "200ms",
        ),
    ),
    Policy(
        "rate10000 r1 rtt250/500",
        _rate(
            10000,
            "--max-retries",
            "1",
            "--initial-rtt-timeout",
            "250ms",
            "--max-rtt-timeout",
            "500ms",
        ),
    ),
    Policy("rate5000 r1 hostgroup256", _rate(5000, "--max-retries", "1", "--min-hostgroup", "256")),
    Policy(
        "rate5000 r1 hostgroup1024", _rate(5000, "--max-retries", "1", "--min-hostgroup", "1024")
    ),
    Policy("rate5000 r1 maxpar100", _rate(5000, "--max-retries", "1", "--max-parallelism", "100")),
    Policy(
        "rate5000 r1 minpar1000", _rate(5000, "--max-retries", "1", "--min-parallelism", "1000")
    ),
)

#: For the 64-address samples: nmap's default timing, -T4, and the contenders.
SAMPLED: tuple[Policy, ...] = (
    Policy("nmap default", ()),
    Policy("T4", _T4),
    Policy("T4 rate5000", _rate(5000)),
    Policy("rate5000 retries1", _rate(5000, "--max-retries", "1")),
    Policy("rate10000 retries1", _rate(10000, "--max-retries", "1")),
    Policy("rate2000 retries2", _rate(2000, "--max-retries", "2")),
    Policy("rate1000-5000 retries2", _rate(1000, "--max-rate", "5000", "--max-retries", "2")),
    Policy("rate500-1000 retries2", _rate(500, "--max-rate", "1000", "--max-retries", "2")),
    Policy("T3 maxrate300 retries2", ("-T3", "--max-rate", "300", "--max-retries", "2")),
)

#: Over a lossy line: does a policy lose what the lossless veth forgave?
LOSSY: tuple[Policy, ...] = (
    Policy("T4", _T4, runs=1),
    Policy("T4 rate1000", _rate(1000)),
    Policy("T4 rate2000", _rate(2000)),
    Policy("rate2000 retries0", _rate(2000, "--max-retries", "0")),
    Policy("rate2000 retries1", _rate(2000, "--max-retries", "1")),
    Policy("rate2000 retries2", _rate(2000, "--max-retries", "2")),
    Policy("T4 rate5000", _rate(5000)),
    Policy("rate5000 retries0", _rate(5000, "--max-retries", "0")),
    Policy("rate5000 retries1", _rate(5000, "--max-retries", "1")),
    Policy("rate5000 retries2", _rate(5000, "--max-retries", "2")),
    Policy("rate10000 retries1", _rate(10000, "--max-retries", "1")),
    Policy("rate10000 retries2", _rate(10000, "--max-retries", "2")),
    Policy("rate20000 retries1", _rate(20000, "--max-retries", "1")),
    Policy("rate1000-5000", _rate(1000, "--max-rate", "5000")),
    Policy("rate1000-5000 retries2", _rate(1000, "--max-rate", "5000", "--max-retries", "2")),
    Policy("rate500-1000 retries2", _rate(500, "--max-rate", "1000", "--max-retries", "2")),
)


@dataclass
class Score:
    """How one run compares with the ground truth."""

    open_expected: int
    open_found: int
    filtered_as_closed: int
    closed_as_filtered: int
    other: int

    @property
    def open_missed(self) -> int:
        return self.open_expected - self.open_found

    @property
    def recall(self) -> float:
        return self.open_found / self.open_expected if self.open_expected else 1.0

    @property
    def errors(self) -> int:
        return self.open_missed + self.filtered_as_closed + self.closed_as_filtered + self.other


@dataclass
class Result:
    section: str
    policy: str
    flags: str
    addresses: int
    probes: int
    seconds: list[float] = field(default_factory=list)
    cpu_seconds: list[float] = field(default_factory=list)
    scores: list[Score] = field(default_factory=list)

    def worst(self) -> Score:
        return max(self.scores, key=lambda s: (s.errors, s.open_missed))


def score(expected: dict[tuple[str, int], str], run: NmapRun) -> Score:
    differences = compare(expected, run.states)
    opens = sum(1 for state in expected.values() if state == "open")
    found = sum(1 for key, state in expected.items() if state == "open" == run.states.get(key))
    as_closed = sum(1 for exp, got in differences.values() if (exp, got) == ("filtered", "closed"))
    as_filtered = sum(
        1 for exp, got in differences.values() if (exp, got) == ("closed", "filtered")
    )
    other = len(differences) - (opens - found) - as_closed - as_filtered
    return Score(opens, found, as_closed, as_filtered, other)


def run_section(
    lab: PerimeterLab,
    section: str,
    policies: Sequence[Policy],
    targets: Sequence[str] | None,
    repeat: int,
) -> list[Result]:
    """Run every policy ``repeat`` times (or its own ``runs``), alternating, from ``eu``."""
    addresses = list(targets) if targets is not None else list(lab.addresses)
    expected = lab.expected("eu", addresses=addresses)
    results = [
        Result(section, p.name, " ".join(p.flags) or "(none)", len(addresses), len(expected))
        for p in policies
    ]
    rounds = max(p.runs or repeat for p in policies)
    for round_ in range(rounds):
        for policy, result in zip(policies, results, strict=True):
            if round_ >= (policy.runs or repeat):
                continue
            run = lab.nmap("eu", policy.flags, targets=targets, timeout=3600)
            result.seconds.append(run.seconds)
            result.cpu_seconds.append(run.cpu_seconds)
            result.scores.append(score(expected, run))
            s = result.scores[-1]
            print(
                f"  [{section}] {policy.name:28s} run {round_ + 1}: {run.seconds:7.2f} s, "
                f"open {s.open_found}/{s.open_expected}, errors {s.errors}",
                file=sys.stderr,
                flush=True,
            )
    return results


def table(results: Sequence[Result]) -> str:
    header = (
        "section", "policy", "nmap flags (after -sT -Pn -n)", "runs", "median s", "min-max s",
        "cpu s", "open recall", "open missed", "filt->closed", "closed->filt", "other",
    )  # fmt: skip
    rows = []
    for r in results:
        w = r.worst()
        rows.append(
            (
                r.section,
                r.policy,
                r.flags,
                str(len(r.seconds)),
                f"{statistics.median(r.seconds):.2f}",
                f"{min(r.seconds):.2f}-{max(r.seconds):.2f}",
                f"{statistics.median(r.cpu_seconds):.2f}",
                f"{w.recall:.3f} ({w.open_found}/{w.open_expected})",
                str(w.open_missed),
                str(w.filtered_as_closed),
                str(w.closed_as_filtered),
                str(w.other),
            )
        )
    widths = [max(len(x) for x in col) for col in zip(header, *rows, strict=True)]
    lines = ["| " + " | ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)) + " |"]
    lines.append("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for row in rows:
        lines.append("| " + " | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) + " |")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="runs per policy (default 3)")
    parser.add_argument("--sections", default="full,sample,dark,lossy")
    parser.add_argument("--line-rate", default="2mbit", help="the lossy section's line rate")
    parser.add_argument("--only", nargs="*", help="run only the policies with these names")
    parser.add_argument("--json", type=Path, help="also write every run's figures here")
    args = parser.parse_args()
    problems = missing_prerequisites()
    if problems:
        parser.exit(2, "cannot build the lab: " + "; ".join(problems) + "\n")
    sections = [s for s in args.sections.split(",") if s]

    def pick(policies: Sequence[Policy]) -> list[Policy]:
        return [p for p in policies if not args.only or p.name in args.only]

    sweep_stale_namespaces()
    results: list[Result] = []
    notes: list[str] = []
    began = time.monotonic()
    lab = PerimeterLab(("eu",))
    with lab:
        notes.append(f"lab up {lab.up_seconds:.2f} s")
        # Silent from eu: nothing allowed there and outside the range the firewall resets.
        rejected = ipaddress.ip_network(REJECTED_NETWORK)
        busy = {address for address, _ in lab.allowed("eu")}
        silent = [
            a for a in lab.addresses if a not in busy and ipaddress.ip_address(a) not in rejected
        ]
        dark = silent[:: len(silent) // 64][:64]
        samples = {"sample": list(lab.addresses[::16]), "dark": dark}
        if "full" in sections:
            results += run_section(lab, "full", pick(FULL), None, args.repeat)
        for name in ("sample", "dark"):
            if name in sections:
                results += run_section(lab, name, pick(SAMPLED), samples[name], args.repeat)
    notes.append(f"lab down {lab.down_seconds:.2f} s")
    if "lossy" in sections:
        lossy = PerimeterLab(("eu",), line_rate=args.line_rate)
        with lossy:
            results += run_section(lossy, f"lossy {args.line_rate}", pick(LOSSY), None, args.repeat)
        notes.append(f"lossy lab up {lossy.up_seconds:.2f} s, down {lossy.down_seconds:.2f} s")
    print(table(results))
    print()
    print(
        f"{'; '.join(notes)}; whole sweep {time.monotonic() - began:.0f} s. Times: median of the "
        "runs (policies alternate); accuracy: the worst run. sample = every 16th address of "
        "the /22 (64: 4 with services, 16 in the resetting /24); dark = 64 addresses that "
        "never answer. nmap's default timing and -T3 are run on the samples only, or once: on "
        "all 1,024 addresses they take minutes."
    )
    if args.json:
        args.json.write_text(
            json.dumps(
                [{**asdict(r), "scores": [asdict(s) for s in r.scores]} for r in results],
                indent=1,
            )
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
