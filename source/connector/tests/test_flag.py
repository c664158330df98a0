"""Flag behaves as asyncio.Event for the ways stations use it."""

from __future__ import annotations

import asyncio
import contextlib

from connector.stations.station import Flag


async def test_flag_wakes_every_waiter_even_after_one_timed_out() -> None:
    flag = Flag()
    assert not flag.is_set()
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(flag.wait(), 0.05)  # this waiter gives up
    waiters = [asyncio.create_task(flag.wait()) for _ in range(3)]
    await asyncio.sleep(0.01)
    assert not any(w.done() for w in waiters)
    flag.set()
    assert await asyncio.wait_for(asyncio.gather(*waiters), 1) == [True, True, True]
    assert flag.is_set()
    assert await asyncio.wait_for(flag.wait(), 1) is True  # set: returns at once
