"""execute_change_availability: Operative or Inoperative (README "Actuators", "OCPP 2.0.1 and 2.1
stations")."""

from __future__ import annotations

from typing import Any

from connector.actuators import Actuator, Request, Scope
from connector.core.commands import InvalidCommand
from connector.core.ha_discovery import Control
from connector.versions import Family, Version


def availability(value: Any) -> str:
    text = str(value).strip().lower() if isinstance(value, str | bool) else ""
    if text in ("operative", "true"):
        return "Operative"
    if text in ("inoperative", "false"):
        return "Inoperative"
    raise InvalidCommand("availability must be Operative, Inoperative, true or false")


def build_v16(value: Any, connector_id: int | None, version: Version) -> Request:
    return Request(
        "ChangeAvailability", {"connectorId": connector_id or 0, "type": availability(value)}
    )


def build_v2(value: Any, evse_id: int | None, version: Version) -> Request:
    payload: dict[str, Any] = {"operationalStatus": availability(value)}
    if evse_id is not None:
        payload["evse"] = {"id": evse_id}
    return Request("ChangeAvailability", payload)


ACTUATOR = Actuator(
    name="execute_change_availability",
    scope=Scope.BOTH,
    example="Inoperative",
    builders={Family.OCPP16: build_v16, Family.OCPP2: build_v2},
    home_assistant=(
        Control(
            component="switch",
            object_id="available_{connector}",
            name="Available {connector}",
            # `status` (1.6) or `connectorStatus` (2.x); both say Unavailable.
            state_key="StatusNotification__{connector}__{status_field}",
            fields={
                "payload_on": "Operative",
                "payload_off": "Inoperative",
                "value_template": "{% if value_json is defined %}{{ 'Inoperative' if "
                "value_json.value == 'Unavailable' else 'Operative' }}{% endif %}",
                "state_on": "Operative",
                "state_off": "Inoperative",
            },
            per_connector=True,
        ),
    ),
)
