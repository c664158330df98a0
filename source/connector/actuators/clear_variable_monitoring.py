"""execute_clear_variable_monitoring: a monitor id (README "OCPP 2.0.1 and 2.1 stations")."""

from __future__ import annotations

from typing import Any

from connector.actuators import Actuator, Request, Scope
from connector.core.commands import checked_whole
from connector.versions import Family, Version


def build(value: Any, evse_id: int | None, version: Version) -> Request:
    return Request(
        "ClearVariableMonitoring", {"id": [checked_whole(value, "the monitor id", 0, 2**31 - 1)]}
    )


ACTUATOR = Actuator(
    name="execute_clear_variable_monitoring",
    scope=Scope.STATION,
    example=1,
    builders={Family.OCPP2: build},
)
