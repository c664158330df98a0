"""execute_clear_charging_profile: clear the profiles the connector set (README "Actuators").

Charging control sends the clears, by the ids it set, and forgets the kept
limit with them.
"""

from __future__ import annotations

from typing import Any

from connector.actuators import Actuator, Request, Route, Scope
from connector.versions import Family, Version


def build_v16(value: Any, connector_id: int | None, version: Version) -> Request:
    return Request("ClearChargingProfile", {"connectorId": connector_id or 0})


def build_v2(value: Any, evse_id: int | None, version: Version) -> Request:
    return Request("ClearChargingProfile", {"chargingProfileCriteria": {"evseId": evse_id or 0}})


ACTUATOR = Actuator(
    name="execute_clear_charging_profile",
    scope=Scope.BOTH,
    example=True,
    builders={Family.OCPP16: build_v16, Family.OCPP2: build_v2},
    route=Route.CLEAR,
)
