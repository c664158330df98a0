"""Sends the commands of README "Actuators" to a station and publishes what comes back.

Every outcome becomes `<cp>__<Command>__status` (station.command does that);
what an answer carries, and what follows it (a configuration read back, so
`<cp>__Configuration__<key>` shows the value in force), is the actuator's
own (actuators/: `results`, `follow_up`, and `prepare` before it is sent).
Commands to one station go one at a time, in arrival order (the station's
call lock is first come, first served); a silent station delays only its
own commands, by OCPP_RESPONSE_TIMEOUT at most each.

Commands waiting for one station are bounded, and kept in one queue with one
worker per station (5,000 commands to a silent station were 5,000 tasks): a
command equal to the last one waiting is not queued again (a trigger pressed
ten times is sent once, and the order of different commands is kept:
Inoperative, Operative, Inoperative ends Inoperative), and beyond MAX_WAITING
commands the newest are dropped with a WARNING.
"""

from __future__ import annotations

import logging
import weakref
from collections import deque
from collections.abc import Callable

from connector import actuators
from connector.actuators import Request
from connector.core import datapoints as dp
from connector.stations.station import Station, now_ms

log = logging.getLogger(__name__)

# Commands waiting for one station at most (besides the one being sent).
MAX_WAITING = 32


class CommandRunner:
    def __init__(self, publish: Callable[[list[dp.Datapoint]], None]) -> None:
        self._publish = publish
        # Station -> its commands waiting to be sent, oldest first; a station
        # with an entry has a worker. Weak: a station that left takes its queue.
        self._queues: weakref.WeakKeyDictionary[Station, deque[Request]] = (
            weakref.WeakKeyDictionary()
        )

    def submit(self, station: Station, request: Request, connector_id: int | None) -> None:
        actuator = actuators.ACTUATORS.get(request.actuator)
        if actuator is not None and actuator.prepare is not None:
            prepared = actuator.prepare(station, request, connector_id)
            if prepared is None:
                return
            request = prepared
        queue = self._queues.get(station)
        if queue is None:
            queue = self._queues[station] = deque()
            station.spawn(self._work(station, queue))
        if queue and queue[-1] == request:
            # A repeat (a button pressed again): DEBUG, as it may come thousands of times.
            log.debug("%s: the same %s is waiting already", station.id, request.action)
            return
        if len(queue) >= MAX_WAITING:
            log.warning(
                "%s: %d commands are waiting for the station already; dropped %s",
                station.id,
                len(queue),
                request.action,
            )
            return
        queue.append(request)

    async def _work(self, station: Station, queue: deque[Request]) -> None:
        """Send the station's commands one after another, then end."""
        try:
            while queue:
                await self.run(station, queue.popleft())
        finally:
            if self._queues.get(station) is queue:
                del self._queues[station]

    async def run(self, station: Station, request: Request) -> None:
        status, answer = await station.command(request.action, request.payload)
        now = now_ms()
        await actuators.follow_up(station, request, status, answer)
        points = actuators.result_datapoints(station.id, request, answer, now)
        if points:
            self._publish(points)
