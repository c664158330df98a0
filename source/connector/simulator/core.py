"""What the simulated stations share: their options, the call interceptor,
the clock, and the runner the command line uses.

A station of each version family lives in its own module (`v16.py`,
`v2.py`); the versions table (`connector/versions.py`) names which class
simulates which version, so nothing here compares version strings.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from websockets.asyncio.client import connect

from connector.versions import Version

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

    # ---- metering ------------------------------------------------------
    voltage: float = 230.1
    phases: int = 3  # phases the car draws on, reported as Current.Import L1..Ln
    report_electrical: bool = True  # False: only energy and power, no V and A
    energy_unit: str = "Wh"  # "kWh" scales the register as such stations do

    # ---- quirks of real stations (charging control) ----------------------
    # ChargingScheduleAllowedChargingRateUnit as reported; None: key missing.
    rate_units: str | None = "Current,Power"
    accepted_units: set[str] = field(default_factory=lambda: {"A", "W"})
    # ChargeProfileMaxStackLevel, reported and enforced; None: key missing.
    max_stack_level: int | None = 8
    # purposes answered Rejected, e.g. {"ChargePointMaxProfile"} (EVBox)
    rejected_purposes: set[str] = field(default_factory=set)
    # purpose -> CALLERROR code, e.g. {"ChargePointMaxProfile": "NotSupported"}
    purpose_call_errors: dict[str, str] = field(default_factory=dict)
    # A TxDefaultProfile that arrives while a transaction runs is stored but
    # leaves that transaction alone; a TxProfile is needed.
    ignores_tx_default_in_transaction: bool = False
    # further configuration keys reported by GetConfiguration (1.6), or
    # `Component.Variable` device model variables (2.x)
    extra_config: dict[str, str] = field(default_factory=dict)
    # keys left out of the answer for all keys, reported only when asked by name
    unlisted_config: set[str] = field(default_factory=set)

    # ---- the car (site budgets) --------------------------------------------
    # What the car takes at most, whatever its limit: a car that is full, or
    # limits itself. None: all its limit allows (up to max_power_w).
    car_draw_w: float | None = None
    # Called with the station after each profile it accepted: tests sample
    # the limits in force at that very moment.
    on_profile: Callable[[Any], None] | None = None

    def draw(self, limit_w: float | None) -> float:
        """What the car draws under a limit."""
        draw = self.max_power_w if limit_w is None else min(limit_w, self.max_power_w)
        return draw if self.car_draw_w is None else min(draw, self.car_draw_w)


class CallSwitches:
    """Both simulated stations, before the ocpp library's routing: every call
    the central system sent is recorded as on the wire, and the error switches
    of SimulatorOptions are played. Mixed in before the library's ChargePoint."""

    # The request field that holds a SetChargingProfile's profile.
    PROFILE_FIELD = ""
    options: SimulatorOptions
    # Every call the central system sent: (action, payload as on the wire).
    received: list[tuple[str, dict[str, Any]]]
    call_received: asyncio.Event
    _wire: Any  # the payload of the call being handled
    _send: Callable[[str], Awaitable[None]]  # the library's

    async def route_message(self, raw_msg: str | bytes) -> None:
        if not await self._intercept(raw_msg):
            await super().route_message(raw_msg)  # type: ignore[misc]

    def calls(self, action: str) -> list[dict[str, Any]]:
        return [payload for name, payload in self.received if name == action]

    def purpose_error(self, payload: dict[str, Any]) -> str | None:
        purpose = (payload.get(self.PROFILE_FIELD) or {}).get("chargingProfilePurpose")
        return self.options.purpose_call_errors.get(str(purpose))

    async def _intercept(self, raw_msg: str | bytes) -> bool:
        """True when the call is done with here."""
        try:
            frame = json.loads(raw_msg)
        except ValueError:
            return False
        if not (isinstance(frame, list) and len(frame) == 4 and frame[0] == 2):
            return False
        _, unique_id, action, payload = frame
        self.received.append((action, payload))
        self._wire = payload if isinstance(payload, dict) else {}
        self.call_received.set()
        options = self.options
        if action in options.silent:
            return True
        code = options.call_errors.get(action)
        if action == "SetChargingProfile" and isinstance(payload, dict):
            code = code or self.purpose_error(payload)
        if code is None:
            return False
        await self._send(json.dumps([4, unique_id, code, "simulated", {}]))
        return True


def utc_now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


async def run_simulator(url: str, options: SimulatorOptions, version: Version) -> None:
    cp_id = url.rstrip("/").rsplit("/", 1)[-1]
    subprotocols = [version.subprotocol]
    async with connect(url, subprotocols=subprotocols) as connection:  # type: ignore[arg-type]
        station = version.simulator_class(cp_id, connection, options, version)
        reader = asyncio.create_task(station.start())
        await station.boot()
        await station.send_all_status()
        log.info("%s: booted with %d connectors (OCPP %s)", cp_id, options.connectors, version)
        await asyncio.gather(reader, station.run_meter_loop())
