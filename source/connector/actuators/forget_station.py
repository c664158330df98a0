"""execute_forget_station: remove what the connector keeps on the broker for a
station: its retained direct topics and discovery (README "Direct topics"). No OCPP call;
offered on every station key whenever direct topics are on."""

from __future__ import annotations

from typing import Any

from connector.actuators import Actuator, Request, Route, Scope
from connector.versions import Family, Version


def build(value: Any, connector_id: int | None, version: Version) -> Request:
    return Request("ForgetStation", {})


ACTUATOR = Actuator(
    name="execute_forget_station",
    scope=Scope.STATION,
    example=True,
    builders={Family.OCPP16: build, Family.OCPP2: build},
    route=Route.LOCAL,
    with_direct_topics=True,
)
