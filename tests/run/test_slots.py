"""The run's fingerprinting slots go round robin over hosts: a host with many waiting ports does
not push back a host that asks for one, and cancelled waiters (a host's deadline) never leak a
slot."""

from __future__ import annotations

import asyncio

import pytest

from exposure_audit.run.slots import HostSlots


async def _hold(
    slots: HostSlots, host: str, name: str, order: list[str], go: asyncio.Event
) -> None:
    async with slots.taken(host):
        order.append(name)
        await go.wait()


def test_a_host_waiting_for_one_slot_is_served_before_a_crowded_hosts_backlog() -> None:
    async def scenario() -> list[str]:
        slots = HostSlots(1)
        order: list[str] = []
        gates = {name: asyncio.Event() for name in ("a1", "a2", "a3", "a4", "a5", "b1")}
        # Given a crowded host holding the only slot with four more ports waiting,
        tasks = [asyncio.create_task(_hold(slots, "a", n, order, gates[n])) for n in ("a1",)]
        await asyncio.sleep(0)
        tasks += [
            asyncio.create_task(_hold(slots, "a", n, order, gates[n]))
            for n in ("a2", "a3", "a4", "a5")
        ]
        await asyncio.sleep(0)
        # and another host asking for one slot after them,
        tasks.append(asyncio.create_task(_hold(slots, "b", "b1", order, gates["b1"])))
        await asyncio.sleep(0)
        # when the ports finish one by one,
        for name in ("a1", "a2", "b1", "a3", "a4", "a5"):
            gates[name].set()
            await asyncio.sleep(0.01)
        await asyncio.gather(*tasks)
        assert slots.free == 1
        return order

    # then the hosts take turns: the other host is served second, not after the backlog.
    assert asyncio.run(scenario()) == ["a1", "a2", "b1", "a3", "a4", "a5"]


def test_cancelled_waiters_give_their_place_up_and_leak_no_slot() -> None:
    async def scenario() -> None:
        slots = HostSlots(2)
        go = asyncio.Event()
        order: list[str] = []
        holders = [asyncio.create_task(_hold(slots, "a", f"a{i}", order, go)) for i in range(2)]
        await asyncio.sleep(0)
        # A host's deadline cancels its waiting ports (and one just granted a slot).
        waiting = [asyncio.create_task(_hold(slots, "c", f"c{i}", order, go)) for i in range(3)]
        later = asyncio.create_task(_hold(slots, "d", "d0", order, go))
        await asyncio.sleep(0)
        assert slots.free == 0
        go.set()
        await asyncio.sleep(0)  # the holders are releasing: c0 and d0 are granted
        for task in waiting:
            task.cancel()
        await asyncio.gather(*holders, later, *waiting, return_exceptions=True)
        assert "d0" in order
        assert slots.free == 2
        # Every slot can be taken again.
        async with slots.taken("e"), slots.taken("f"):
            assert slots.free == 0

    asyncio.run(scenario())


def test_at_least_one_slot() -> None:
    with pytest.raises(ValueError):
        HostSlots(0)
