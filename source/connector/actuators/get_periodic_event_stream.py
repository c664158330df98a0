"""execute_get_periodic_event_stream: any value (README "OCPP 2.0.1 and 2.1 stations", "MQTT
topics".1); the streams go to
`<cp>__PeriodicEventStream__<id>__…`."""

from __future__ import annotations

from typing import Any

from connector.actuators import Actuator, Request, Scope
from connector.core.datapoints import Datapoint
from connector.ocpp2.mapping import stream_settings
from connector.versions import Family, Feature, Version


def build(value: Any, evse_id: int | None, version: Version) -> Request:
    return Request("GetPeriodicEventStream", {})


def results(cp_id: str, request: Request, answer: dict[str, Any], now: int) -> list[Datapoint]:
    points: list[Datapoint] = []
    for stream in answer.get("constantStreamData") or []:
        points += stream_settings(cp_id, stream, now)
    return points


ACTUATOR = Actuator(
    name="execute_get_periodic_event_stream",
    scope=Scope.STATION,
    example=True,
    builders={Family.OCPP2: build},
    requires=Feature.PERIODIC_EVENT_STREAMS,
    results=results,
)
