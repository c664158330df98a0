"""execute_adjust_periodic_event_stream: `{"id", "interval"?, "values"?}` (README "OCPP 2.0.1 and
2.1 stations", "MQTT topics".1)."""

from __future__ import annotations

from typing import Any

from connector.actuators import Actuator, Request, Scope
from connector.core.commands import checked_whole, json_object, only_fields
from connector.versions import Family, Feature, Version

MAX_INTERVAL_S = 7 * 24 * 3600


def build(value: Any, evse_id: int | None, version: Version) -> Request:
    message = json_object(value, '{"id", "interval"?, "values"?}')
    only_fields(message, ("id", "interval", "values"))
    params: dict[str, int] = {}
    if message.get("interval") is not None:
        params["interval"] = checked_whole(message["interval"], "interval", 0, MAX_INTERVAL_S)
    if message.get("values") is not None:
        params["values"] = checked_whole(message["values"], "values", 0, 100_000)
    stream_id = checked_whole(message.get("id"), "the stream id", 0, 2**31 - 1)
    return Request("AdjustPeriodicEventStream", {"id": stream_id, "params": params})


ACTUATOR = Actuator(
    name="execute_adjust_periodic_event_stream",
    scope=Scope.STATION,
    example='{"id": 1, "interval": 5}',
    builders={Family.OCPP2: build},
    requires=Feature.PERIODIC_EVENT_STREAMS,
)
