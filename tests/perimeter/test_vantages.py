"""Vantages on a real cluster across network namespaces: the filtered-perimeter lab with two
scanner namespaces (``eu``, ``us``) and the control namespace ``ctl``.

The Dask scheduler and the client (``exposure-audit scan --cluster ... --vantages eu,us``) run
in ``ctl``, which cannot reach the perimeter; one worker runs in each scanner namespace with
the resource ``vantage-<name>``, bound to its link to ``ctl``, and scans the perimeter through
the lab's firewall. The firewall lets some services in from one vantage only, so the merged
report must raise VAN001 for exactly the (address, port) pairs the lab's ground truth says are
open from one vantage and not from the other, and for nothing else (a forward that is closed
from one side and filtered from the other is not reachable from either: no VAN001).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from .lab import PerimeterLab, missing_prerequisites, sweep_stale_namespaces

pytestmark = [pytest.mark.netns, pytest.mark.timeout(180)]

VANTAGES = ("eu", "us")
_START_TIMEOUT = 30.0


class _Cluster:
    """A scheduler in ``ctl`` and one worker per scanner namespace, started through the lab
    (which ends them, and everything else in its namespaces, when it stops)."""

    def __init__(self, lab: PerimeterLab, directory: Path) -> None:
        self.lab = lab
        self.directory = directory
        assert lab.ctl is not None
        env = dict(os.environ)
        root = str(Path(__file__).resolve().parents[2])
        env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
        self.env = env
        self.processes: dict[str, subprocess.Popen[bytes]] = {}
        path = directory / "scheduler.json"
        self._start(
            "scheduler",
            lab.ctl,
            [
                "distributed.cli.dask_scheduler",
                "--host",
                lab.control_address,
                "--port",
                "0",
                "--no-dashboard",
                "--scheduler-file",
                str(path),
            ],
        )
        self.address = self._wait(lambda: json.loads(path.read_text())["address"], "scheduler")
        for vantage in VANTAGES:
            self._start(
                vantage,
                lab.scanner(vantage),
                [
                    "distributed.cli.dask_worker",
                    self.address,
                    "--host",
                    lab.scanner_control_address(vantage),
                    "--nthreads",
                    "1",
                    "--no-nanny",
                    "--no-dashboard",
                    "--name",
                    vantage,
                    "--resources",
                    f"vantage-{vantage}=1",
                    "--death-timeout",
                    "20",
                ],
            )
        for vantage in VANTAGES:
            self._wait(lambda v=vantage: v if "Registered to:" in self.log(v) else None, vantage)

    def _start(self, name: str, namespace: str, module_argv: list[str]) -> None:
        with (self.directory / f"{name}.log").open("wb") as log:
            self.processes[name] = self.lab.popen(
                namespace,
                [sys.executable, "-m", *module_argv],
                stdout=log,
                stderr=subprocess.STDOUT,
                env=self.env,
            )

    def kill(self) -> None:
        """SIGKILL the workers, then the scheduler: nothing of theirs needs a clean stop, and
        a worker's polite goodbye to its scheduler takes seconds."""
        for process in [
            *(self.processes[v] for v in VANTAGES if v in self.processes),
            self.processes["scheduler"],
        ]:
            if process.poll() is None:
                process.kill()
            process.wait(5)

    def log(self, name: str) -> str:
        return (self.directory / f"{name}.log").read_text(errors="replace")

    def _wait(self, probe: Callable[[], str | None], name: str) -> str:
        deadline = time.monotonic() + _START_TIMEOUT
        while time.monotonic() < deadline:
            if self.processes[name].poll() is not None:
                raise AssertionError(f"{name} exited:\n{self.log(name)[-3000:]}")
            try:
                found = probe()
            except (OSError, ValueError, KeyError):
                found = None
            if found:
                return str(found)
            time.sleep(0.05)
        raise AssertionError(f"{name} did not start:\n{self.log(name)[-3000:]}")


@pytest.fixture(scope="module")
def perimeter(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[PerimeterLab, _Cluster]]:
    problems = missing_prerequisites()
    if problems:
        pytest.fail("the perimeter lab cannot run: " + "; ".join(problems), pytrace=False)
    sweep_stale_namespaces()
    with PerimeterLab(VANTAGES, control=True) as lab:
        cluster = _Cluster(lab, tmp_path_factory.mktemp("perimeter-dask"))
        try:
            yield lab, cluster
        finally:
            cluster.kill()


def test_van001_fires_for_exactly_what_one_vantage_reaches_and_the_other_does_not(
    perimeter: tuple[PerimeterLab, _Cluster], tmp_path: Path
) -> None:
    lab, cluster = perimeter
    assert lab.ctl is not None
    differences = lab.vantage_differences()
    # One vantage sees it open, the other not: what VAN001 is about.
    expected = {key for key, states in differences.items() if "open" in states.values()}
    assert expected, "the lab has no service reachable from one vantage only"
    # The lab's servers and every address the firewall treats apart from the rest.
    targets = sorted(
        {h.address for h in lab.hosts} | {a for a, _ in differences},
        key=lambda a: tuple(int(x) for x in a.split(".")),
    )
    out = tmp_path / "report.json"
    # When the client in ctl runs the scan on the cluster from both vantages
    result = lab.run(
        lab.ctl,
        [
            sys.executable,
            "-m",
            "exposure_audit",
            "scan",
            *targets,
            "--allow-private",
            "--cluster",
            cluster.address,
            "--vantages",
            ",".join(VANTAGES),
            "--no-history",
            "--format",
            "json",
            "-o",
            str(out),
        ],
        env=cluster.env,
        timeout=150,
    )
    assert result.returncode in (0, 1), result.stderr
    doc = json.loads(out.read_text())
    # Then the merged report holds every target once, seen from both vantages
    assert doc["vantages"] == list(VANTAGES)
    assert [h["address"] for h in doc["hosts"]] == targets
    assert doc["complete"] is True, doc["errors"]
    # And VAN001 fires for exactly the pairs open from one vantage and not the other.
    fired = {
        (f["address"], f["port"])
        for h in doc["hosts"]
        for f in h["findings"]
        if f["rule"] == "VAN001"
    }
    assert fired == expected
    for host in doc["hosts"]:
        for service in host["services"]:
            key = (host["address"], service["port"])
            if service["protocol"] != "tcp" or key not in differences:
                continue
            seen_open = {v for v, state in differences[key].items() if state == "open"}
            assert set(service["reachable_from"]) == seen_open, (key, service)
