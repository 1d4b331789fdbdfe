"""How a run is cut into blocks, with plain values (no cluster needed)."""

from __future__ import annotations

import pickle
from pathlib import Path

from exposure_audit.observations import NameResolution
from exposure_audit.ports import default_ports
from exposure_audit.report import SkippedAddress
from exposure_audit.run.audit import AuditSettings, ResolvedTargets
from exposure_audit.run.cluster import ClusterBlock, _split
from tests.cli.runner import run_cli

RESOLVED = ResolvedTargets(
    {
        "198.51.100.1": (),
        "2001:db8::1": ("nas.example.net",),
        "198.51.100.2": (),
        "198.51.100.3": ("nas.example.net", "www.example.net"),
        "2001:db8::2": (),
    },
    names=(
        NameResolution("nas.example.net", ipv4=("198.51.100.3",), ipv6=("2001:db8::1",)),
        NameResolution("www.example.net", ipv4=("198.51.100.3",)),
        NameResolution("gone.example.net", errors=("NXDOMAIN",)),
    ),
    skipped=(SkippedAddress("10.0.0.1", "lan.example.net", "not a public address"),),
)


def test_blocks_hold_one_address_family_each_in_plan_order() -> None:
    blocks = _split(RESOLVED, 2, frozenset({"198.51.100.3"}))
    assert [b.addresses for b in blocks] == [
        ["198.51.100.1", "198.51.100.2"],
        ["198.51.100.3"],
        ["2001:db8::1", "2001:db8::2"],
    ]
    assert [b.index for b in blocks] == [0, 1, 2]
    assert [b.inventory_scope for b in blocks] == [frozenset(), {"198.51.100.3"}, frozenset()]
    assert blocks[1].describe(3) == "block 2/3 (1 host, 198.51.100.3)"
    assert blocks[2].describe(3) == "block 3/3 (2 hosts, 2001:db8::1-2001:db8::2)"


def test_a_block_carries_its_hosts_names_and_only_the_resolutions_behind_them() -> None:
    (block,) = [b for b in _split(RESOLVED, 2, frozenset()) if "198.51.100.3" in b.addresses]
    assert block.targets.hosts == {"198.51.100.3": ("nas.example.net", "www.example.net")}
    assert [n.name for n in block.targets.names] == ["nas.example.net", "www.example.net"]
    assert block.targets.skipped == ()  # the run's, reported once by the client


def test_what_a_worker_is_sent_survives_pickling() -> None:
    block = _split(RESOLVED, 64, frozenset())[0]
    settings = AuditSettings(ports=default_ports())
    assert pickle.loads(pickle.dumps((block, settings))) == (block, settings)  # noqa: S301 - our own bytes
    assert isinstance(block, ClusterBlock)


def test_a_configs_cluster_table_is_used_unless_local_and_its_errors_name_the_file(
    tmp_path: Path,
) -> None:
    config = tmp_path / "audit.toml"
    config.write_text(
        'targets = ["198.51.100.7"]\nallow_private = true\n'
        '[cluster]\nscheduler = "tcp://127.0.0.1:8786"\nvantages = ["eu", "us"]\nblock_size = 8\n'
    )
    shown = run_cli("scan", "-c", str(config), "--dry-run")
    assert shown.returncode == 0, shown.stderr
    assert "cluster: tcp://127.0.0.1:8786, blocks of 8 addresses, vantages eu, us" in shown.stdout
    flags = run_cli("scan", "-c", str(config), "--vantages", "ap", "--dry-run")
    assert "vantages ap" in flags.stdout  # a flag over the file
    local = run_cli("scan", "-c", str(config), "--local", "--dry-run")
    assert local.returncode == 0 and "cluster:" not in local.stdout
    config.write_text(config.read_text().replace('"eu", "us"', '"eu", "eu"'))
    bad = run_cli("scan", "-c", str(config), "--dry-run")
    assert bad.returncode == 2
    assert f"{config}: [cluster] --vantages 'eu,eu': a vantage is named twice" in bad.stderr
