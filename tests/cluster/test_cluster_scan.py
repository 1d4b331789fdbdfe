"""``exposure-audit scan --cluster``: the real CLI against a real Dask scheduler and workers on
loopback, each worker with its real nmap, auditing the loopback lab of ``conftest``.

A run spread over the cluster finds what a run on one machine finds (same hosts, same order,
same finding ids and severities); a worker killed in the middle of its block costs the block
a second run elsewhere and nothing else; progress counts blocks; a vantage no worker offers
is refused at once; two vantages that see the same merge into one report without VAN001; an
interrupted cluster run keeps the hosts of the blocks already in.
"""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from exposure_audit.errors import RunError
from exposure_audit.history.store import HistoryStore
from exposure_audit.lab import Lab
from exposure_audit.ports import parse_ports
from exposure_audit.probes.dns import make_resolver
from exposure_audit.report import Report
from exposure_audit.run.audit import AuditSettings
from exposure_audit.run.cluster import ClusterAudit, ClusterOptions, check_cluster
from exposure_audit.targets import parse_item, plan_targets

from .conftest import NAME, NAMED, PLAN_ORDER, SLOW, TARGETS, MakeCluster
from .daskcluster import ROOT, DaskCluster

pytestmark = pytest.mark.timeout(120)

Doc = dict[str, Any]


class Scan:
    """The CLI in a subprocess: the report goes to ``out``, stderr is read line by line."""

    def __init__(self, lab: Lab, out: Path, *extra: str, targets: tuple[str, ...] = TARGETS):
        self.out = out
        argv = [
            sys.executable,
            "-m",
            "exposure_audit",
            "scan",
            *targets,
            "--allow-private",
            "--resolver",
            lab.resolver,
            "--host-timeout",
            "5",
            "--ssdp-wait",
            "0.5",
            "--format",
            "json",
            "-o",
            str(out),
            *extra,
        ]
        if "--history" not in extra:
            argv.append("--no-history")
        self.process = subprocess.Popen(
            argv, cwd=ROOT, stdin=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
        )
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            self.lines.append(line.rstrip("\n"))

    def wait_for_line(self, text: str, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while not any(text in line for line in self.lines):
            if time.monotonic() > deadline or self.process.poll() is not None:
                raise AssertionError(f"no line with {text!r} in:\n" + "\n".join(self.lines))
            time.sleep(0.02)

    def finish(self, timeout: float = 60.0) -> tuple[int, Doc]:
        try:
            code = self.process.wait(timeout)
        finally:
            if self.process.poll() is None:
                self.process.kill()
        self._reader.join(5)
        doc: Doc = json.loads(self.out.read_text()) if self.out.exists() else {}
        return code, doc

    @property
    def stderr(self) -> str:
        return "\n".join(self.lines)


def findings(doc: Doc) -> dict[str, list[tuple[str, str]]]:
    """Address -> sorted (finding id, severity), in report order."""
    return {
        h["address"]: sorted((f["id"], f["severity"]) for f in h["findings"]) for h in doc["hosts"]
    }


@pytest.fixture(scope="session")
def runs(lab: Lab, cluster: DaskCluster, tmp_path_factory: pytest.TempPathFactory) -> Any:
    """The same scan on this machine and on the cluster (blocks of 3: three blocks), at once."""
    tmp = tmp_path_factory.mktemp("runs")
    single = Scan(lab, tmp / "single.json")
    spread = Scan(
        lab, tmp / "cluster.json", "--cluster", cluster.address, "--block-size", "3", "--progress"
    )
    return single.finish(), spread.finish(), spread


def test_a_cluster_run_finds_what_one_machine_finds(runs: Any) -> None:
    (single_code, single), (cluster_code, spread), scan = runs
    # Given the same scan with and without --cluster (findings at high and above: exit 1)
    assert single_code == 1, single
    assert cluster_code == 1, scan.stderr
    # Then the hosts come in plan order, once each, with the same findings.
    assert [h["address"] for h in spread["hosts"]] == list(PLAN_ORDER)
    assert findings(spread) == findings(single)
    dsm_over_http = {a for a, found in findings(spread).items() if ("DSM001" in str(found))}
    assert dsm_over_http == {"127.93.1.4", NAMED}  # the DSM hosts of the lab on 5000
    assert spread["complete"] is True and spread["errors"] == []
    # The name was resolved once, by the client, and its host audited under it (Host/SNI).
    named = next(h for h in spread["hosts"] if h["address"] == NAMED)
    assert named["hostnames"] == [NAME]
    assert [n["name"] for n in spread["names"]] == [NAME]
    # The slow host is incomplete in both: "could not test" stays what it is.
    slow = {h["address"]: h["status"] for h in [*single["hosts"], *spread["hosts"]]}
    assert slow[SLOW] == "incomplete"


def test_progress_counts_blocks_done_across_the_cluster(runs: Any) -> None:
    *_, scan = runs
    lines = [line for line in scan.lines if "blocks " in line]
    assert lines[0].endswith("blocks 0/3 done on 2 workers"), scan.stderr
    assert any(line.endswith("blocks 1/3 done on 2 workers") for line in lines), scan.stderr
    assert lines[-1] == f"[{len(PLAN_ORDER)}/{len(PLAN_ORDER)} hosts] blocks 3/3 done on 2 workers"
    # Hosts advance by whole blocks: 3 at a time.
    done = [line.split("/")[0] for line in scan.lines if "hosts done: " in line]
    assert done == ["[3", "[6", "[9"]


def test_a_worker_killed_mid_block_costs_a_rerun_and_nothing_else(
    lab: Lab, runs: Any, make_cluster: MakeCluster, tmp_path: Path
) -> None:
    (_, single), *_ = runs
    with make_cluster({"w1": {}, "w2": {}}) as cluster:
        # Given a run of two blocks, the first slow (the silent host: about 5 s)
        scan = Scan(
            lab,
            tmp_path / "report.json",
            "--cluster",
            cluster.address,
            "--block-size",
            "5",
            "--progress",
        )
        # When the worker running the slow block is killed a second into it
        victim = _worker_running(cluster, "-block-000000", scan)
        time.sleep(1.0)
        cluster.kill_worker(victim)
        code, doc = scan.finish()
    # Then the block ran again on the other worker: every host once, the same findings.
    assert code == 1, scan.stderr
    assert [h["address"] for h in doc["hosts"]] == list(PLAN_ORDER)
    assert findings(doc) == findings(single)
    assert doc["complete"] is True and doc["errors"] == []
    progress = [line for line in scan.lines if line.startswith("[")]
    assert progress[-1].endswith("blocks 2/2 done on 1 worker"), scan.stderr


def _worker_running(cluster: DaskCluster, suffix: str, scan: Scan | None) -> str:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        for worker, keys in cluster.processing().items():
            if any(k.endswith(suffix) for k in keys):
                return worker
        assert scan is None or scan.process.poll() is None, scan.stderr
        time.sleep(0.05)
    raise AssertionError(f"no worker took the block {suffix}:\n{scan.stderr if scan else ''}")


def test_a_block_that_fails_for_good_makes_its_hosts_incomplete_not_a_crash(
    lab: Lab, make_cluster: MakeCluster, tmp_path: Path
) -> None:
    # Given a worker whose PATH has no nmap (every block raises there, and again on retry)
    empty = tmp_path / "bin"
    empty.mkdir()
    with make_cluster({"nonmap": {}}, env={"PATH": str(empty)}) as cluster:
        scan = Scan(
            lab,
            tmp_path / "report.json",
            "--cluster",
            cluster.address,
            "--block-size",
            "1",
            targets=("127.93.1.4", "127.93.1.2"),
        )
        code, doc = scan.finish()
    # Then the run ends (exit 3) with both hosts reported incomplete, saying why.
    assert code == 3, scan.stderr
    assert [h["address"] for h in doc["hosts"]] == ["127.93.1.4", "127.93.1.2"]
    for host in doc["hosts"]:
        assert host["status"] == "incomplete" and host["grade"] != "A"
        assert "its block failed on the cluster" in host["errors"][0]
        assert "nmap not found" in host["errors"][0]
    assert len(doc["errors"]) == 2 and doc["complete"] is False
    assert "run error: block 1/2 (1 host, 127.93.1.4) could not be audited: ScannerUnavailable" in (
        scan.stderr
    )


def test_blocks_no_worker_can_take_fail_after_the_orphan_timeout(
    lab: Lab, make_cluster: MakeCluster
) -> None:
    with make_cluster({"only": {}}) as cluster:
        # Given a run (in this process) whose only worker is lost in its slow block
        plan = plan_targets([parse_item(SLOW, "test")], allow_private=True)
        audit = ClusterAudit(
            plan,
            AuditSettings(ports=parse_ports("6690"), host_timeout=5.0, ssdp_wait=0.5),
            ClusterOptions(cluster.address, orphan_timeout=1.0),
            resolver=make_resolver(lab.resolver),
        )
        result: list[Report] = []
        runner = threading.Thread(target=lambda: result.append(asyncio.run(audit.run())))
        runner.start()
        try:
            cluster.kill_worker(_worker_running(cluster, "-block-000000", None))
        finally:
            runner.join(30)
    # Then the block fails about a second later instead of waiting forever.
    (report,) = result
    (host,) = report.hosts
    assert host.observation.status.value == "incomplete"
    assert "no worker at all for 1 s" in host.observation.errors[0]
    assert report.errors and not report.complete


def test_a_vantage_no_worker_offers_is_refused_at_once(
    lab: Lab, cluster: DaskCluster, tmp_path: Path
) -> None:
    started = time.monotonic()
    scan = Scan(lab, tmp_path / "report.json", "--cluster", cluster.address, "--vantages", "eu,ap")
    code, doc = scan.finish()
    assert code == 3, scan.stderr
    assert time.monotonic() - started < 10
    assert "vantage-ap" in scan.stderr and "nothing was scanned" in scan.stderr
    assert "dask worker" in scan.stderr  # says how to start one
    assert doc == {}  # no report: the run never started


def test_a_scheduler_that_does_not_answer_is_a_bounded_clear_error() -> None:
    import socket

    with socket.socket() as sock:  # a loopback port nobody listens on (bound, no listen())
        sock.bind(("127.93.0.1", 0))
        port = sock.getsockname()[1]
        started = time.monotonic()
        with pytest.raises(RunError, match="did not answer within 1 s"):
            check_cluster(ClusterOptions(f"tcp://127.93.0.1:{port}", connect_timeout=1.0))
    assert time.monotonic() - started < 5


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (("--vantages", "eu"), "--vantages needs --cluster"),
        (("--block-size", "8"), "--block-size needs --cluster"),
        (("--cluster", "http://127.0.0.1:8786"), "tcp://HOST:PORT or tls://HOST:PORT"),
        (("--cluster", "tcp://127.0.0.1"), "tcp://HOST:PORT or tls://HOST:PORT"),
        (("--cluster", "tcp://127.0.0.1:1", "--vantages", "EU"), "not a vantage name"),
        (("--cluster", "tcp://127.0.0.1:1", "--vantages", "eu,eu"), "named twice"),
        (("--cluster", "tcp://127.0.0.1:1", "--block-size", "0"), "--block-size must be"),
    ],
)
def test_bad_cluster_flags_are_usage_errors(flags: tuple[str, ...], message: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "exposure_audit", "scan", "127.93.1.1", "--allow-private", *flags],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 2, result.stderr
    assert message in result.stderr


def test_without_distributed_cluster_is_a_usage_error_naming_the_extra(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from exposure_audit.cli.main import main

    monkeypatch.setitem(sys.modules, "distributed", None)  # import distributed -> ImportError
    code = main(["scan", "127.93.1.1", "--allow-private", "--cluster", "tcp://127.0.0.1:1"])
    assert code == 2
    assert "pip install 'exposure-audit[cluster]'" in capsys.readouterr().err


def test_two_vantages_that_see_the_same_merge_without_van001(
    lab: Lab, cluster: DaskCluster, runs: Any, tmp_path: Path
) -> None:
    (_, single), *_ = runs
    targets = TARGETS[1:]  # not the slow host: an incomplete host is "untested" anyway
    scan = Scan(
        lab,
        tmp_path / "report.json",
        "--cluster",
        cluster.address,
        "--vantages",
        "eu,us",
        "--block-size",
        "4",
        targets=targets,
    )
    code, doc = scan.finish()
    assert code == 1, scan.stderr
    assert doc["vantages"] == ["eu", "us"]
    assert [h["address"] for h in doc["hosts"]] == list(PLAN_ORDER[1:])
    for host in doc["hosts"]:
        assert host["vantages"] == ["eu", "us"]
        for service in host["services"]:
            if service["state"] == "open":
                assert service["reachable_from"] == ["eu", "us"], service
    assert not [f for h in doc["hosts"] for f in h["findings"] if f["rule"] == "VAN001"]
    expected = {a: f for a, f in findings(single).items() if a != SLOW}
    assert findings(doc) == expected
    assert doc["complete"] is True and doc["errors"] == []


def test_an_interrupted_cluster_run_keeps_the_blocks_already_in(
    lab: Lab, cluster: DaskCluster, runs: Any, tmp_path: Path
) -> None:
    (_, single), *_ = runs
    history = tmp_path / "history.db"
    # Given a run of two blocks whose first is slow (the silent host)
    scan = Scan(
        lab,
        tmp_path / "report.json",
        "--cluster",
        cluster.address,
        "--block-size",
        "5",
        "--progress",
        "--history",
        str(history),
    )
    # When SIGINT comes once the fast block is in
    scan.wait_for_line("blocks 1/2 done")
    scan.process.send_signal(signal.SIGINT)
    code, doc = scan.finish()
    # Then the report and the history hold the fast block's hosts, the run marked interrupted.
    assert code == 3, scan.stderr
    assert "interrupted by SIGINT" in scan.stderr
    fast = list(PLAN_ORDER[5:])
    assert [h["address"] for h in doc["hosts"]] == fast
    assert findings(doc) == {a: f for a, f in findings(single).items() if a in fast}
    assert doc["complete"] is False
    with HistoryStore(history) as store:
        (run,) = store.runs()
    assert "interrupted" in run.state and run.host_count == len(fast)
