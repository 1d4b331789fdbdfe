"""How fast discovery goes: nmap's pace, retries and timeouts as one named policy.

On a real perimeter most ports never answer, so the wall time of a scan is spent waiting for
probes that will not be answered, not on CPU. The presets below were chosen by measurement on
the filtered-perimeter lab (tests/perimeter, ``bench/timing_policy.py``; figures in
docs/performance.md): the fastest settings that still found every open port and labelled every
dropped port "filtered", never "closed", with a retry kept for the packet loss a lab's veth does
not have.

Pure: a policy is a value; :meth:`DiscoveryPolicy.nmap_flags` is what reaches nmap's command
line (numbers only, formatted here, never text from the user).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

__all__ = [
    "DEFAULT_PRESET",
    "MAX_RATE",
    "PRESETS",
    "DiscoveryPolicy",
    "discovery_policy",
]

# nmap itself accepts far more, but a connect scan cannot go faster than the kernel's
# connect() (about 75,000/s on one core here), and a figure beyond that is a typo.
MAX_RATE = 100_000
_MAX_RETRIES = 10


@dataclass(frozen=True)
class DiscoveryPolicy:
    """nmap's discovery pacing. ``timing`` is ``-T<n>``; ``min_rate``/``max_rate`` are probes
    per second (None: nmap's own congestion control decides); ``max_retries`` is how often an
    unanswered probe is sent again (a filtered port costs one timeout per try);
    ``max_rtt_timeout_ms`` caps how long nmap waits for one answer."""

    name: str = "default"
    timing: int = 4
    min_rate: int | None = None
    max_rate: int | None = None
    max_retries: int = 1
    max_rtt_timeout_ms: int | None = None

    def __post_init__(self) -> None:
        if not 0 <= self.timing <= 5:
            raise ValueError(f"timing must be 0-5, not {self.timing}")
        for rate in (self.min_rate, self.max_rate):
            if rate is not None and not 1 <= rate <= MAX_RATE:
                raise ValueError(f"a rate must be 1-{MAX_RATE} probes per second, not {rate}")
        if self.min_rate and self.max_rate and self.min_rate > self.max_rate:
            raise ValueError("the minimum rate is above the maximum rate")
        if not 0 <= self.max_retries <= _MAX_RETRIES:
            raise ValueError(f"retries must be 0-{_MAX_RETRIES}, not {self.max_retries}")
        if self.max_rtt_timeout_ms is not None and not 10 <= self.max_rtt_timeout_ms <= 60_000:
            raise ValueError("the round-trip timeout must be 10-60000 ms")

    def nmap_flags(self) -> list[str]:
        """The discovery options for nmap's command line, e.g. ``-T4 --max-retries 1``."""
        flags = [f"-T{self.timing}", "--max-retries", str(self.max_retries)]
        if self.min_rate is not None:
            flags += ["--min-rate", str(self.min_rate)]
        if self.max_rate is not None:
            flags += ["--max-rate", str(self.max_rate)]
        if self.max_rtt_timeout_ms is not None:
            flags += ["--max-rtt-timeout", f"{self.max_rtt_timeout_ms}ms"]
        return flags

    def shared(self, runs: int) -> DiscoveryPolicy:
        """This policy for one of ``runs`` nmap processes going at once: each gets its share
        of the rates (rounded up, at least 1 probe per second), so the total stays the same."""
        if runs <= 1:
            return self

        def share(rate: int | None) -> int | None:
            return None if rate is None else max(1, -(-rate // runs))

        return dataclasses.replace(
            self, min_rate=share(self.min_rate), max_rate=share(self.max_rate)
        )

    def describe(self) -> str:
        """One line for --dry-run and the docs: the preset's name and its nmap options."""
        return f"{self.name}: " + " ".join(self.nmap_flags())


PRESETS: dict[str, DiscoveryPolicy] = {
    # About 800 probes/s (~0.5 Mbit/s of SYNs): exact on a 2 Mbit/s policed line. A floor, not
    # just a ceiling: without one nmap backs off on every unanswered probe and crawls (-T3 with
    # --max-rate 300 took 398 s for 64 silent addresses).
    "polite": DiscoveryPolicy("polite", timing=4, min_rate=500, max_rate=1000, max_retries=2),
    # The measured default: exact on the lab, 1,024 addresses x 31 ports in ~14 s. Retries cost
    # nothing on a clean path (nmap stops resending once resends go unanswered).
    "default": DiscoveryPolicy("default", timing=4, min_rate=5000, max_retries=2),
    # For a vantage whose path carries well over 10,000 SYNs/s; nmap's own ceiling here is
    # ~8-9k/s. On a congested line a floor this high loses open ports: retries do not help.
    "fast": DiscoveryPolicy("fast", timing=4, min_rate=10000, max_retries=2),
}
DEFAULT_PRESET = "default"


def discovery_policy(
    preset: str | None = None, *, rate: int | None = None, retries: int | None = None
) -> DiscoveryPolicy:
    """The preset named (``default`` when None) with ``--rate`` and ``--retries`` over it.

    ``rate`` fixes the pace: nmap is held at that many probes per second (minimum and maximum).
    Raises ValueError naming the bad value (an unknown preset lists the known ones).
    """
    name = preset or DEFAULT_PRESET
    if name not in PRESETS:
        raise ValueError(f"unknown timing preset {name!r}; choose one of {', '.join(PRESETS)}")
    policy = PRESETS[name]
    if rate is not None:
        policy = dataclasses.replace(
            policy, name=f"{name}, rate {rate}/s", min_rate=rate, max_rate=rate
        )
    if retries is not None:
        policy = dataclasses.replace(
            policy, name=f"{policy.name}, retries {retries}", max_retries=retries
        )
    return policy
