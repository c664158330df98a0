"""OCPP 2.0.1/2.1 payloads -> the datapoint keys of README "OCPP 2.0.1 and 2.1 stations" (pure, no
I/O).

The same things get the same keys as for a 1.6 station: in every key, the
position of 1.6's connectorId holds the EVSE id (0 is the station), meter
values go through 1.6's mapping, and nested fields are flattened with `.`.
Device model variables (NotifyReport, NotifyEvent, GetVariables, periodic
event streams) all land on `<cp>__Variable__<component>__<variable>`.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Mapping
from typing import Any

from connector.core import strict_json
from connector.core.datapoints import (
    Datapoint,
    Mapped,
    is_scalar,
    make_key,
    meter_values,
    parse_timestamp,
    shown,
)
from connector.core.secrets import is_secret

# TransactionEvent fields published as `<cp>__TransactionEvent__<evseId>__<field>`.
TRANSACTION_EVENT_FIELDS = (
    "eventType",
    "triggerReason",
    "seqNo",
    "timestamp",
    "offline",
    "transactionInfo.transactionId",
    "transactionInfo.chargingState",
    "transactionInfo.stoppedReason",
    "transactionInfo.remoteStartId",
    "idToken.idToken",
    "numberOfPhasesUsed",
)


# A JSON number, exactly: "0123" or "1e" stay strings.
_JSON_NUMBER = re.compile(r"^-?(0|[1-9]\d*)(\.\d+)?([eE][+-]?\d+)?$")
# Longer numeric strings stay strings: no real variable needs more digits,
# and parsing is then bounded whatever a station sends.
MAX_NUMBER_TEXT = 40
# Integers beyond this stay strings: a JSON reader in JavaScript (Node-RED,
# BEMCom's frontend) would round them.
MAX_EXACT_INT = 2**53
# 10^308 is the largest power of ten a float holds; a multiplier beyond it
# cannot give a finite value (and 10**10_000_000 as an integer took seconds).
MAX_MULTIPLIER = 308


def flatten(payload: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Scalar fields at any depth of nested objects, named with `.`; lists are left out."""
    flat: dict[str, Any] = {}
    for name, value in payload.items():
        dotted = f"{prefix}{name}"
        if isinstance(value, Mapping):
            flat.update(flatten(value, dotted + "."))
        elif is_scalar(value):
            flat[dotted] = value
    return flat


def boot_notification(cp_id: str, payload: Mapping[str, Any], now: int) -> list[Datapoint]:
    """`chargingStation.vendorName`, `chargingStation.model`, `reason`, …"""
    prefix = make_key(cp_id, "BootNotification")
    return [Datapoint(make_key(prefix, n), v, now) for n, v in flatten(payload).items()]


def status_notification(cp_id: str, payload: Mapping[str, Any], now: int) -> list[Datapoint]:
    """`…__StatusNotification__<evseId>__connectorStatus`, `…__connectorId`, `…__timestamp`."""
    prefix = make_key(cp_id, "StatusNotification", payload["evseId"])
    return [
        Datapoint(make_key(prefix, field), payload[field], now)
        for field in ("connectorStatus", "connectorId", "timestamp")
        if field in payload
    ]


def transaction_event(
    cp_id: str, evse_id: int, payload: Mapping[str, Any], now: int
) -> list[Datapoint]:
    """The event's fields, each with the event's own timestamp (offline events
    keep theirs), or the time of receipt when it cannot be read."""
    stamp = parse_timestamp(payload.get("timestamp")) or now
    flat = flatten(payload)
    prefix = make_key(cp_id, "TransactionEvent", evse_id)
    points = [
        Datapoint(make_key(prefix, field), flat[field], stamp)
        for field in TRANSACTION_EVENT_FIELDS
        if field in flat
    ]
    transaction_id = flat.get("transactionInfo.transactionId")
    points.append(
        Datapoint(make_key(cp_id, "MeterValues", evse_id, "transactionId"), transaction_id, stamp)
    )
    return points


def _component_part(component: Mapping[str, Any]) -> str:
    text = str(component["name"])
    if component.get("instance"):
        text += f"({component['instance']})"
    evse = component.get("evse")
    if isinstance(evse, Mapping) and "id" in evse:
        text += f"@{evse['id']}"
        if evse.get("connectorId") is not None:
            text += f".{evse['connectorId']}"
    return text


def variable_key(cp_id: str, component: Mapping[str, Any], variable: Mapping[str, Any]) -> str:
    """`<cp>__Variable__<component>__<variable>`: an instance in parentheses, an EVSE
    as `@<evseId>` and `.<connectorId>` (`CP_1__Variable__Connector@1.1__ConnectorType`)."""
    name = str(variable["name"])
    if variable.get("instance"):
        name += f"({variable['instance']})"
    return make_key(cp_id, "Variable", _component_part(component), name)


def sampled_value_from_v2(sampled: Mapping[str, Any]) -> dict[str, Any]:
    """An OCPP 2.0.1/2.1 SampledValue in the 1.6 shape, so both map to the same keys.

    2.x sends the value as a number and the unit as `unitOfMeasure` with a
    power-of-ten `multiplier`, applied first (13 kWh with multiplier 1 is
    130 kWh); the canonical units of 1.6 follow. A missing unit means the
    measurand's natural unit, as for 1.6.
    """
    converted = {k: sampled[k] for k in ("measurand", "phase", "location") if k in sampled}
    unit_of_measure = sampled.get("unitOfMeasure")
    multiplier = 0
    if isinstance(unit_of_measure, Mapping):
        if unit_of_measure.get("unit") is not None:
            converted["unit"] = unit_of_measure["unit"]
        raw = unit_of_measure.get("multiplier", 0)
        multiplier = raw if isinstance(raw, int) and not isinstance(raw, bool) else 0
    value = sampled.get("value")
    if isinstance(value, int | float) and not isinstance(value, bool) and multiplier:
        value = scaled(value, multiplier)
    converted["value"] = value
    return converted


def scaled(value: float, multiplier: int) -> float | str:
    """value * 10^multiplier in float arithmetic, in constant time. What no float
    holds is returned as text (`13e10000000`), which the mapping then skips
    as not a number, naming it."""
    if -MAX_MULTIPLIER - 16 <= multiplier <= MAX_MULTIPLIER:
        try:
            result = float(value) * 10.0**multiplier
        except OverflowError:
            pass
        else:
            if math.isfinite(result):
                return result
    return f"{shown(value)}e{multiplier}"


def entries_v16(meter_value: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """2.x MeterValue entries in the 1.6 shape (see sampled_value_from_v2)."""
    return [
        {
            "timestamp": entry.get("timestamp"),
            "sampledValue": [
                sampled_value_from_v2(sampled)
                for sampled in entry.get("sampledValue") or []
                if isinstance(sampled, Mapping)
            ],
        }
        for entry in meter_value
        if isinstance(entry, Mapping)
    ]


def meter_values_v2(
    cp_id: str,
    evse_id: int,
    meter_value: list[Mapping[str, Any]],
    now: int,
    transaction_id: str | None = None,
) -> Mapped:
    """2.x MeterValues (or TransactionEvent.meterValue): the same keys as 1.6,
    with the EVSE id where 1.6 has the connector id (README "OCPP 2.0.1 and 2.1 stations")."""
    return meter_values(cp_id, evse_id, entries_v16(meter_value), now, transaction_id)


def message_fields(
    cp_id: str, action: str, payload: Mapping[str, Any], now: int
) -> list[Datapoint]:
    """`<cp>__<Message>__<field>` for every scalar field, flattened with `.`."""
    prefix = make_key(cp_id, action)
    return [Datapoint(make_key(prefix, n), v, now) for n, v in flatten(payload).items()]


def variable_value(text: Any) -> Any:
    """A variable's value as sent (2.x sends strings), a number where it is one
    that JSON readers hold exactly: `"1e999"` or a 30-digit serial stay strings."""
    if isinstance(text, str) and len(text) <= MAX_NUMBER_TEXT and _JSON_NUMBER.match(text):
        number = json.loads(text)
        if isinstance(number, int) and abs(number) <= MAX_EXACT_INT:
            return number
        if isinstance(number, float) and math.isfinite(number):
            return number
        return text
    if isinstance(text, bool | int | float | str) or text is None:
        return text
    return strict_json.dumps(text)


def report_variables(
    cp_id: str, report_data: Iterable[Mapping[str, Any]], now: int
) -> dict[str, Datapoint]:
    """NotifyReport's reportData: the Actual value of each variable, by its key
    (an attribute without a type is the Actual one). Secrets (write-only, or
    named like one: core/secrets.py) are left out."""
    points: dict[str, Datapoint] = {}
    for item in report_data:
        if is_secret(item["variable"].get("name")):
            continue
        for attribute in item.get("variableAttribute") or []:
            if (
                attribute.get("type", "Actual") == "Actual"
                and "value" in attribute
                and attribute.get("mutability") != "WriteOnly"
            ):
                key = variable_key(cp_id, item["component"], item["variable"])
                points[key] = Datapoint(key, variable_value(attribute["value"]), now)
        # The variable's largest value (EVSE.Power's is the EVSE's power: the
        # Actual one is what it draws now), as `<key>__maxLimit`.
        characteristics = item.get("variableCharacteristics")
        if isinstance(characteristics, Mapping) and "maxLimit" in characteristics:
            key = make_key(variable_key(cp_id, item["component"], item["variable"]), "maxLimit")
            points[key] = Datapoint(key, variable_value(characteristics["maxLimit"]), now)
    return points


def event_variables(
    cp_id: str, event_data: Iterable[Mapping[str, Any]], now: int
) -> list[Datapoint]:
    """NotifyEvent's eventData: each event's actualValue, with its own timestamp."""
    points = []
    for event in event_data:
        if is_secret(event["variable"].get("name")):
            continue
        stamp = parse_timestamp(event.get("timestamp")) or now
        key = variable_key(cp_id, event["component"], event["variable"])
        points.append(Datapoint(key, variable_value(event.get("actualValue")), stamp))
    points.sort(key=lambda point: point.timestamp)
    return points


def get_variables_result(
    cp_id: str, results: Iterable[Mapping[str, Any]], now: int
) -> list[Datapoint]:
    """GetVariables' answer: each accepted value (secrets left out); another
    attribute than Actual under `<key>__<attributeType>` (`…__Power__MaxSet`)."""
    points = []
    for result in results:
        if result.get("attributeStatus") != "Accepted" or is_secret(result["variable"].get("name")):
            continue
        key = variable_key(cp_id, result["component"], result["variable"])
        kind = result.get("attributeType", "Actual")
        if kind != "Actual":
            if kind not in ("Target", "MinSet", "MaxSet"):
                continue
            key = make_key(key, kind)
        points.append(Datapoint(key, variable_value(result.get("attributeValue")), now))
    return points


def stream_key(cp_id: str, stream_id: int, field: str) -> str:
    return make_key(cp_id, "PeriodicEventStream", stream_id, field)


def stream_settings(cp_id: str, stream: Mapping[str, Any], now: int) -> list[Datapoint]:
    """A ConstantStreamData (OpenPeriodicEventStream, GetPeriodicEventStream's answer)."""
    params = stream.get("params") or {}
    return [
        Datapoint(stream_key(cp_id, stream["id"], field), value, now)
        for field, value in (
            ("variableMonitoringId", stream.get("variableMonitoringId")),
            ("interval", params.get("interval")),
            ("values", params.get("values")),
        )
    ]


def stream_values(
    key: str, basetime: Any, data: Iterable[Mapping[str, Any]], now: int
) -> list[Datapoint]:
    """NotifyPeriodicEventStream's data: one value per item, in order, each at
    basetime + t seconds (the time of receipt when basetime cannot be read)."""
    base = parse_timestamp(basetime)
    return [
        Datapoint(key, variable_value(item.get("v")), _offset_time(base, item.get("t", 0), now))
        for item in data
    ]


# An offset beyond a year from basetime is no sample time of this stream.
MAX_STREAM_OFFSET_S = 366 * 24 * 3600


def _offset_time(base: int | None, offset: Any, now: int) -> int:
    if (
        base is None
        or isinstance(offset, bool)
        or not isinstance(offset, int | float)
        or not -MAX_STREAM_OFFSET_S <= offset <= MAX_STREAM_OFFSET_S
    ):
        return now
    return int(base + offset * 1000)
