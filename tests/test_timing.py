"""Discovery timing: presets, --rate/--retries over them, what reaches nmap, and bad values."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from exposure_audit.cli.config import ConfigError, parse_config
from exposure_audit.nmap.scanner import NmapScanner
from exposure_audit.ports import parse_ports
from exposure_audit.timing import PRESETS, DiscoveryPolicy, discovery_policy
from tests.cli.runner import run_cli
from tests.hostile.test_fuzz import EMPTY_RUN, check_argv, run_with_fake_nmap


def test_the_default_is_the_default_preset() -> None:
    assert discovery_policy() == PRESETS["default"]
    assert NmapScanner().policy == PRESETS["default"]


def test_every_preset_keeps_a_retry_and_polite_is_slower_than_fast() -> None:
    # A lab's veth loses nothing; the Internet does: no preset gives up on a probe at once.
    assert all(p.max_retries >= 1 for p in PRESETS.values())
    polite, fast = PRESETS["polite"], PRESETS["fast"]
    assert polite.max_rate is not None and fast.min_rate is not None
    assert polite.max_rate < fast.min_rate


def test_rate_fixes_the_pace_and_retries_override_the_preset() -> None:
    policy = discovery_policy("polite", rate=700, retries=3)
    flags = policy.nmap_flags()
    assert flags[flags.index("--min-rate") + 1] == "700"  # the rate replaces the floor too
    assert flags[flags.index("--max-rate") + 1] == "700"
    assert flags[flags.index("--max-retries") + 1] == "3"
    assert "-T4" in flags
    assert policy.describe().startswith("polite, rate 700/s, retries 3: ")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"preset": "ludicrous"}, "unknown timing preset 'ludicrous'; choose one of polite"),
        ({"rate": 0}, "a rate must be 1-100000"),
        ({"rate": 10**9}, "a rate must be 1-100000"),
        ({"retries": -1}, "retries must be 0-10"),
        ({"retries": 99}, "retries must be 0-10"),
    ],
)
def test_bad_values_are_refused_with_the_reason(kwargs: dict[str, Any], message: str) -> None:
    preset = kwargs.pop("preset", None)
    with pytest.raises(ValueError, match=message):
        discovery_policy(preset, **kwargs)


def test_a_minimum_above_the_maximum_is_refused() -> None:
    with pytest.raises(ValueError, match="minimum rate is above the maximum"):
        DiscoveryPolicy(min_rate=5000, max_rate=100)


def test_the_policy_reaches_nmap_as_digits_only_flags() -> None:
    policy = discovery_policy("fast", rate=1234, retries=2)

    async def scan(scanner: NmapScanner) -> None:
        scanner.policy = policy
        await scanner.discover(["192.0.2.7"], parse_ports("22,5000"), udp=False, host_timeout=9)

    seen, _ = run_with_fake_nmap(EMPTY_RUN, scan)
    (argv,) = seen
    check_argv(argv)
    options = argv[: argv.index("--")]
    for flag, value in [("--min-rate", "1234"), ("--max-rate", "1234"), ("--max-retries", "2")]:
        assert options[options.index(flag) + 1] == value


def test_the_real_nmap_accepts_every_preset_and_finds_an_open_port() -> None:
    # A listener on loopback: each preset's flags are valid for the nmap installed here and
    # still report the open port open and a closed one closed.
    async def probe() -> list[dict[str, str]]:
        server = await asyncio.start_server(lambda r, w: w.close(), "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        closed = port + 1 if port < 65535 else port - 1
        try:
            results = []
            for policy in PRESETS.values():
                found = await NmapScanner(policy=policy).discover(
                    ["127.0.0.1"], parse_ports(f"{port},{closed}"), udp=False, host_timeout=20
                )
                services = found["127.0.0.1"].services
                results.append({str(s.port): s.state for s in services})
            return results
        finally:
            server.close()
            await server.wait_closed()

    for states in asyncio.run(probe()):
        assert sorted(states.values()) == ["closed", "open"], states


def test_config_keys_and_flags_set_the_policy() -> None:
    config = parse_config('timing = "polite"\nrate = 250\nretries = 2\n', "audit.toml")
    assert (config.timing, config.rate, config.retries) == ("polite", 250, 2)
    with pytest.raises(ConfigError, match=r"audit\.toml:1: timing: .*choose one of polite"):
        parse_config('timing = "warp"\n', "audit.toml")
    with pytest.raises(ConfigError, match=r"audit\.toml:1: rate"):
        parse_config("rate = 0\n", "audit.toml")


def test_dry_run_shows_the_discovery_policy_and_bad_flags_exit_2() -> None:
    shown = run_cli(
        "scan",
        "198.51.100.7",
        "--allow-private",
        "--timing",
        "polite",
        "--retries",
        "3",
        "--dry-run",
    )
    assert shown.returncode == 0, shown.stderr
    assert (
        "discovery: polite, retries 3: -T4 --max-retries 3 --min-rate 500 --max-rate 1000"
        in shown.stdout
    )
    bad = run_cli("scan", "198.51.100.7", "--allow-private", "--rate", "0", "--dry-run")
    assert bad.returncode == 2
    assert "a rate must be 1-100000 probes per second, not 0" in bad.stderr


def test_nmap_runs_going_at_once_share_the_rate() -> None:
    policy = discovery_policy(rate=1000)
    assert policy.shared(1) is policy
    quarter = policy.shared(4)
    assert (quarter.min_rate, quarter.max_rate, quarter.max_retries) == (250, 250, 2)
    assert discovery_policy(rate=3).shared(4).min_rate == 1  # never 0: nmap would refuse it
    assert discovery_policy("polite").shared(4).max_rate == 250
    assert PRESETS["polite"].shared(4).min_rate == 125


def test_an_audit_of_several_batches_gives_each_nmap_its_share_of_the_rate() -> None:
    # Given 600 addresses in batches of 128 (5 batches, 4 at once) and a total rate of 2000/s
    from exposure_audit.probes.dns import make_resolver
    from exposure_audit.run.audit import Auditor, AuditSettings
    from exposure_audit.targets import parse_item, plan_targets

    plan = plan_targets(
        [
            parse_item("192.0.2.0/24", "t"),
            parse_item("198.51.100.0/24", "t"),
            parse_item("203.0.113.0/25", "t"),
        ],
        allow_private=True,
    )
    settings = AuditSettings(
        ports=parse_ports("22"),
        discovery=discovery_policy(rate=2000),
        upnp=False,
        version_detection=False,
    )

    async def audit(scanner: NmapScanner) -> None:
        scanner.policy = settings.discovery
        await Auditor(plan, settings, scanner=scanner, resolver=make_resolver(None)).run()

    # When the audit runs (nmap recorded, not run: nothing is sent)
    seen, _ = run_with_fake_nmap(EMPTY_RUN, audit)
    # Then every nmap run was held at a quarter of the total
    assert len(seen) == 5
    for argv in seen:
        assert argv[argv.index("--max-rate") + 1] == "500", argv
