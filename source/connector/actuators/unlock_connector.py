"""execute_unlock_connector: any value, on a connector key (README "Actuators", "OCPP 2.0.1 and 2.1
stations")."""

from __future__ import annotations

from typing import Any

from connector.actuators import Actuator, Request, Scope
from connector.versions import Family, Version


def build_v16(value: Any, connector_id: int | None, version: Version) -> Request:
    assert connector_id is not None  # the scope guarantees it
    return Request("UnlockConnector", {"connectorId": connector_id})


def build_v2(value: Any, evse_id: int | None, version: Version) -> Request:
    assert evse_id is not None
    return Request("UnlockConnector", {"evseId": evse_id, "connectorId": 1})


ACTUATOR = Actuator(
    name="execute_unlock_connector",
    scope=Scope.CONNECTOR,
    example=True,
    builders={Family.OCPP16: build_v16, Family.OCPP2: build_v2},
)
