"""execute_send_charging_profile: the power limit in W (CONTRACT §3, §5, §8).

The value is checked here; charging control (stations/charging_control.py)
plans the profiles for the station, keeps the limit while it is away, and
sends each version's SetChargingProfile through the station's adapter.
"""

from __future__ import annotations

from typing import Any

from connector.actuators import Actuator, HomeAssistant, Request, Route, Scope
from connector.core.commands import parse_power_limit
from connector.versions import Family, Version

DEFAULT_MAX_POWER_W = 22_000


def build(value: Any, connector_id: int | None, version: Version) -> Request:
    return Request("SetChargingProfile", {"limit": parse_power_limit(value)})


ACTUATOR = Actuator(
    name="execute_send_charging_profile",
    scope=Scope.BOTH,
    example=11000,
    builders={Family.OCPP16: build, Family.OCPP2: build},
    route=Route.LIMIT,
    by_default=True,
    home_assistant=(
        HomeAssistant(
            component="number",
            object_id="charging_limit",
            name="Charging limit",
            state_key="ChargingLimit__W",
            fields={
                "min": 0,
                "max": DEFAULT_MAX_POWER_W,  # or the station's largest EVSE power
                "step": 1,
                "mode": "box",
                "unit_of_measurement": "W",
                "device_class": "power",
            },
        ),
    ),
)
