"""Pure: actuator values -> OCPP 2.0.1/2.1 requests (CONTRACT §8), or why not.

The same values as for a 1.6 station give the 2.x call that does the same
thing; the 2.x names are accepted too where 2.x has its own (`OnIdle`).
Nothing here does I/O. actuators.py holds the registry that picks, per
station version, between these builders and the 1.6 ones.
"""

from __future__ import annotations

import itertools
import re
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from ocpp.v21.enums import MessageTriggerEnumType as Trigger21
from ocpp.v201.enums import MessageTriggerEnumType as Trigger201

from connector.core.commands import (
    InvalidCommand,
    checked_text,
    checked_url,
    checked_whole,
    format_time,
    json_object,
    only_fields,
)

# 0-5 of CONTRACT §8, in the order of 1.6's TriggerMessage values.
TRIGGER_MESSAGES: tuple[str, ...] = (
    "BootNotification",
    "LogStatusNotification",
    "FirmwareStatusNotification",
    "Heartbeat",
    "MeterValues",
    "StatusNotification",
)
TRIGGER_NAMES: dict[str, frozenset[str]] = {
    "2.0.1": frozenset(t.value for t in Trigger201),
    "2.1": frozenset(t.value for t in Trigger21),
}

# 1.6's profile purposes -> 2.x's: only the station-wide one was renamed.
PURPOSES = {"ChargePointMaxProfile": "ChargingStationMaxProfile"}

RESET_TYPES = {"soft": "OnIdle", "hard": "Immediate", "onidle": "OnIdle", "immediate": "Immediate"}
RESET_TYPES_21 = {**RESET_TYPES, "immediateandresume": "ImmediateAndResume"}

MONITOR_TYPES = ("Periodic", "PeriodicClockAligned")
DEFAULT_SEVERITY = 8  # "Debug", as CONTRACT §8 asks when none is given
MAX_INTERVAL_S = 7 * 24 * 3600

# `<component>[(<instance>)][@<evse>[.<connector>]].<variable>[(<instance>)]`, the
# key syntax of CONTRACT §8 with a `.` between component and variable.
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


def parse_trigger(value: Any, version: str) -> str:
    """0-5 as in CONTRACT §8, or any trigger name of the version."""
    if isinstance(value, bool):
        raise InvalidCommand("trigger must be 0-5 or a message name")
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value.strip())
    if isinstance(value, int):
        if 0 <= value < len(TRIGGER_MESSAGES):
            return TRIGGER_MESSAGES[value]
        raise InvalidCommand(f"trigger {value!r} is not 0-5")
    names = TRIGGER_NAMES.get(version, TRIGGER_NAMES["2.0.1"])
    if isinstance(value, str):
        for name in names:
            if value.strip().lower() == name.lower():
                return name
    raise InvalidCommand(f"unknown trigger; allowed: 0-5 or {', '.join(sorted(names))}")


def trigger_message(message: str, evse_id: int | None) -> dict[str, Any]:
    request: dict[str, Any] = {"requestedMessage": message}
    if evse_id is not None:
        request["evse"] = {"id": evse_id}
    return request


# ---- the actuators of §6 and §8 ---------------------------------------
# Each takes (value, evseId or None for the station key, version) and returns
# (action, payload).

Built = tuple[str, dict[str, Any]]


def remote_start(value: Any, evse_id: int | None, version: str) -> Built:
    payload: dict[str, Any] = {
        "idToken": {"idToken": checked_text(value, "the idToken", 36), "type": "Central"},
        "remoteStartId": fresh_id(),
    }
    if evse_id is not None:
        payload["evseId"] = evse_id
    return "RequestStartTransaction", payload


def remote_stop(value: Any, evse_id: int | None, version: str) -> Built:
    if evse_id is not None:
        # Any value: the command runner stops the transaction running there.
        return "RequestStopTransaction", {"transactionId": None}
    return "RequestStopTransaction", {"transactionId": checked_text(value, "the transactionId", 36)}


def change_availability(value: Any, evse_id: int | None, version: str) -> Built:
    text = str(value).strip().lower() if isinstance(value, str | bool) else ""
    if text in ("operative", "true"):
        status = "Operative"
    elif text in ("inoperative", "false"):
        status = "Inoperative"
    else:
        raise InvalidCommand("availability must be Operative, Inoperative, true or false")
    payload: dict[str, Any] = {"operationalStatus": status}
    if evse_id is not None:
        payload["evse"] = {"id": evse_id}
    return "ChangeAvailability", payload


def reset(value: Any, evse_id: int | None, version: str) -> Built:
    types = RESET_TYPES_21 if version == "2.1" else RESET_TYPES
    if isinstance(value, str) and value.strip().lower() in types:
        return "Reset", {"type": types[value.strip().lower()]}
    names = ", ".join(sorted(set(types.values())))
    raise InvalidCommand(f"reset must be Soft or Hard (or {names})")


def unlock_connector(value: Any, evse_id: int | None, version: str) -> Built:
    assert evse_id is not None  # the scope guarantees it
    return "UnlockConnector", {"evseId": evse_id, "connectorId": 1}


def clear_charging_profile(value: Any, evse_id: int | None, version: str) -> Built:
    # Sent by charging control, which knows the ids it set on this EVSE.
    return "ClearChargingProfile", {"chargingProfileCriteria": {"evseId": evse_id or 0}}


def change_configuration(value: Any, evse_id: int | None, version: str) -> Built:
    if not isinstance(value, str) or "=" not in value:
        raise InvalidCommand("the value must be <component>.<variable>=<value>")
    name, _, setting = value.partition("=")
    path = parse_variable_path(name)
    if len(setting) > 1000:
        raise InvalidCommand("the value must be at most 1000 characters")
    if any(ord(c) < 32 or ord(c) == 127 for c in setting):
        raise InvalidCommand("the value must not contain control characters")
    data = {
        "attributeValue": setting.strip(),
        "component": path.component,
        "variable": path.variable,
    }
    return "SetVariables", {"setVariableData": [data]}


def get_variables(paths: list[VariablePath]) -> dict[str, Any]:
    return {"getVariableData": [{"component": p.component, "variable": p.variable} for p in paths]}


def get_configuration(value: Any, evse_id: int | None, version: str) -> Built:
    if value is None or (isinstance(value, str) and not value.strip()):
        return "GetBaseReport", {"requestId": fresh_id(), "reportBase": "FullInventory"}
    return "GetVariables", get_variables([parse_variable_path(value)])


def data_transfer(value: Any, evse_id: int | None, version: str) -> Built:
    message = json_object(value, '{"vendorId", "messageId"?, "data"?}')
    only_fields(message, ("vendorId", "messageId", "data"))
    payload: dict[str, Any] = {"vendorId": checked_text(message.get("vendorId"), "vendorId", 255)}
    if message.get("messageId") is not None:
        payload["messageId"] = checked_text(message["messageId"], "messageId", 50)
    if message.get("data") is not None:
        payload["data"] = message["data"]  # 2.x carries any JSON here
    return "DataTransfer", payload


def get_composite_schedule(value: Any, evse_id: int | None, version: str) -> Built:
    duration = checked_whole(value, "the duration", 1, MAX_INTERVAL_S)
    return "GetCompositeSchedule", {"evseId": evse_id or 0, "duration": duration}


def update_firmware(value: Any, evse_id: int | None, version: str) -> Built:
    firmware = {
        "location": checked_url(value, "the firmware URL"),
        "retrieveDateTime": format_time(datetime.now(UTC)),
    }
    return "UpdateFirmware", {"requestId": fresh_id(), "firmware": firmware}


def get_diagnostics(value: Any, evse_id: int | None, version: str) -> Built:
    return "GetLog", {
        "logType": "DiagnosticsLog",
        "requestId": fresh_id(),
        "log": {"remoteLocation": checked_url(value, "the upload URL")},
    }


def set_variable_monitoring(value: Any, evse_id: int | None, version: str) -> Built:
    shape = '{"component", "variable", "type", "interval", ...}'
    message = json_object(value, shape)
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
        if version != "2.1":
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
    return "SetVariableMonitoring", {"setMonitoringData": [data]}


def clear_variable_monitoring(value: Any, evse_id: int | None, version: str) -> Built:
    return "ClearVariableMonitoring", {"id": [checked_whole(value, "the monitor id", 0, 2**31 - 1)]}


def adjust_periodic_event_stream(value: Any, evse_id: int | None, version: str) -> Built:
    message = json_object(value, '{"id", "interval"?, "values"?}')
    only_fields(message, ("id", "interval", "values"))
    params: dict[str, int] = {}
    if message.get("interval") is not None:
        params["interval"] = checked_whole(message["interval"], "interval", 0, MAX_INTERVAL_S)
    if message.get("values") is not None:
        params["values"] = checked_whole(message["values"], "values", 0, 100_000)
    stream_id = checked_whole(message.get("id"), "the stream id", 0, 2**31 - 1)
    return "AdjustPeriodicEventStream", {"id": stream_id, "params": params}


def get_periodic_event_stream(value: Any, evse_id: int | None, version: str) -> Built:
    return "GetPeriodicEventStream", {}
