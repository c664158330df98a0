"""execute_get_configuration: a key, or empty for all (README "Actuators"; 2.x: a variable,
or empty for the full inventory, README "OCPP 2.0.1 and 2.1 stations")."""

from __future__ import annotations

import logging
from typing import Any

from connector.actuators import Actuator, Request, Scope
from connector.core.commands import checked_text
from connector.ocpp2.requests import fresh_id, get_variables, parse_variable_path
from connector.versions import Family, Version

log = logging.getLogger(__name__)


def _empty(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def build_v16(value: Any, connector_id: int | None, version: Version) -> Request:
    if _empty(value):
        return Request("GetConfiguration", {})
    return Request("GetConfiguration", {"key": [checked_text(value, "the key", 50)]})


def build_v2(value: Any, evse_id: int | None, version: Version) -> Request:
    if _empty(value):
        return Request("GetBaseReport", {"requestId": fresh_id(), "reportBase": "FullInventory"})
    return Request("GetVariables", get_variables([parse_variable_path(value)]))


async def take_v16(station: Any, request: Request, status: str, answer: dict[str, Any]) -> None:
    if not answer:
        return
    station.take_configuration(answer)
    for key in answer.get("unknownKey") or []:
        log.warning("%s: the station does not know the configuration key %r", station.id, key)


async def take_v2(station: Any, request: Request, status: str, answer: dict[str, Any]) -> None:
    if answer and request.action == "GetVariables":
        station.take_variables(answer.get("getVariableResult") or [])


ACTUATOR = Actuator(
    name="execute_get_configuration",
    scope=Scope.STATION,
    example="",
    builders={Family.OCPP16: build_v16, Family.OCPP2: build_v2},
    follow_up={Family.OCPP16: take_v16, Family.OCPP2: take_v2},
)
