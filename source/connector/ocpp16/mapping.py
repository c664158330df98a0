"""Pure: OCPP 1.6 payloads (wire names, camelCase) -> datapoints (README "Datapoint keys").

Payloads reaching these functions have passed the OCPP 1.6 JSON schema. Meter
values are in the neutral shape already (core/datapoints.py maps them).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from connector.core.datapoints import (
    Datapoint,
    Mapped,
    fields_to_datapoints,
    make_key,
    meter_values,
)


def boot_notification(cp_id: str, payload: Mapping[str, Any], now: int) -> list[Datapoint]:
    return fields_to_datapoints(make_key(cp_id, "BootNotification"), payload, now)


def status_notification(cp_id: str, payload: Mapping[str, Any], now: int) -> list[Datapoint]:
    prefix = make_key(cp_id, "StatusNotification", payload["connectorId"])
    return fields_to_datapoints(prefix, payload, now, skip=("connectorId",))


def authorize(cp_id: str, payload: Mapping[str, Any], now: int) -> list[Datapoint]:
    return [Datapoint(make_key(cp_id, "Authorize", "idTag"), payload["idTag"], now)]


def data_transfer(cp_id: str, payload: Mapping[str, Any], now: int) -> list[Datapoint]:
    return fields_to_datapoints(make_key(cp_id, "DataTransfer"), payload, now)


def status_only(cp_id: str, action: str, payload: Mapping[str, Any], now: int) -> list[Datapoint]:
    """DiagnosticsStatusNotification and FirmwareStatusNotification."""
    return [Datapoint(make_key(cp_id, action, "status"), payload["status"], now)]


def start_transaction(
    cp_id: str, payload: Mapping[str, Any], transaction_id: int, now: int
) -> list[Datapoint]:
    prefix = make_key(cp_id, "StartTransaction", payload["connectorId"])
    points = fields_to_datapoints(prefix, payload, now, skip=("connectorId",))
    points.append(Datapoint(make_key(prefix, "transactionId"), transaction_id, now))
    return points


def stop_transaction(cp_id: str, connector_id: int, payload: Mapping[str, Any], now: int) -> Mapped:
    prefix = make_key(cp_id, "StopTransaction", connector_id)
    points = fields_to_datapoints(prefix, payload, now, skip=("transactionData",))
    mapped = meter_values(
        cp_id, connector_id, payload.get("transactionData") or [], now, payload["transactionId"]
    )
    return Mapped(points + mapped.datapoints, mapped.problems)
