"""Fixtures for the cluster tests: a loopback lab in 127.93.0.0/16 and a real Dask cluster.

The lab (in this process, as the CLI tests do) is hosts 1-7 of the benchmark lab on
127.93.1.0/24 (web, SSH, DSM 6.2 and 7.2), host 12 (DSM 4.3 and SSH) reached only through the
name ``nas.example.net`` on the lab's DNS server, and a slow host on 127.93.2.1: one port that
accepts, never says a word and never hangs up (a tarpit), so ``nmap -sV`` waits out its probes
past the 5 s host deadline the tests give. Its block is slow by construction (about 6 s), the
others take about a second.

The shared cluster is a scheduler and two workers, ``eu`` (resource ``vantage-eu``) and ``us``
(``vantage-us``); a run without vantages uses both alike. Tests that kill a worker build their
own (:func:`make_cluster`).
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Protocol

import pytest

from exposure_audit.lab import Lab, bench_lab

from .daskcluster import DaskCluster

SLOW = "127.93.2.1"
SLOW_PORT = 6690
NAME = "nas.example.net"
NAMED = "127.93.1.12"
# Plan order: the direct addresses as given, then the name's address.
TARGETS = (SLOW, *(f"127.93.1.{i}" for i in range(1, 8)), NAME)
PLAN_ORDER = (*TARGETS[:-1], NAMED)


@pytest.fixture(scope="session")
def lab() -> Iterator[Lab]:
    bench = {h.address: h for h in bench_lab(12, "127.93.1.0/24").hosts}
    hosts = [bench[a] for a in PLAN_ORDER if a in bench]
    with _tarpit(SLOW, SLOW_PORT), Lab(hosts, {NAME: (("A", NAMED),)}) as running:
        yield running


@contextmanager
def _tarpit(address: str, port: int) -> Iterator[None]:
    """Accepts, reads and discards, never answers, never hangs up (until the test ends)."""
    listener = socket.create_server((address, port), backlog=64)
    listener.settimeout(0.2)
    stop = threading.Event()
    held: list[socket.socket] = []

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            conn.setblocking(False)  # never read: the kernel's buffer takes nmap's few bytes
            held.append(conn)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()
        for conn in held:
            conn.close()
        listener.close()


@contextmanager
def _cluster(
    directory: Path, workers: dict[str, dict[str, int]], env: Mapping[str, str] | None = None
) -> Iterator[DaskCluster]:
    with DaskCluster(directory) as cluster:
        for name, resources in workers.items():
            cluster.start_worker(name, resources, env)
        cluster.wait_for_workers(len(workers))
        yield cluster


@pytest.fixture(scope="session")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DaskCluster]:
    workers = {"eu": {"vantage-eu": 1}, "us": {"vantage-us": 1}}
    with _cluster(tmp_path_factory.mktemp("dask"), workers) as running:
        yield running


class MakeCluster(Protocol):
    def __call__(
        self, workers: dict[str, dict[str, int]], env: Mapping[str, str] | None = None
    ) -> AbstractContextManager[DaskCluster]: ...


@pytest.fixture
def make_cluster(tmp_path: Path) -> MakeCluster:
    """A cluster of its own with the workers asked for, ``env`` overriding variables of the
    workers' environment (torn down when the ``with`` ends)."""

    def make(
        workers: dict[str, dict[str, int]], env: Mapping[str, str] | None = None
    ) -> AbstractContextManager[DaskCluster]:
        return _cluster(tmp_path / "dask", workers, env)

    (tmp_path / "dask").mkdir()
    return make
