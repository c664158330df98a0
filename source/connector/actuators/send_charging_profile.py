"""execute_send_charging_profile: the power limit in W (README "Datapoint keys", "Charging
control", "OCPP 2.0.1 and 2.1 stations").

The value is checked here; charging control (stations/charging_control.py)
plans the profiles for the station, keeps the limit while it is away, and
sends each version's SetChargingProfile through the station's adapter.
"""

from __future__ import annotations

from typing import Any

from connector.actuators import Actuator, Request, Route, Scope
from connector.core.commands import parse_power_limit
from connector.core.ha_discovery import STATION_MAX_POWER, Control
from connector.versions import Family, Version


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
        Control(
            component="number",
            object_id="charging_limit",
            name="Charging limit",
            state_key="ChargingLimit__W",
            fields={
                "min": 0,
                "max": STATION_MAX_POWER,
                "step": 1,
                "mode": "box",
                "unit_of_measurement": "W",
                "device_class": "power",
            },
        ),
        # 0 pauses charging; no limit at all is a null (README "Home Assistant").
        Control(
            component="button",
            object_id="remove_charging_limit",
            name="Remove charging limit",
            fields={"payload_press": "null"},
        ),
    ),
)
