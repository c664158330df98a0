"""Sends the commands of CONTRACT §6 to a station and publishes what comes back.

Every outcome becomes `<cp>__<Command>__status` (station.command does that);
answers that carry data go to the datapoints the contract names, and a
configuration change is read back so `<cp>__Configuration__<key>` shows the
value in force. Commands to one station go one at a time, in arrival order
(the station's call lock is first come, first served); a silent station
delays only its own commands, by OCPP_RESPONSE_TIMEOUT at most each.

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
from typing import Any

from connector.core import actuators as act
from connector.core import datapoints as dp
from connector.core.datapoints_v2 import variable_key
from connector.stations.station import Station, now_ms
from connector.stations.station_v2 import StationV201

log = logging.getLogger(__name__)

# Commands waiting for one station at most (besides the one being sent).
MAX_WAITING = 32


class CommandRunner:
    def __init__(self, publish: Callable[[list[dp.Datapoint]], None]) -> None:
        self._publish = publish
        # Station -> its commands waiting to be sent, oldest first; a station
        # with an entry has a worker. Weak: a station that left takes its queue.
        self._queues: weakref.WeakKeyDictionary[Station, deque[act.Request]] = (
            weakref.WeakKeyDictionary()
        )

    def submit(self, station: Station, request: act.Request, connector_id: int | None) -> None:
        if request.action in ("RemoteStopTransaction", "RequestStopTransaction") and (
            request.payload["transactionId"] in (act.RUNNING_TRANSACTION, None)
        ):
            assert connector_id is not None
            transaction_id = station.active_transaction(connector_id)
            if transaction_id is None:
                log.warning(
                    "%s: no transaction is known to run on %s %d; nothing was sent",
                    station.id,
                    "EVSE" if station.is_v2 else "connector",
                    connector_id,
                )
                return
            request = act.Request(request.action, {"transactionId": transaction_id})
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

    async def _work(self, station: Station, queue: deque[act.Request]) -> None:
        """Send the station's commands one after another, then end."""
        try:
            while queue:
                await self.run(station, queue.popleft())
        finally:
            if self._queues.get(station) is queue:
                del self._queues[station]

    async def run(self, station: Station, request: act.Request) -> None:
        status, answer = await station.command(request.action, request.payload)
        now = now_ms()
        if request.action == "GetConfiguration" and answer:
            station.take_configuration(answer)
            for key in answer.get("unknownKey") or []:
                log.warning(
                    "%s: the station does not know the configuration key %r", station.id, key
                )
        elif request.action == "ChangeConfiguration" and status in ("Accepted", "RebootRequired"):
            if status == "RebootRequired":
                log.warning(
                    "%s: %s applies after the station reboots (RebootRequired)",
                    station.id,
                    request.payload["key"],
                )
            # Read back, so the key shows the value the station holds now.
            _, read = await station.command("GetConfiguration", {"key": [request.payload["key"]]})
            station.take_configuration(read)
        elif isinstance(station, StationV201):
            await self._after_v2(station, request, status, answer)
        points = act.result_datapoints(station.id, request, answer, now)
        if points:
            self._publish(points)

    async def _after_v2(
        self, station: StationV201, request: act.Request, status: str, answer: dict[str, Any]
    ) -> None:
        if request.action == "GetVariables" and answer:
            station.take_variables(answer.get("getVariableResult") or [])
        elif request.action == "SetVariables" and status in ("Accepted", "RebootRequired"):
            data = request.payload["setVariableData"][0]
            if status == "RebootRequired":
                log.warning(
                    "%s: %s.%s applies after the station reboots (RebootRequired)",
                    station.id,
                    data["component"]["name"],
                    data["variable"]["name"],
                )
            # Read back, so the key shows the value the station holds now.
            read = {"getVariableData": [{k: data[k] for k in ("component", "variable")}]}
            _, got = await station.command("GetVariables", read)
            station.take_variables(got.get("getVariableResult") or [])
        elif request.action == "SetVariableMonitoring" and status == "Accepted":
            # A stream opened for this monitor carries this variable's values.
            result = (answer.get("setMonitoringResult") or [{}])[0]
            if "id" in result:
                data = request.payload["setMonitoringData"][0]
                key = variable_key(station.id, data["component"], data["variable"])
                station.remember_monitor(result["id"], key)
