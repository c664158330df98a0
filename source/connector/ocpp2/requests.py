"""Pure: the parts of OCPP 2.0.1/2.1 requests that more than one place builds
(README "OCPP 2.0.1 and 2.1 stations"): variable paths, charging profiles, triggers, fresh ids.

Each actuator builds its own request (actuators/), from these where 2.x needs
them. Nothing here does I/O.
"""

from __future__ import annotations

import itertools
import re
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from ocpp.v21.enums import MessageTriggerEnumType as Trigger21
from ocpp.v21.enums import ResetEnumType as Reset21
from ocpp.v201.enums import MessageTriggerEnumType as Trigger201
from ocpp.v201.enums import ResetEnumType as Reset201

from connector.core.commands import InvalidCommand, format_time
from connector.versions import OCPP21, OCPP201, Version

# Each version's own names, from the ocpp library's enums.
TRIGGER_NAMES: dict[Version, frozenset[str]] = {
    OCPP201: frozenset(t.value for t in Trigger201),
    OCPP21: frozenset(t.value for t in Trigger21),
}
RESET_TYPES: dict[Version, frozenset[str]] = {
    OCPP201: frozenset(t.value for t in Reset201),
    OCPP21: frozenset(t.value for t in Reset21),
}

# 1.6's profile purposes -> 2.x's: only the station-wide one was renamed.
PURPOSES = {"ChargePointMaxProfile": "ChargingStationMaxProfile"}


# `<component>[(<instance>)][@<evse>[.<connector>]].<variable>[(<instance>)]`, the
# key syntax of README "OCPP 2.0.1 and 2.1 stations" with a `.` between component and variable.
_VARIABLE_PATH = re.compile(
    r"^(?P<component>[A-Za-z0-9_\-]{1,50})(?:\((?P<component_instance>[^()]{1,50})\))?"
    r"(?:@(?P<evse>\d{1,4})(?:\.(?P<connector>\d{1,4}))?)?"
    r"\.(?P<variable>[A-Za-z0-9_\-]{1,50})(?:\((?P<variable_instance>[^()]{1,50})\))?$"
)

# Fresh ids for remoteStartId and requestId: unique within a run, and
# different after a restart (they start from the clock), within int32.
_ids = itertools.count(int(time.time() * 10) % 2**30)


def fresh_id() -> int:
    return next(_ids) % 2**31


@dataclass(frozen=True)
class VariablePath:
    component: dict[str, Any]
    variable: dict[str, Any]


def parse_variable_path(text: Any) -> VariablePath:
    """`SmartChargingCtrlr.RateUnit`, `EVSE@1.Power`, `Connector@1.1.ConnectorType`."""
    if not isinstance(text, str):
        raise InvalidCommand("the variable must be <component>.<variable>")
    match = _VARIABLE_PATH.match(text.strip())
    if match is None:
        raise InvalidCommand(
            "the variable must be <component>[(<instance>)][@<evseId>[.<connectorId>]]"
            ".<variable>[(<instance>)], e.g. SmartChargingCtrlr.RateUnit or EVSE@1.Power"
        )
    component: dict[str, Any] = {"name": match["component"]}
    if match["component_instance"]:
        component["instance"] = match["component_instance"]
    if match["evse"] is not None:
        component["evse"] = {"id": int(match["evse"])}
        if match["connector"] is not None:
            component["evse"]["connectorId"] = int(match["connector"])
    variable: dict[str, Any] = {"name": match["variable"]}
    if match["variable_instance"]:
        variable["instance"] = match["variable_instance"]
    return VariablePath(component, variable)


# ---- the core's commands: charging limits and triggers ----------------


def set_charging_profile(
    profile_id: int,
    purpose: str,
    evse_id: int,
    transaction_id: int | str | None,
    unit: str,
    limit: float,
    number_phases: int | None,
    level: int,
    now: datetime | None = None,
) -> dict[str, Any]:
    """A 2.x SetChargingProfile that holds until replaced or cleared; absolute,
    from a minute ago, as for 1.6 (charging_profiles.set_request)."""
    start = (now or datetime.now(UTC)) - timedelta(minutes=1)
    period: dict[str, Any] = {"startPeriod": 0, "limit": limit}
    if number_phases is not None:
        period["numberPhases"] = number_phases
    profile: dict[str, Any] = {
        "id": profile_id,
        "stackLevel": level,
        "chargingProfilePurpose": PURPOSES.get(purpose, purpose),
        "chargingProfileKind": "Absolute",
        "chargingSchedule": [
            {
                "id": profile_id,
                "startSchedule": format_time(start),
                "chargingRateUnit": unit,
                "chargingSchedulePeriod": [period],
            }
        ],
    }
    if transaction_id is not None:
        profile["transactionId"] = str(transaction_id)
    return {"evseId": evse_id, "chargingProfile": profile}


def trigger_names(version: Version) -> frozenset[str]:
    """Every message a station of the version can be asked for."""
    return TRIGGER_NAMES[version]


def trigger_payload(message: str, evse_id: int | None) -> dict[str, Any]:
    request: dict[str, Any] = {"requestedMessage": message}
    if evse_id is not None:
        request["evse"] = {"id": evse_id}
    return request


def reset_types(version: Version) -> frozenset[str]:
    """The Reset types of the version (2.1 adds ImmediateAndResume)."""
    return RESET_TYPES[version]


def get_variables(paths: list[VariablePath], attribute: str | None = None) -> dict[str, Any]:
    """`attribute`: Actual when None; MaxSet asks for a variable's largest setting."""
    extra = {"attributeType": attribute} if attribute is not None else {}
    return {
        "getVariableData": [
            {"component": p.component, "variable": p.variable, **extra} for p in paths
        ]
    }
