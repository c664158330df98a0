"""execute_set_variable_monitoring: a periodic monitor, and a 2.1 stream with it (README "OCPP
2.0.1 and 2.1 stations")."""

from __future__ import annotations

from typing import Any

from connector.actuators import Actuator, Request, Scope
from connector.core.commands import (
    InvalidCommand,
    checked_text,
    checked_whole,
    json_object,
    only_fields,
)
from connector.core.datapoints import SEP, Datapoint
from connector.ocpp2.mapping import variable_key
from connector.versions import Family, Feature, Version

MONITOR_TYPES = ("Periodic", "PeriodicClockAligned")
DEFAULT_SEVERITY = 8  # "Debug", as README "OCPP 2.0.1 and 2.1 stations" asks when none is given
MAX_INTERVAL_S = 7 * 24 * 3600


def build(value: Any, evse_id: int | None, version: Version) -> Request:
    message = json_object(value, '{"component", "variable", "type", "interval", ...}')
    allowed = ("component", "variable", "evseId", "type", "interval", "severity", "stream")
    only_fields(message, allowed)
    monitor_type = message.get("type")
    if monitor_type not in MONITOR_TYPES:
        raise InvalidCommand(f"type must be {' or '.join(MONITOR_TYPES)}")
    data: dict[str, Any] = {
        "value": checked_whole(message.get("interval"), "interval", 1, MAX_INTERVAL_S),
        "type": monitor_type,
        "severity": checked_whole(message.get("severity", DEFAULT_SEVERITY), "severity", 0, 9),
        "component": {"name": checked_text(message.get("component"), "component", 50)},
        "variable": {"name": checked_text(message.get("variable"), "variable", 50)},
    }
    if message.get("evseId") is not None:
        data["component"]["evse"] = {"id": checked_whole(message["evseId"], "evseId", 0, 9999)}
    stream = message.get("stream")
    if stream is not None:
        if not version.has(Feature.PERIODIC_EVENT_STREAMS):
            raise InvalidCommand("periodic event streams need OCPP 2.1")
        if not isinstance(stream, dict):
            raise InvalidCommand('stream must be an object {"interval": s, "values": n}')
        only_fields(stream, ("interval", "values"))
        params: dict[str, int] = {}
        if "interval" in stream:
            interval = stream["interval"]
            params["interval"] = checked_whole(interval, "stream interval", 0, MAX_INTERVAL_S)
        if "values" in stream:
            params["values"] = checked_whole(stream["values"], "stream values", 0, 100_000)
        data["periodicEventStream"] = params
    return Request("SetVariableMonitoring", {"setMonitoringData": [data]})


def results(cp_id: str, request: Request, answer: dict[str, Any], now: int) -> list[Datapoint]:
    result = (answer.get("setMonitoringResult") or [{}])[0]
    prefix = f"{cp_id}{SEP}SetVariableMonitoring{SEP}"
    return [
        Datapoint(prefix + "id", result.get("id"), now),
        Datapoint(prefix + "status", result.get("status"), now),
    ]


async def remember(station: Any, request: Request, status: str, answer: dict[str, Any]) -> None:
    """A stream opened for this monitor carries this variable's values."""
    result = (answer.get("setMonitoringResult") or [{}])[0]
    if status == "Accepted" and "id" in result:
        data = request.payload["setMonitoringData"][0]
        station.remember_monitor(
            result["id"], variable_key(station.id, data["component"], data["variable"])
        )


ACTUATOR = Actuator(
    name="execute_set_variable_monitoring",
    scope=Scope.STATION,
    example='{"component": "EVSE", "evseId": 1, "variable": "Power", "type": "Periodic", '
    '"interval": 10}',
    builders={Family.OCPP2: build},
    results=results,
    follow_up={Family.OCPP2: remember},
)
