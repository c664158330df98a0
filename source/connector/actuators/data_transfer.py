"""execute_data_transfer: `{"vendorId", "messageId"?, "data"?}` (README "Actuators", "OCPP 2.0.1
and 2.1 stations")."""

from __future__ import annotations

from typing import Any

from connector.actuators import Actuator, Request, Scope
from connector.core.commands import InvalidCommand, checked_text, json_object, only_fields
from connector.core.datapoints import SEP, Datapoint
from connector.core.strict_json import dumps
from connector.versions import Family, Version

SHAPE = '{"vendorId", "messageId"?, "data"?}'


def _checked(value: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    message = json_object(value, SHAPE)
    only_fields(message, ("vendorId", "messageId", "data"))
    payload: dict[str, Any] = {"vendorId": checked_text(message.get("vendorId"), "vendorId", 255)}
    if message.get("messageId") is not None:
        payload["messageId"] = checked_text(message["messageId"], "messageId", 50)
    return message, payload


def build_v16(value: Any, connector_id: int | None, version: Version) -> Request:
    message, payload = _checked(value)
    if message.get("data") is not None:
        if not isinstance(message["data"], str):
            raise InvalidCommand("data must be a string (JSON-encode structured data)")
        payload["data"] = message["data"]
    return Request("DataTransfer", payload)


def build_v2(value: Any, evse_id: int | None, version: Version) -> Request:
    message, payload = _checked(value)
    if message.get("data") is not None:
        payload["data"] = message["data"]  # 2.x carries any JSON here
    return Request("DataTransfer", payload)


DATA_TRANSFER = ("DataTransfer__response__status", "DataTransfer__response__data")


def results(cp_id: str, request: Request, answer: dict[str, Any], now: int) -> list[Datapoint]:
    prefix = f"{cp_id}{SEP}DataTransfer{SEP}response{SEP}"
    data = answer.get("data")
    if data is not None and not isinstance(data, str | int | float | bool):
        data = dumps(data)  # 2.x may answer with any JSON; values are scalars
    return [
        Datapoint(prefix + "status", answer.get("status"), now),
        Datapoint(prefix + "data", data, now),
    ]


ACTUATOR = Actuator(
    name="execute_data_transfer",
    scope=Scope.STATION,
    example='{"vendorId": "com.example"}',
    builders={Family.OCPP16: build_v16, Family.OCPP2: build_v2},
    results=results,
    result_names={Family.OCPP16: DATA_TRANSFER, Family.OCPP2: DATA_TRANSFER},
)
