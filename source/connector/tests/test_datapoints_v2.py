"""2.x payloads map to the keys of CONTRACT §8.

The same readings from a 1.6 and a 2.x station give the same keys and values.
"""

from __future__ import annotations

from typing import Any

import pytest

from connector.core.datapoints import Datapoint, meter_values
from connector.core.datapoints_v2 import (
    boot_notification,
    meter_values_v2,
    sampled_value_from_v2,
    status_notification,
    transaction_event,
    variable_key,
)

STAMP = "2026-01-01T00:00:00Z"
NOW = 1_000

# name -> (1.6 sampledValue, 2.x sampledValue): the same reading
SAME_READINGS: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {
    "energy, default measurand and unit": ({"value": "1234.5"}, {"value": 1234.5}),
    "energy in kWh": (
        {"value": "12.345", "unit": "kWh"},
        {"value": 12.345, "unitOfMeasure": {"unit": "kWh"}},
    ),
    "energy in kWh with a multiplier": (
        {"value": "130", "unit": "kWh"},
        {"value": 13, "unitOfMeasure": {"unit": "kWh", "multiplier": 1}},
    ),
    "power in W with a negative multiplier": (
        {"value": "7200", "measurand": "Power.Active.Import", "unit": "W"},
        {
            "value": 72000,
            "measurand": "Power.Active.Import",
            "unitOfMeasure": {"unit": "W", "multiplier": -1},
        },
    ),
    "current per phase": (
        {"value": "10.4", "measurand": "Current.Import", "phase": "L1", "unit": "A"},
        {
            "value": 10.4,
            "measurand": "Current.Import",
            "phase": "L1",
            "unitOfMeasure": {"unit": "A"},
        },
    ),
    "voltage, no unit": (
        {"value": "230.1", "measurand": "Voltage", "phase": "L1-N"},
        {"value": 230.1, "measurand": "Voltage", "phase": "L1-N"},
    ),
    "state of charge at the EV": (
        {"value": "80", "measurand": "SoC", "location": "EV", "unit": "Percent"},
        {
            "value": 80,
            "measurand": "SoC",
            "location": "EV",
            "unitOfMeasure": {"unit": "Percent"},
        },
    ),
    "temperature in K": (
        {"value": "300", "measurand": "Temperature", "unit": "K"},
        {"value": 300, "measurand": "Temperature", "unitOfMeasure": {"unit": "K"}},
    ),
    "power in kW, multiplier 0": (
        {"value": "11", "measurand": "Power.Active.Import", "unit": "kW"},
        {
            "value": 11,
            "measurand": "Power.Active.Import",
            "unitOfMeasure": {"unit": "kW", "multiplier": 0},
        },
    ),
}


@pytest.mark.parametrize("name", list(SAME_READINGS))
def test_same_reading_same_key_and_value(name: str) -> None:
    v16, v2 = SAME_READINGS[name]
    one = meter_values("CP", 1, [{"timestamp": STAMP, "sampledValue": [v16]}], NOW)
    two = meter_values_v2("CP", 1, [{"timestamp": STAMP, "sampledValue": [v2]}], NOW)
    assert one.problems == two.problems == []
    assert [(p.key, p.value, p.timestamp) for p in two.datapoints] == [
        (p.key, p.value, p.timestamp) for p in one.datapoints
    ]


def test_transaction_id_is_the_stations_string() -> None:
    mapped = meter_values_v2(
        "CP", 2, [{"timestamp": STAMP, "sampledValue": [{"value": 5}]}], NOW, "tx-42"
    )
    assert mapped.datapoints[-1].key == "CP__MeterValues__2__transactionId"
    assert mapped.datapoints[-1].value == "tx-42"


@pytest.mark.parametrize(
    ("sampled", "expected"),
    [
        ({"value": 1, "unitOfMeasure": {"multiplier": True}}, {"value": 1}),
        ({"value": 1, "unitOfMeasure": {"multiplier": "3"}}, {"value": 1}),
        (
            {"value": "x", "unitOfMeasure": {"unit": "W", "multiplier": 2}},
            {"value": "x", "unit": "W"},
        ),
        ({"value": 2, "unitOfMeasure": "W"}, {"value": 2}),
        ({"value": 2, "signedMeterValue": {"signedMeterData": "…"}}, {"value": 2}),
    ],
)
def test_odd_units_of_measure(sampled: dict[str, Any], expected: dict[str, Any]) -> None:
    assert sampled_value_from_v2(sampled) == expected


def test_boot_notification_flattens_nested_fields() -> None:
    payload = {
        "reason": "PowerUp",
        "chargingStation": {
            "vendorName": "V",
            "model": "M",
            "firmwareVersion": "1.2",
            "modem": {"iccid": "89"},
        },
    }
    points = {p.key: p.value for p in boot_notification("CP_1", payload, NOW)}
    assert points == {
        "CP_1__BootNotification__reason": "PowerUp",
        "CP_1__BootNotification__chargingStation.vendorName": "V",
        "CP_1__BootNotification__chargingStation.model": "M",
        "CP_1__BootNotification__chargingStation.firmwareVersion": "1.2",
        "CP_1__BootNotification__chargingStation.modem.iccid": "89",
    }


def test_status_notification_keys_by_evse() -> None:
    payload = {"timestamp": STAMP, "connectorStatus": "Occupied", "evseId": 2, "connectorId": 1}
    points = {p.key: p.value for p in status_notification("CP_1", payload, NOW)}
    assert points == {
        "CP_1__StatusNotification__2__connectorStatus": "Occupied",
        "CP_1__StatusNotification__2__connectorId": 1,
        "CP_1__StatusNotification__2__timestamp": STAMP,
    }


def test_transaction_event_fields_keep_the_events_own_time() -> None:
    payload = {
        "eventType": "Ended",
        "timestamp": "2026-01-01T00:00:10Z",
        "triggerReason": "EVCommunicationLost",
        "seqNo": 7,
        "offline": True,
        "numberOfPhasesUsed": 3,
        "transactionInfo": {
            "transactionId": "tx-1",
            "chargingState": "Idle",
            "stoppedReason": "EVDisconnected",
        },
        "idToken": {"idToken": "TAG", "type": "ISO14443"},
        "evse": {"id": 1},
        "meterValue": [{"timestamp": STAMP, "sampledValue": [{"value": 1}]}],
    }
    *points, transaction = transaction_event("CP_1", 1, payload, NOW)
    assert transaction == Datapoint("CP_1__MeterValues__1__transactionId", "tx-1", 1767225610000)
    assert {p.timestamp for p in points} == {1767225610000}
    assert {p.key.rsplit("__", 1)[1]: p.value for p in points} == {
        "eventType": "Ended",
        "triggerReason": "EVCommunicationLost",
        "seqNo": 7,
        "timestamp": "2026-01-01T00:00:10Z",
        "offline": True,
        "transactionInfo.transactionId": "tx-1",
        "transactionInfo.chargingState": "Idle",
        "transactionInfo.stoppedReason": "EVDisconnected",
        "idToken.idToken": "TAG",
        "numberOfPhasesUsed": 3,
    }
    assert all(p.key.startswith("CP_1__TransactionEvent__1__") for p in points)


@pytest.mark.parametrize(
    ("component", "variable", "key"),
    [
        ({"name": "SmartChargingCtrlr"}, {"name": "RateUnit"}, "SmartChargingCtrlr__RateUnit"),
        ({"name": "EVSE", "evse": {"id": 1}}, {"name": "Power"}, "EVSE@1__Power"),
        (
            {"name": "Connector", "evse": {"id": 1, "connectorId": 1}},
            {"name": "ConnectorType"},
            "Connector@1.1__ConnectorType",
        ),
        (
            {"name": "OCPPCommCtrlr", "instance": "Default"},
            {"name": "MessageTimeout", "instance": "Default"},
            "OCPPCommCtrlr(Default)__MessageTimeout(Default)",
        ),
        (
            {"name": "EVSE", "instance": "a", "evse": {"id": 2, "connectorId": 3}},
            {"name": "Available"},
            "EVSE(a)@2.3__Available",
        ),
    ],
)
def test_variable_keys(component: dict[str, Any], variable: dict[str, Any], key: str) -> None:
    assert variable_key("CP_1", component, variable) == f"CP_1__Variable__{key}"
