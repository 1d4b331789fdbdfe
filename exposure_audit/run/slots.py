"""Slots shared by the hosts of a run, handed out in turn across hosts.

The web fingerprinting of a run probes a bounded number of ports at once (each is a connection
or a few). A first-come queue would be fair to ports, not to hosts: a host answering on
thousands of ports queues as many waiters as it is allowed and pushes every later host back,
past its deadline. :class:`HostSlots` serves the hosts round robin instead: a freed slot goes
to the next host in turn that is waiting, whatever the number of its waiting ports.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import AsyncIterator

__all__ = ["HostSlots"]


class HostSlots:
    """``size`` slots, handed out round robin over the hosts waiting for one.

    ``async with slots.taken(host): ...`` holds one slot for ``host`` (any hashable name; an
    address). A waiter cancelled before it got its slot gives up its place; one cancelled
    just after it was granted passes the slot on. Single-threaded (one event loop)."""

    def __init__(self, size: int) -> None:
        if size < 1:
            raise ValueError("at least one slot")
        self.size = size
        self._free = size
        self._waiting: dict[str, deque[asyncio.Future[None]]] = {}
        self._turn: deque[str] = deque()  # hosts with waiters, the next to be served first

    @property
    def free(self) -> int:
        """Slots free now."""
        return self._free

    @contextlib.asynccontextmanager
    async def taken(self, host: str) -> AsyncIterator[None]:
        await self._take(host)
        try:
            yield
        finally:
            self._give_back()

    async def _take(self, host: str) -> None:
        if self._free > 0 and not self._turn:
            self._free -= 1
            return
        granted: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        queue = self._waiting.get(host)
        if queue is None:
            queue = self._waiting[host] = deque()
            self._turn.append(host)
        queue.append(granted)
        try:
            await granted
        except asyncio.CancelledError:
            if granted.done() and not granted.cancelled():
                self._give_back()  # granted, then cancelled before it could be used
            else:
                granted.cancel()  # left in its queue: skipped when its turn comes
            raise

    def _give_back(self) -> None:
        """A slot is free: grant it to the next waiting host in turn, else keep it."""
        while self._turn:
            host = self._turn.popleft()
            queue = self._waiting[host]
            while queue and queue[0].done():
                queue.popleft()  # cancelled waiters
            if not queue:
                del self._waiting[host]
                continue
            queue.popleft().set_result(None)
            while queue and queue[0].done():
                queue.popleft()
            if queue:
                self._turn.append(host)  # still waiting: back of the line
            else:
                del self._waiting[host]
            return
        self._free += 1
