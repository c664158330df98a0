"""execute_trigger_message: ask the station for a message (README "Datapoint keys", "OCPP 2.0.1 and
2.1 stations").

`0`-`5` name one message in each version's words; any trigger name of the
station's version is taken too. The station key sends no connector (EVSE);
a connector key sends its own.
"""

from __future__ import annotations

from typing import Any

from connector.actuators import Actuator, Request, Scope
from connector.core.commands import InvalidCommand
from connector.core.ha_discovery import Control
from connector.ocpp2.requests import trigger_names as trigger_names_v2
from connector.ocpp2.requests import trigger_payload as trigger_payload_v2
from connector.ocpp16.requests import TRIGGER_MESSAGES as TRIGGER_MESSAGES_V16
from connector.ocpp16.requests import trigger_payload as trigger_payload_v16
from connector.versions import Family, Version

# 0-5 of README "Datapoint keys", "OCPP 2.0.1 and 2.1 stations", in each family's words.
NUMBERED: dict[Family, tuple[str, ...]] = {
    Family.OCPP16: TRIGGER_MESSAGES_V16,
    Family.OCPP2: (
        "BootNotification",
        "LogStatusNotification",
        "FirmwareStatusNotification",
        "Heartbeat",
        "MeterValues",
        "StatusNotification",
    ),
}


def parse_trigger(value: Any, version: Version) -> str:
    """0-5 (as a number or a string), or a message name of the version."""
    numbered = NUMBERED[version.family]
    if isinstance(value, bool):
        raise InvalidCommand("trigger must be 0-5 or a message name")
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, str) and value.strip().isascii() and value.strip().isdigit():
        value = int(value.strip())
    if isinstance(value, int):
        if 0 <= value < len(numbered):
            return numbered[value]
        raise InvalidCommand(f"trigger {value!r} is not 0-5")
    names = numbered if version.family is Family.OCPP16 else trigger_names_v2(version)
    if isinstance(value, str):
        for name in names:
            if value.strip().lower() == name.lower():
                return name
    raise InvalidCommand(f"unknown trigger; allowed: 0-5 or {', '.join(sorted(names))}")


def build_v16(value: Any, connector_id: int | None, version: Version) -> Request:
    return Request(
        "TriggerMessage", trigger_payload_v16(parse_trigger(value, version), connector_id)
    )


def build_v2(value: Any, evse_id: int | None, version: Version) -> Request:
    return Request("TriggerMessage", trigger_payload_v2(parse_trigger(value, version), evse_id))


ACTUATOR = Actuator(
    name="execute_trigger_message",
    scope=Scope.BOTH,
    example=4,
    builders={Family.OCPP16: build_v16, Family.OCPP2: build_v2},
    by_default=True,
    away="it asks for current information",
    home_assistant=(
        Control(
            component="button",
            object_id="trigger_meter_values",
            name="Read meter values",
            fields={"payload_press": "4"},
        ),
    ),
)
