"""A real Dask cluster on loopback for the tests: ``dask scheduler`` and ``dask worker``
processes, each in its own process group (killed whole, nmap children included).

Everything binds 127.0.0.1 with the dashboards off; the scheduler's address comes from its
``--scheduler-file``. The processes get the repository on ``PYTHONPATH``: the scheduler
unpickles the task graph (it must import ``exposure_audit.run.cluster``) and the workers run it.
Logs go to files in the cluster's directory (shown when a start fails).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
_START_TIMEOUT = 30.0


class ClusterError(RuntimeError):
    """The test cluster could not start."""


def _env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    env = {**os.environ, **(extra or {})}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p)
    return env


class DaskCluster:
    """A scheduler and named workers; use as a context manager (every process is killed on
    exit). ``address`` is ``tcp://127.0.0.1:PORT``."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.address = ""
        self._scheduler: subprocess.Popen[bytes] | None = None
        self.workers: dict[str, subprocess.Popen[bytes]] = {}
        self._client: Any = None

    def __enter__(self) -> DaskCluster:
        try:
            self._start_scheduler()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _spawn(
        self, name: str, argv: list[str], env: Mapping[str, str] | None = None
    ) -> subprocess.Popen[bytes]:
        log = (self.directory / f"{name}.log").open("wb")
        try:
            return subprocess.Popen(
                argv,
                cwd=ROOT,
                env=_env(env),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group: killed with its children
            )
        finally:
            log.close()

    def _start_scheduler(self) -> None:
        path = self.directory / "scheduler.json"
        self._scheduler = self._spawn(
            "scheduler",
            [
                sys.executable,
                "-m",
                "distributed.cli.dask_scheduler",
                "--host",
                "127.0.0.1",
                "--port",
                "0",
                "--no-dashboard",
                "--scheduler-file",
                str(path),
            ],
        )
        deadline = time.monotonic() + _START_TIMEOUT
        while time.monotonic() < deadline:
            if self._scheduler.poll() is not None:
                raise ClusterError(f"the scheduler exited: {self.log('scheduler')}")
            with contextlib.suppress(OSError, ValueError):
                self.address = json.loads(path.read_text())["address"]
                return
            time.sleep(0.05)
        raise ClusterError(f"the scheduler did not start: {self.log('scheduler')}")

    def log(self, name: str) -> str:
        return (self.directory / f"{name}.log").read_text(errors="replace")[-3000:]

    def start_worker(
        self,
        name: str,
        resources: Mapping[str, int] | None = None,
        env: Mapping[str, str] | None = None,
    ) -> None:
        """Start a worker (one thread, no nanny: killing it is losing it); ``env`` overrides
        variables of its environment."""
        argv = [
            sys.executable,
            "-m",
            "distributed.cli.dask_worker",
            self.address,
            "--host",
            "127.0.0.1",
            "--nthreads",
            "1",
            "--no-nanny",
            "--no-dashboard",
            "--name",
            name,
            "--death-timeout",
            "20",  # an orphan whose scheduler is gone does not linger
        ]
        if resources:
            argv += ["--resources", " ".join(f"{k}={v}" for k, v in resources.items())]
        self.workers[name] = self._spawn(name, argv, env)

    @property
    def client(self) -> Any:
        """A synchronous client of the test's own (for watching the cluster)."""
        if self._client is None:
            from distributed import Client

            self._client = Client(self.address, timeout=10, set_as_default=False)
        return self._client

    def wait_for_workers(self, count: int) -> None:
        deadline = time.monotonic() + _START_TIMEOUT
        while time.monotonic() < deadline:
            for name, process in self.workers.items():
                if process.poll() is not None:
                    raise ClusterError(f"worker {name} exited: {self.log(name)}")
            if len(self.client.scheduler_info()["workers"]) >= count:
                return
            time.sleep(0.1)
        raise ClusterError(f"{count} workers did not register in {_START_TIMEOUT:.0f} s")

    def worker_address(self, name: str) -> str:
        for address, info in self.client.scheduler_info()["workers"].items():
            if info.get("name") == name:
                return str(address)
        raise KeyError(name)

    def processing(self) -> dict[str, list[str]]:
        """Worker name -> the keys the scheduler has given it to run. A worker the client's
        cached scheduler info does not name yet (it refreshes every few seconds) is left out
        until it does, so a caller never gets an address where it expects a name."""
        names = {a: i.get("name") for a, i in self.client.scheduler_info()["workers"].items()}
        return {
            str(names[a]): [str(k) for k in keys]
            for a, keys in self.client.processing().items()
            if names.get(a) is not None
        }

    def kill_worker(self, name: str) -> None:
        """SIGKILL the worker's whole process group (its nmap too): a machine lost."""
        process = self.workers[name]
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(10)

    def close(self) -> None:
        """Kill every process group, workers first: nothing of theirs needs a clean stop, and a
        worker busy with a block would otherwise finish it before it leaves."""
        if self._client is not None:
            with contextlib.suppress(Exception):
                self._client.close(timeout=5)
            self._client = None
        for process in [*self.workers.values(), self._scheduler]:
            if process is None:
                continue
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)  # the group: stray nmap children too
            process.wait(10)
