"""execute_change_configuration: `Key=Value` (1.6), `<component>.<variable>=<value>`
(2.x) (README "Actuators", "OCPP 2.0.1 and 2.1 stations"). The value in force is read back
afterwards."""

from __future__ import annotations

import logging
from typing import Any

from connector.actuators import Actuator, Request, Scope
from connector.core.commands import InvalidCommand, checked_text
from connector.ocpp2.requests import get_variables, parse_variable_path
from connector.versions import Family, Version

log = logging.getLogger(__name__)

APPLIED = ("Accepted", "RebootRequired")


def _setting(text: str, limit: int) -> str:
    if len(text) > limit:
        raise InvalidCommand(f"the value must be at most {limit} characters")
    if any(ord(c) < 32 or ord(c) == 127 for c in text):
        raise InvalidCommand("the value must not contain control characters")
    return text.strip()


def build_v16(value: Any, connector_id: int | None, version: Version) -> Request:
    if not isinstance(value, str) or "=" not in value:
        raise InvalidCommand("the value must be Key=Value")
    key, _, setting = value.partition("=")
    payload = {"key": checked_text(key, "the key", 50), "value": _setting(setting, 500)}
    return Request("ChangeConfiguration", payload)


def build_v2(value: Any, evse_id: int | None, version: Version) -> Request:
    if not isinstance(value, str) or "=" not in value:
        raise InvalidCommand("the value must be <component>.<variable>=<value>")
    name, _, setting = value.partition("=")
    path = parse_variable_path(name)
    data = {
        "attributeValue": _setting(setting, 1000),
        "component": path.component,
        "variable": path.variable,
    }
    return Request("SetVariables", {"setVariableData": [data]})


async def read_back_v16(
    station: Any, request: Request, status: str, answer: dict[str, Any]
) -> None:
    if status not in APPLIED:
        return
    key = request.payload["key"]
    if status == "RebootRequired":
        log.warning("%s: %s applies after the station reboots (RebootRequired)", station.id, key)
    # Read back, so the key shows the value the station holds now.
    _, read = await station.command("GetConfiguration", {"key": [key]})
    station.take_configuration(read)


async def read_back_v2(station: Any, request: Request, status: str, answer: dict[str, Any]) -> None:
    if status not in APPLIED:
        return
    data = request.payload["setVariableData"][0]
    if status == "RebootRequired":
        log.warning(
            "%s: %s.%s applies after the station reboots (RebootRequired)",
            station.id,
            data["component"]["name"],
            data["variable"]["name"],
        )
    _, got = await station.command("GetVariables", get_variables([_path(data)]))
    station.take_variables(got.get("getVariableResult") or [])


def _path(data: dict[str, Any]) -> Any:
    from connector.ocpp2.requests import VariablePath

    return VariablePath(data["component"], data["variable"])


ACTUATOR = Actuator(
    name="execute_change_configuration",
    scope=Scope.STATION,
    example="HeartbeatInterval=300",
    examples={Family.OCPP2: "OCPPCommCtrlr.HeartbeatInterval=300"},
    builders={Family.OCPP16: build_v16, Family.OCPP2: build_v2},
    follow_up={Family.OCPP16: read_back_v16, Family.OCPP2: read_back_v2},
)
