"""A simulated OCPP 1.6J charge point, built on the ocpp library's client side.

For trials and tests. From the command line:

    python source/connector/simulator.py ws://127.0.0.1:9000/CP_1

It boots, reports the status of each connector, sends meter values
periodically, and answers SetChargingProfile, ClearChargingProfile and
TriggerMessage (then sends the triggered message). Switches make it answer
Rejected, a CALLERROR, or nothing at all, per action.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ocpp.routing import after, on
from ocpp.v16 import ChargePoint, call, call_result
from ocpp.v16.enums import Action
from websockets.asyncio.client import ClientConnection, connect

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

log = logging.getLogger("simulator")


@dataclass
class SimulatorOptions:
    connectors: int = 1
    meter_interval: float = 10.0  # s; 0 sends no periodic meter values
    max_power_w: float = 11000.0
    vendor: str = "FZI"
    model: str = "Simulated"
    # action -> status to answer instead of Accepted, e.g. {"SetChargingProfile": "Rejected"}
    responses: dict[str, str] = field(default_factory=dict)
    # action -> CALLERROR code to answer, e.g. {"SetChargingProfile": "NotSupported"}
    call_errors: dict[str, str] = field(default_factory=dict)
    # actions never answered, to test timeouts
    silent: set[str] = field(default_factory=set)


def utc_now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


class SimulatedChargePoint(ChargePoint):
    def __init__(self, cp_id: str, connection: ClientConnection, options: SimulatorOptions) -> None:
        super().__init__(cp_id, connection, response_timeout=10)
        self.options = options
        # Every call the central system sent: (action, payload as on the wire).
        self.received: list[tuple[str, dict[str, Any]]] = []
        self.call_received = asyncio.Event()
        self.energy_wh = 0.0
        # connectorId -> W of the profile in force
        self.limits: dict[int, float] = {}
        # chargingProfileId -> connectorId
        self.profiles: dict[int, int] = {}
        self.transaction_id: int | None = None
        self._tasks: set[asyncio.Task[Any]] = set()

    async def route_message(self, raw_msg: str | bytes) -> None:
        # Seen before the library's routing, to record the wire payload and to
        # play the error switches.
        try:
            frame = json.loads(raw_msg)
        except ValueError:
            frame = None
        if isinstance(frame, list) and len(frame) == 4 and frame[0] == 2:
            _, unique_id, action, payload = frame
            self.received.append((action, payload))
            self.call_received.set()
            if action in self.options.silent:
                return
            if action in self.options.call_errors:
                code = self.options.call_errors[action]
                await self._send(json.dumps([4, unique_id, code, "simulated", {}]))
                return
        await super().route_message(raw_msg)

    def calls(self, action: str) -> list[dict[str, Any]]:
        return [payload for name, payload in self.received if name == action]

    def _status(self, action: str) -> str:
        return self.options.responses.get(action, "Accepted")

    def _spawn(self, coroutine: Any) -> None:
        task = asyncio.ensure_future(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # ---- station-initiated messages ----------------------------------

    async def boot(self) -> Any:
        return await self.call(
            call.BootNotification(
                charge_point_vendor=self.options.vendor,
                charge_point_model=self.options.model,
                firmware_version="1.0.0",
            )
        )

    async def send_status(self, connector_id: int, status: str = "Available") -> None:
        await self.call(
            call.StatusNotification(
                connector_id=connector_id,
                error_code="NoError",
                status=status,
                timestamp=utc_now(),
            )
        )

    async def send_all_status(self) -> None:
        for connector_id in range(0, self.options.connectors + 1):
            await self.send_status(connector_id)

    def power_w(self, connector_id: int = 1) -> float:
        limit = self.limits.get(connector_id, self.limits.get(0, self.options.max_power_w))
        return min(limit, self.options.max_power_w)

    async def send_meter_values(self, connector_id: int = 1, seconds: float = 1.0) -> None:
        power = self.power_w(connector_id)
        self.energy_wh += power * seconds / 3600
        await self.call(
            call.MeterValues(
                connector_id=connector_id,
                transaction_id=self.transaction_id,
                meter_value=[
                    {
                        "timestamp": utc_now(),
                        "sampledValue": [
                            {"value": f"{self.energy_wh:.1f}", "unit": "Wh"},
                            {
                                "value": f"{power:.0f}",
                                "measurand": "Power.Active.Import",
                                "unit": "W",
                            },
                            {
                                "value": "230.1",
                                "measurand": "Voltage",
                                "phase": "L1-N",
                                "unit": "V",
                            },
                        ],
                    }
                ],
            )
        )

    async def start_transaction(self, connector_id: int = 1, id_tag: str = "TAG1") -> int:
        response = await self.call(
            call.StartTransaction(
                connector_id=connector_id,
                id_tag=id_tag,
                meter_start=int(self.energy_wh),
                timestamp=utc_now(),
            )
        )
        self.transaction_id = response.transaction_id
        return response.transaction_id

    async def stop_transaction(self, reason: str = "Local") -> None:
        assert self.transaction_id is not None
        await self.call(
            call.StopTransaction(
                transaction_id=self.transaction_id,
                meter_stop=int(self.energy_wh),
                timestamp=utc_now(),
                reason=reason,
            )
        )
        self.transaction_id = None

    async def run_meter_loop(self) -> None:
        while self.options.meter_interval > 0:
            await asyncio.sleep(self.options.meter_interval)
            for connector_id in range(1, self.options.connectors + 1):
                await self.send_meter_values(connector_id, self.options.meter_interval)

    # ---- central-system-initiated calls ------------------------------

    @on(Action.set_charging_profile)
    def on_set_charging_profile(self, connector_id: int, cs_charging_profiles: dict, **_: Any):
        status = self._status(Action.set_charging_profile)
        if status == "Accepted":
            periods = cs_charging_profiles["charging_schedule"]["charging_schedule_period"]
            self.limits[connector_id] = float(periods[0]["limit"])
            self.profiles[cs_charging_profiles["charging_profile_id"]] = connector_id
        return call_result.SetChargingProfile(status=status)

    @on(Action.clear_charging_profile)
    def on_clear_charging_profile(
        self, id: int | None = None, connector_id: int | None = None, **_: Any
    ):
        if id is not None:
            connector_id = self.profiles.pop(id, None)
            if connector_id is None:
                return call_result.ClearChargingProfile(status="Unknown")
        if connector_id is None:
            self.limits.clear()
        else:
            self.limits.pop(connector_id, None)
        return call_result.ClearChargingProfile(status=self._status(Action.clear_charging_profile))

    @on(Action.trigger_message)
    def on_trigger_message(self, requested_message: str, **_: Any):
        return call_result.TriggerMessage(status=self._status(Action.trigger_message))

    @after(Action.trigger_message)
    def after_trigger_message(
        self, requested_message: str, connector_id: int | None = None, **_: Any
    ):
        if self._status(Action.trigger_message) != "Accepted":
            return
        senders = {
            "BootNotification": self.boot,
            "Heartbeat": lambda: self.call(call.Heartbeat()),
            "MeterValues": lambda: self.send_meter_values(connector_id or 1, 0),
            "StatusNotification": (
                (lambda: self.send_status(connector_id))
                if connector_id is not None
                else self.send_all_status
            ),
            "DiagnosticsStatusNotification": lambda: self.call(
                call.DiagnosticsStatusNotification(status="Idle")
            ),
            "FirmwareStatusNotification": lambda: self.call(
                call.FirmwareStatusNotification(status="Idle")
            ),
        }
        self._spawn(senders[requested_message]())

    @on(Action.get_configuration)
    def on_get_configuration(self, **_: Any):
        return call_result.GetConfiguration(configuration_key=[], unknown_key=[])


async def run_simulator(url: str, options: SimulatorOptions) -> None:
    cp_id = url.rstrip("/").rsplit("/", 1)[-1]
    async with connect(url, subprotocols=["ocpp1.6"]) as connection:  # type: ignore[list-item]
        station = SimulatedChargePoint(cp_id, connection, options)
        reader = asyncio.create_task(station.start())
        await station.boot()
        await station.send_all_status()
        log.info("%s: booted with %d connectors", cp_id, options.connectors)
        await asyncio.gather(reader, station.run_meter_loop())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("url", help="ws://host:port/<charge point id>")
    parser.add_argument("--connectors", type=int, default=1)
    parser.add_argument("--interval", type=float, default=10.0, help="meter values every N s")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    options = SimulatorOptions(connectors=args.connectors, meter_interval=args.interval)
    try:
        asyncio.run(run_simulator(args.url, options))
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
