"""Pure: the actuators of CONTRACT §6 -> validated OCPP requests, or why not.

Each actuator has a scope (which keys it is offered on) and a parser that
turns the MQTT value into the OCPP request. Nothing is sent when a value is
not valid; InvalidCommand says why, in words a user can act on.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from connector.commands import InvalidCommand, format_time
from connector.datapoints import SEP, Datapoint

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

# Which keys an actuator is offered on.
STATION = "station"  # <cp>__<actuator> only
CONNECTOR = "connector"  # <cp>__<actuator>__<connectorId> only
BOTH = "both"

URL_SCHEMES = ("http", "https", "ftp", "ftps")
MAX_URL_LENGTH = 512
MAX_SCHEDULE_S = 7 * 24 * 3600
INT32_MAX = 2**31 - 1

# Marks a RemoteStopTransaction whose transaction the bridge looks up.
RUNNING_TRANSACTION = -1


@dataclass(frozen=True)
class Request:
    action: str
    payload: dict[str, Any]


@dataclass(frozen=True)
class Actuator:
    action: str
    scope: str
    example: Any
    build: Callable[[Any, int | None], Request]


def _text(value: Any, what: str, max_length: int) -> str:
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise InvalidCommand(f"{what} must be a string")
    text = str(value).strip()
    if not text:
        raise InvalidCommand(f"{what} must not be empty")
    if len(text) > max_length:
        raise InvalidCommand(f"{what} must be at most {max_length} characters")
    if any(ord(c) < 32 or ord(c) == 127 for c in text):
        raise InvalidCommand(f"{what} must not contain control characters")
    return text


def _whole_number(value: Any, what: str, low: int, high: int) -> int:
    if isinstance(value, bool):
        raise InvalidCommand(f"{what} must be a whole number")
    if isinstance(value, str):
        value = value.strip()
        if not (value.isascii() and value.lstrip("-").isdigit()):
            raise InvalidCommand(f"{what} must be a whole number")
        value = int(value)
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        value = int(value)
    if not isinstance(value, int):
        raise InvalidCommand(f"{what} must be a whole number")
    if not low <= value <= high:
        raise InvalidCommand(f"{what} must be from {low} to {high}")
    return value


def _url(value: Any, what: str) -> str:
    text = _text(value, what, MAX_URL_LENGTH)
    if any(c.isspace() for c in text):
        raise InvalidCommand(f"{what} must not contain spaces")
    try:
        parts = urlsplit(text)
    except ValueError:
        raise InvalidCommand(f"{what} is not a valid URL") from None
    if parts.scheme.lower() not in URL_SCHEMES or not parts.netloc:
        raise InvalidCommand(f"{what} must be an http, https, ftp or ftps URL with a host")
    return text


def remote_start(value: Any, connector_id: int | None) -> Request:
    payload: dict[str, Any] = {"idTag": _text(value, "the idTag", 20)}
    if connector_id is not None:
        payload["connectorId"] = connector_id
    return Request("RemoteStartTransaction", payload)


def remote_stop(value: Any, connector_id: int | None) -> Request:
    if connector_id is not None:
        # Any value: the bridge stops the transaction running on the connector.
        return Request("RemoteStopTransaction", {"transactionId": RUNNING_TRANSACTION})
    transaction_id = _whole_number(value, "the transactionId", 0, INT32_MAX)
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
    key = _text(key, "the key", 50)
    if len(setting) > 500:
        raise InvalidCommand("the configuration value must be at most 500 characters")
    if any(ord(c) < 32 or ord(c) == 127 for c in setting):
        raise InvalidCommand("the configuration value must not contain control characters")
    return Request("ChangeConfiguration", {"key": key, "value": setting.strip()})


def get_configuration(value: Any, connector_id: int | None) -> Request:
    if value is None or (isinstance(value, str) and not value.strip()):
        return Request("GetConfiguration", {})
    return Request("GetConfiguration", {"key": [_text(value, "the key", 50)]})


def data_transfer(value: Any, connector_id: int | None) -> Request:
    message = value
    if isinstance(value, str):
        try:
            message = json.loads(value)
        except ValueError:
            raise InvalidCommand('the value must be a JSON object {"vendorId", ...}') from None
    if not isinstance(message, dict):
        raise InvalidCommand('the value must be a JSON object {"vendorId", ...}')
    unknown = set(message) - {"vendorId", "messageId", "data"}
    if unknown:
        raise InvalidCommand(
            f"unknown field {sorted(unknown)[0]!r}; allowed: vendorId, messageId, data"
        )
    payload = {"vendorId": _text(message.get("vendorId"), "vendorId", 255)}
    if message.get("messageId") is not None:
        payload["messageId"] = _text(message["messageId"], "messageId", 50)
    if message.get("data") is not None:
        if not isinstance(message["data"], str):
            raise InvalidCommand("data must be a string (JSON-encode structured data)")
        payload["data"] = message["data"]
    return Request("DataTransfer", payload)


def get_composite_schedule(value: Any, connector_id: int | None) -> Request:
    duration = _whole_number(value, "the duration", 1, MAX_SCHEDULE_S)
    return Request("GetCompositeSchedule", {"connectorId": connector_id or 0, "duration": duration})


def update_firmware(value: Any, connector_id: int | None, now: datetime | None = None) -> Request:
    location = _url(value, "the firmware URL")
    retrieve = format_time(now or datetime.now(UTC))
    return Request("UpdateFirmware", {"location": location, "retrieveDate": retrieve})


def get_diagnostics(value: Any, connector_id: int | None) -> Request:
    return Request("GetDiagnostics", {"location": _url(value, "the upload URL")})


ACTUATORS: dict[str, Actuator] = {
    REMOTE_START: Actuator("RemoteStartTransaction", BOTH, "TAG1", remote_start),
    REMOTE_STOP: Actuator("RemoteStopTransaction", BOTH, 12345, remote_stop),
    CHANGE_AVAILABILITY: Actuator("ChangeAvailability", BOTH, "Inoperative", change_availability),
    RESET: Actuator("Reset", STATION, "Soft", reset),
    UNLOCK_CONNECTOR: Actuator("UnlockConnector", CONNECTOR, True, unlock_connector),
    CLEAR_CHARGING_PROFILE: Actuator("ClearChargingProfile", BOTH, True, clear_charging_profile),
    CHANGE_CONFIGURATION: Actuator(
        "ChangeConfiguration", STATION, "HeartbeatInterval=300", change_configuration
    ),
    GET_CONFIGURATION: Actuator("GetConfiguration", STATION, "", get_configuration),
    DATA_TRANSFER: Actuator("DataTransfer", STATION, '{"vendorId": "com.example"}', data_transfer),
    GET_COMPOSITE_SCHEDULE: Actuator("GetCompositeSchedule", BOTH, 3600, get_composite_schedule),
    UPDATE_FIRMWARE: Actuator(
        "UpdateFirmware", STATION, "https://example.com/firmware.bin", update_firmware
    ),
    GET_DIAGNOSTICS: Actuator(
        "GetDiagnostics", STATION, "ftp://example.com/upload/", get_diagnostics
    ),
}


def offered_on(actuator: str, connector_id: int | None) -> bool:
    """Whether the actuator has a key for the station (None) or for a connector."""
    scope = ACTUATORS[actuator].scope if actuator in ACTUATORS else BOTH
    if connector_id is None:
        return scope != CONNECTOR
    return scope != STATION


def build(actuator: str, value: Any, connector_id: int | None) -> Request:
    """The request for an actuator message; InvalidCommand when it cannot be sent.

    A connector key for connector 0 means the station, as the station key does.
    """
    if connector_id == 0:
        connector_id = None
    if not offered_on(actuator, connector_id):
        if connector_id is None:
            raise InvalidCommand(
                f"{actuator} needs a connector key: <cp>__{actuator}__<connectorId>, from 1"
            )
        raise InvalidCommand(f"{actuator} applies to the whole station: use <cp>__{actuator}")
    return ACTUATORS[actuator].build(value, connector_id)


def result_datapoints(
    cp_id: str, request: Request, answer: dict[str, Any], now: int
) -> list[Datapoint]:
    """What an answer carries beyond its status, as datapoints (CONTRACT §6)."""
    if request.action == "DataTransfer":
        prefix = f"{cp_id}{SEP}DataTransfer{SEP}response{SEP}"
        return [
            Datapoint(prefix + "status", answer.get("status"), now),
            Datapoint(prefix + "data", answer.get("data"), now),
        ]
    if request.action == "GetCompositeSchedule":
        if answer.get("status") != "Accepted":
            return []
        connector_id = answer.get("connectorId", request.payload["connectorId"])
        schedule = answer.get("chargingSchedule") or {}
        periods = schedule.get("chargingSchedulePeriod") or [{}]
        prefix = f"{cp_id}{SEP}CompositeSchedule{SEP}{connector_id}{SEP}"
        return [
            Datapoint(prefix + "limit", periods[0].get("limit"), now),
            Datapoint(prefix + "chargingRateUnit", schedule.get("chargingRateUnit"), now),
        ]
    if request.action == "GetDiagnostics":
        return [Datapoint(f"{cp_id}{SEP}GetDiagnostics{SEP}fileName", answer.get("fileName"), now)]
    return []
