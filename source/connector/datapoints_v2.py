"""OCPP 2.0.1/2.1 payloads -> the datapoint keys of CONTRACT §8 (pure, no I/O).

The same things get the same keys as for a 1.6 station: in every key, the
position of 1.6's connectorId holds the EVSE id (0 is the station), meter
values go through 1.6's mapping, and nested fields are flattened with `.`.
Groundwork for issue 11: no 2.x station is served yet.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from connector.datapoints import (
    Datapoint,
    Mapped,
    _is_scalar,
    _key,
    meter_values,
    parse_timestamp,
)

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


def flatten(payload: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Scalar fields at any depth of nested objects, named with `.`; lists are left out."""
    flat: dict[str, Any] = {}
    for name, value in payload.items():
        dotted = f"{prefix}{name}"
        if isinstance(value, Mapping):
            flat.update(flatten(value, dotted + "."))
        elif _is_scalar(value):
            flat[dotted] = value
    return flat


def boot_notification(cp_id: str, payload: Mapping[str, Any], now: int) -> list[Datapoint]:
    """`chargingStation.vendorName`, `chargingStation.model`, `reason`, …"""
    prefix = _key(cp_id, "BootNotification")
    return [Datapoint(_key(prefix, n), v, now) for n, v in flatten(payload).items()]


def status_notification(cp_id: str, payload: Mapping[str, Any], now: int) -> list[Datapoint]:
    """`…__StatusNotification__<evseId>__connectorStatus`, `…__connectorId`, `…__timestamp`."""
    prefix = _key(cp_id, "StatusNotification", payload["evseId"])
    return [
        Datapoint(_key(prefix, field), payload[field], now)
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
    prefix = _key(cp_id, "TransactionEvent", evse_id)
    return [
        Datapoint(_key(prefix, field), flat[field], stamp)
        for field in TRANSACTION_EVENT_FIELDS
        if field in flat
    ]


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
    return _key(cp_id, "Variable", _component_part(component), name)


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
        value = value * 10**multiplier
    converted["value"] = value
    return converted


def meter_values_v2(
    cp_id: str,
    evse_id: int,
    meter_value: list[Mapping[str, Any]],
    now: int,
    transaction_id: str | None = None,
) -> Mapped:
    """2.x MeterValues (or TransactionEvent.meterValue): the same keys as 1.6,
    with the EVSE id where 1.6 has the connector id (CONTRACT §8)."""
    entries = [
        {
            "timestamp": entry.get("timestamp"),
            "sampledValue": [
                sampled_value_from_v2(sampled)
                for sampled in entry.get("sampledValue") or []
                if isinstance(sampled, Mapping)
            ],
        }
        for entry in meter_value
    ]
    return meter_values(cp_id, evse_id, entries, now, transaction_id)
