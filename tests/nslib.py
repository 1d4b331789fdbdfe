"""What both network-namespace labs (tests/netns, tests/perimeter) need from the OS: finding
the binaries (also in sbin, which root's PATH may lack), entering a namespace on this thread,
tying a child's life to its creator's, and listing the namespaces."""

from __future__ import annotations

import contextlib
import ctypes
import os
import shutil
import signal
import subprocess
from collections.abc import Iterator, Sequence

__all__ = ["die_with_parent", "in_netns", "list_namespaces", "missing_prerequisites", "which"]

_SBIN_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
_CLONE_NEWNET = 0x40000000
_PR_SET_PDEATHSIG = 1
_libc = ctypes.CDLL(None, use_errno=True)


def which(binary: str) -> str | None:
    """The binary's path, on PATH or in the sbin directories; None when it is not installed."""
    return shutil.which(binary) or shutil.which(binary, path=_SBIN_PATH)


def missing_prerequisites(required: Sequence[str]) -> list[str]:
    """Why this machine cannot run a lab (empty when it can): not root, or a binary of
    ``required`` missing."""
    problems: list[str] = []
    if os.geteuid() != 0:
        problems.append("must run as root (network namespaces and nftables need it)")
    missing = [b for b in required if which(b) is None]
    if missing:
        problems.append(f"missing binaries: {', '.join(missing)} (run .ci/install)")
    return problems


def list_namespaces() -> list[str]:
    """The names ``ip netns list`` gives (none when ``ip`` is missing)."""
    ip = which("ip")
    if ip is None:
        return []
    listing = subprocess.run([ip, "netns", "list"], capture_output=True, text=True, check=False)
    return [line.split(" ", 1)[0] for line in listing.stdout.splitlines()]


def die_with_parent() -> None:
    """A ``preexec_fn``: if the creating process dies without tearing down (SIGKILL, crash),
    the kernel sends the child SIGKILL, so no lab process outlives the run. Kept across exec
    (not setuid).

    SIGKILL, not SIGTERM: miniupnpd checks its quit flag before it calls select(), so a SIGTERM
    landing between the two waits for its next timer (up to ``notify_interval``, 30 s here);
    CI saw it outlive its parent by more than 15 s. An orphan has nothing to clean up that
    outlives the sweep: its nftables rules live in the namespace the sweep deletes."""
    _libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


@contextlib.contextmanager
def in_netns(namespace: str) -> Iterator[None]:
    """The calling thread enters ``namespace`` for the block (setns(2); os.setns is 3.12+)."""
    old = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
    try:
        new = os.open(f"/run/netns/{namespace}", os.O_RDONLY)
        try:
            if _libc.setns(new, _CLONE_NEWNET) != 0:
                errno = ctypes.get_errno()
                raise OSError(errno, f"setns({namespace}): {os.strerror(errno)}")
            try:
                yield
            finally:
                if _libc.setns(old, _CLONE_NEWNET) != 0:
                    errno = ctypes.get_errno()
                    raise OSError(errno, f"setns back: {os.strerror(errno)}")
        finally:
            os.close(new)
    finally:
        os.close(old)
