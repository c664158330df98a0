"""Pure: the registry of actuators (CONTRACT §3, §6, §8) -> validated OCPP requests.

Each actuator has a scope (which keys it is offered on), an example value,
and a builder per protocol: one for OCPP 1.6 (here) and one for OCPP 2.0.1
and 2.1 (requests_v2.py), each turning the MQTT value into that version's
request. An actuator without a builder for a version is not offered to its
stations. Nothing is sent when a value is not valid; InvalidCommand says
why, in words a user can act on.

The two core actuators are here too: execute_send_charging_profile (its
value is checked here, and charging_control.py decides the profiles) and
execute_trigger_message.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from connector.core import commands as cmd
from connector.core import requests_v2 as v2
from connector.core.commands import (
    InvalidCommand,
    checked_text,
    checked_url,
    checked_whole,
    format_time,
    json_object,
    only_fields,
)
from connector.core.datapoints import SEP, Datapoint
from connector.core.datapoints_v2 import stream_settings

REMOTE_START = "execute_remote_start_transaction"
REMOTE_STOP = "execute_remote_stop_transaction"
CHANGE_AVAILABILITY = "execute_change_availability"
RESET = "execute_reset"
UNLOCK_CONNECTOR = "execute_unlock_connector"
CLEAR_CHARGING_PROFILE = "execute_clear_charging_profile"
CHANGE_CONFIGURATION = "execute_change_configuration"
GET_CONFIGURATION = "execute_get_configuration"
DATA_TRANSFER = "execute_data_transfer"
GET_COMPOSITE_SCHEDULE = "execute_get_composite_schedule"
UPDATE_FIRMWARE = "execute_update_firmware"
GET_DIAGNOSTICS = "execute_get_diagnostics"
SET_VARIABLE_MONITORING = "execute_set_variable_monitoring"
CLEAR_VARIABLE_MONITORING = "execute_clear_variable_monitoring"
ADJUST_PERIODIC_EVENT_STREAM = "execute_adjust_periodic_event_stream"
GET_PERIODIC_EVENT_STREAM = "execute_get_periodic_event_stream"
# Not an OCPP call: removes what the connector keeps on the broker for the
# station (CONTRACT §10). Offered whenever MQTT_DIRECT_TOPICS is on.
FORGET_STATION = "execute_forget_station"
FORGET = "ForgetStation"

# Which keys an actuator is offered on.
STATION = "station"  # <cp>__<actuator> only
CONNECTOR = "connector"  # <cp>__<actuator>__<connectorId> only
BOTH = "both"

MAX_SCHEDULE_S = 7 * 24 * 3600
INT32_MAX = 2**31 - 1

# Marks a RemoteStopTransaction whose transaction the bridge looks up.
RUNNING_TRANSACTION = -1


@dataclass(frozen=True)
class Request:
    action: str
    payload: dict[str, Any]


V2 = ("2.0.1", "2.1")
ALL_VERSIONS = ("1.6", *V2)


@dataclass(frozen=True)
class Actuator:
    scope: str
    example: Any
    # OCPP 1.6: (value, connectorId or None) -> Request.
    build_v16: Callable[[Any, int | None], Request] | None
    # OCPP 2.x: (value, evseId or None, version) -> (action, payload).
    build_v2: Callable[[Any, int | None, str], tuple[str, dict[str, Any]]] | None
    versions: tuple[str, ...] = ALL_VERSIONS


def remote_start(value: Any, connector_id: int | None) -> Request:
    payload: dict[str, Any] = {"idTag": checked_text(value, "the idTag", 20)}
    if connector_id is not None:
        payload["connectorId"] = connector_id
    return Request("RemoteStartTransaction", payload)


def remote_stop(value: Any, connector_id: int | None) -> Request:
    if connector_id is not None:
        # Any value: the bridge stops the transaction running on the connector.
        return Request("RemoteStopTransaction", {"transactionId": RUNNING_TRANSACTION})
    transaction_id = checked_whole(value, "the transactionId", 0, INT32_MAX)
    return Request("RemoteStopTransaction", {"transactionId": transaction_id})


def change_availability(value: Any, connector_id: int | None) -> Request:
    if isinstance(value, bool):
        kind = "Operative" if value else "Inoperative"
    elif isinstance(value, str) and value.strip().lower() in ("operative", "true"):
        kind = "Operative"
    elif isinstance(value, str) and value.strip().lower() in ("inoperative", "false"):
        kind = "Inoperative"
    else:
        raise InvalidCommand("availability must be Operative, Inoperative, true or false")
    return Request("ChangeAvailability", {"connectorId": connector_id or 0, "type": kind})


def reset(value: Any, connector_id: int | None) -> Request:
    if isinstance(value, str) and value.strip().lower() in ("soft", "hard"):
        return Request("Reset", {"type": value.strip().capitalize()})
    raise InvalidCommand("reset must be Soft or Hard")


def unlock_connector(value: Any, connector_id: int | None) -> Request:
    assert connector_id is not None  # the scope guarantees it
    return Request("UnlockConnector", {"connectorId": connector_id})


def clear_charging_profile(value: Any, connector_id: int | None) -> Request:
    # Sent by charging control, which knows the ids this connector set.
    return Request("ClearChargingProfile", {"connectorId": connector_id or 0})


def change_configuration(value: Any, connector_id: int | None) -> Request:
    if not isinstance(value, str) or "=" not in value:
        raise InvalidCommand("the value must be Key=Value")
    key, _, setting = value.partition("=")
    key = checked_text(key, "the key", 50)
    if len(setting) > 500:
        raise InvalidCommand("the configuration value must be at most 500 characters")
    if any(ord(c) < 32 or ord(c) == 127 for c in setting):
        raise InvalidCommand("the configuration value must not contain control characters")
    return Request("ChangeConfiguration", {"key": key, "value": setting.strip()})


def get_configuration(value: Any, connector_id: int | None) -> Request:
    if value is None or (isinstance(value, str) and not value.strip()):
        return Request("GetConfiguration", {})
    return Request("GetConfiguration", {"key": [checked_text(value, "the key", 50)]})


def data_transfer(value: Any, connector_id: int | None) -> Request:
    message = json_object(value, '{"vendorId", ...}')
    only_fields(message, ("vendorId", "messageId", "data"))
    payload = {"vendorId": checked_text(message.get("vendorId"), "vendorId", 255)}
    if message.get("messageId") is not None:
        payload["messageId"] = checked_text(message["messageId"], "messageId", 50)
    if message.get("data") is not None:
        if not isinstance(message["data"], str):
            raise InvalidCommand("data must be a string (JSON-encode structured data)")
        payload["data"] = message["data"]
    return Request("DataTransfer", payload)


def get_composite_schedule(value: Any, connector_id: int | None) -> Request:
    duration = checked_whole(value, "the duration", 1, MAX_SCHEDULE_S)
    return Request("GetCompositeSchedule", {"connectorId": connector_id or 0, "duration": duration})


def update_firmware(value: Any, connector_id: int | None, now: datetime | None = None) -> Request:
    location = checked_url(value, "the firmware URL")
    retrieve = format_time(now or datetime.now(UTC))
    return Request("UpdateFirmware", {"location": location, "retrieveDate": retrieve})


def get_diagnostics(value: Any, connector_id: int | None) -> Request:
    return Request("GetDiagnostics", {"location": checked_url(value, "the upload URL")})


def send_charging_profile(value: Any, connector_id: int | None) -> Request:
    # Checked here; charging_control.py builds the profiles for the station.
    return Request("SetChargingProfile", {"limit": cmd.parse_power_limit(value)})


def send_charging_profile_v2(value: Any, evse_id: int | None, version: str) -> tuple[str, Any]:
    return "SetChargingProfile", {"limit": cmd.parse_power_limit(value)}


def trigger_message(value: Any, connector_id: int | None) -> Request:
    request = cmd.trigger_message_request(cmd.parse_trigger(value), connector_id)
    return Request("TriggerMessage", request)


def trigger_message_v2(value: Any, evse_id: int | None, version: str) -> tuple[str, Any]:
    return "TriggerMessage", v2.trigger_message(v2.parse_trigger(value, version), evse_id)


def forget_station(value: Any, connector_id: int | None) -> Request:
    return Request(FORGET, {})


def forget_station_v2(value: Any, evse_id: int | None, version: str) -> tuple[str, Any]:
    return FORGET, {}


ACTUATORS: dict[str, Actuator] = {
    FORGET_STATION: Actuator(STATION, True, forget_station, forget_station_v2),
    cmd.SEND_CHARGING_PROFILE: Actuator(
        BOTH, 11000, send_charging_profile, send_charging_profile_v2
    ),
    cmd.TRIGGER_MESSAGE: Actuator(BOTH, 4, trigger_message, trigger_message_v2),
    REMOTE_START: Actuator(BOTH, "TAG1", remote_start, v2.remote_start),
    REMOTE_STOP: Actuator(BOTH, 12345, remote_stop, v2.remote_stop),
    CHANGE_AVAILABILITY: Actuator(BOTH, "Inoperative", change_availability, v2.change_availability),
    RESET: Actuator(STATION, "Soft", reset, v2.reset),
    UNLOCK_CONNECTOR: Actuator(CONNECTOR, True, unlock_connector, v2.unlock_connector),
    CLEAR_CHARGING_PROFILE: Actuator(BOTH, True, clear_charging_profile, v2.clear_charging_profile),
    CHANGE_CONFIGURATION: Actuator(
        STATION, "HeartbeatInterval=300", change_configuration, v2.change_configuration
    ),
    GET_CONFIGURATION: Actuator(STATION, "", get_configuration, v2.get_configuration),
    DATA_TRANSFER: Actuator(
        STATION, '{"vendorId": "com.example"}', data_transfer, v2.data_transfer
    ),
    GET_COMPOSITE_SCHEDULE: Actuator(BOTH, 3600, get_composite_schedule, v2.get_composite_schedule),
    UPDATE_FIRMWARE: Actuator(
        STATION, "https://example.com/firmware.bin", update_firmware, v2.update_firmware
    ),
    GET_DIAGNOSTICS: Actuator(
        STATION, "ftp://example.com/upload/", get_diagnostics, v2.get_diagnostics
    ),
    SET_VARIABLE_MONITORING: Actuator(
        STATION,
        '{"component": "EVSE", "evseId": 1, "variable": "Power", "type": "Periodic", '
        '"interval": 10, "stream": {"interval": 1, "values": 10}}',
        None,
        v2.set_variable_monitoring,
        V2,
    ),
    CLEAR_VARIABLE_MONITORING: Actuator(STATION, 1, None, v2.clear_variable_monitoring, V2),
    ADJUST_PERIODIC_EVENT_STREAM: Actuator(
        STATION, '{"id": 1, "interval": 5}', None, v2.adjust_periodic_event_stream, ("2.1",)
    ),
    GET_PERIODIC_EVENT_STREAM: Actuator(
        STATION, True, None, v2.get_periodic_event_stream, ("2.1",)
    ),
}


def offered_on(actuator: str, connector_id: int | None, version: str = "1.6") -> bool:
    """Whether the actuator has a key for the station (None) or for a connector
    (an EVSE on 2.x), on a station of that version."""
    entry = ACTUATORS.get(actuator)
    if entry is None or version not in entry.versions:
        return False
    if connector_id is None:
        return entry.scope != CONNECTOR
    return entry.scope != STATION


def build(actuator: str, value: Any, connector_id: int | None, version: str = "1.6") -> Request:
    """The request for an actuator message to a station of that OCPP version;
    InvalidCommand when it cannot be sent.

    A connector key for connector 0 means the station, as the station key does.
    """
    if connector_id == 0:
        connector_id = None
    entry = ACTUATORS.get(actuator)
    if entry is None:
        raise InvalidCommand(f"{actuator} is not an actuator")
    if version not in entry.versions:
        raise InvalidCommand(
            f"{actuator} needs OCPP {' or '.join(entry.versions)}; the station speaks {version}"
        )
    if not offered_on(actuator, connector_id, version):
        if connector_id is None:
            raise InvalidCommand(
                f"{actuator} needs a connector key: <cp>__{actuator}__<connectorId>, from 1"
            )
        raise InvalidCommand(f"{actuator} applies to the whole station: use <cp>__{actuator}")
    if version == "1.6":
        assert entry.build_v16 is not None
        return entry.build_v16(value, connector_id)
    assert entry.build_v2 is not None
    action, payload = entry.build_v2(value, connector_id, version)
    return Request(action, payload)


def result_datapoints(
    cp_id: str, request: Request, answer: dict[str, Any], now: int
) -> list[Datapoint]:
    """What an answer carries beyond its status, as datapoints (CONTRACT §6)."""
    if request.action == "DataTransfer":
        prefix = f"{cp_id}{SEP}DataTransfer{SEP}response{SEP}"
        data = answer.get("data")
        if data is not None and not isinstance(data, str | int | float | bool):
            data = json.dumps(data)  # 2.x may answer with any JSON; values are scalars
        return [
            Datapoint(prefix + "status", answer.get("status"), now),
            Datapoint(prefix + "data", data, now),
        ]
    if request.action == "GetCompositeSchedule":
        if answer.get("status") != "Accepted":
            return []
        # 1.6: connectorId and chargingSchedule; 2.x: schedule with evseId.
        schedule = answer.get("chargingSchedule") or answer.get("schedule") or {}
        connector_id = answer.get(
            "connectorId",
            schedule.get(
                "evseId", request.payload.get("connectorId", request.payload.get("evseId"))
            ),
        )
        periods = schedule.get("chargingSchedulePeriod") or [{}]
        prefix = f"{cp_id}{SEP}CompositeSchedule{SEP}{connector_id}{SEP}"
        return [
            Datapoint(prefix + "limit", periods[0].get("limit"), now),
            Datapoint(prefix + "chargingRateUnit", schedule.get("chargingRateUnit"), now),
        ]
    if request.action == "GetDiagnostics":
        return [Datapoint(f"{cp_id}{SEP}GetDiagnostics{SEP}fileName", answer.get("fileName"), now)]
    if request.action == "GetLog":
        return [Datapoint(f"{cp_id}{SEP}GetLog{SEP}filename", answer.get("filename"), now)]
    if request.action == "SetVariableMonitoring":
        results = answer.get("setMonitoringResult") or [{}]
        prefix = f"{cp_id}{SEP}SetVariableMonitoring{SEP}"
        return [
            Datapoint(prefix + "id", results[0].get("id"), now),
            Datapoint(prefix + "status", results[0].get("status"), now),
        ]
    if request.action == "GetPeriodicEventStream":
        points = []
        for stream in answer.get("constantStreamData") or []:
            points += stream_settings(cp_id, stream, now)
        return points
    return []
