"""execute_remote_start_transaction: start a session with an id tag (README "Actuators", "OCPP
2.0.1 and 2.1 stations")."""

from __future__ import annotations

from typing import Any

from connector.actuators import Actuator, Request, Scope
from connector.core.commands import checked_text
from connector.core.ha_discovery import Control
from connector.ocpp2.requests import fresh_id
from connector.versions import Family, Version


def build_v16(value: Any, connector_id: int | None, version: Version) -> Request:
    payload: dict[str, Any] = {"idTag": checked_text(value, "the idTag", 20)}
    if connector_id is not None:
        payload["connectorId"] = connector_id
    return Request("RemoteStartTransaction", payload)


def build_v2(value: Any, evse_id: int | None, version: Version) -> Request:
    payload: dict[str, Any] = {
        "idToken": {"idToken": checked_text(value, "the idToken", 36), "type": "Central"},
        "remoteStartId": fresh_id(),
    }
    if evse_id is not None:
        payload["evseId"] = evse_id
    return Request("RequestStartTransaction", payload)


ACTUATOR = Actuator(
    name="execute_remote_start_transaction",
    scope=Scope.BOTH,
    example="TAG1",
    builders={Family.OCPP16: build_v16, Family.OCPP2: build_v2},
    away="a session started hours later would surprise",
    home_assistant=(
        Control(
            component="button",
            object_id="start_{connector}",
            name="Start charging {connector}",
            fields={"payload_press": "HomeAssistant"},
            per_connector=True,
        ),
    ),
)
