"""2.x payloads map to the keys of README "OCPP 2.0.1 and 2.1 stations".

The same readings from a 1.6 and a 2.x station give the same keys and values.
"""

from __future__ import annotations

from typing import Any

import pytest

from connector.core.datapoints import Datapoint, meter_values
from connector.ocpp2.mapping import (
    boot_notification,
    event_variables,
    get_variables_result,
    message_fields,
    meter_values_v2,
    report_variables,
    sampled_value_from_v2,
    status_notification,
    stream_settings,
    stream_values,
    transaction_event,
    variable_key,
    variable_value,
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


@pytest.mark.parametrize(
    ("sent", "published"),
    [
        ("7400", 7400),
        ("7400.5", 7400.5),
        ("-3", -3),
        ("1e3", 1000.0),
        ("0123", "0123"),  # not a JSON number: a serial, say
        ("A,W", "A,W"),
        ("true", "true"),  # device model booleans stay as sent
        ("NaN", "NaN"),
        ("", ""),
        ({"a": 1}, '{"a": 1}'),
        (None, None),
    ],
)
def test_variable_values(sent: Any, published: Any) -> None:
    assert variable_value(sent) == published


def test_report_keeps_actual_values_only() -> None:
    report: list[dict[str, Any]] = [
        {
            "component": {"name": "SmartChargingCtrlr"},
            "variable": {"name": "RateUnit"},
            "variableAttribute": [{"value": "A,W"}, {"type": "MaxSet", "value": "W"}],
        },
        {
            "component": {"name": "EVSE", "evse": {"id": 1}},
            "variable": {"name": "Power"},
            "variableAttribute": [{"type": "Target", "value": "1"}],
        },
    ]
    assert list(report_variables("CP", report, NOW).values()) == [
        Datapoint("CP__Variable__SmartChargingCtrlr__RateUnit", "A,W", NOW)
    ]


def test_events_keep_their_own_times_in_order() -> None:
    events = [
        {
            "timestamp": "2026-01-01T00:00:02Z",
            "actualValue": "2",
            "component": {"name": "C"},
            "variable": {"name": "V"},
        },
        {
            "timestamp": "2026-01-01T00:00:01Z",
            "actualValue": "1",
            "component": {"name": "C"},
            "variable": {"name": "V"},
        },
        {
            "timestamp": "garbage",
            "actualValue": "x",
            "component": {"name": "C"},
            "variable": {"name": "W"},
        },
    ]
    assert [(p.key[-3:], p.value, p.timestamp) for p in event_variables("CP", events, NOW)] == [
        ("__W", "x", NOW),
        ("__V", 1, 1767225601000),
        ("__V", 2, 1767225602000),
    ]


def test_get_variables_result_publishes_accepted_values() -> None:
    results = [
        {
            "attributeStatus": "Accepted",
            "attributeValue": "8",
            "component": {"name": "S"},
            "variable": {"name": "L"},
        },
        {
            "attributeStatus": "UnknownVariable",
            "component": {"name": "S"},
            "variable": {"name": "X"},
        },
        {
            "attributeStatus": "Accepted",
            "attributeType": "MaxSet",
            "attributeValue": "9",
            "component": {"name": "S"},
            "variable": {"name": "L"},
        },
    ]
    # Another attribute than Actual keeps its own key; it never overwrites the Actual one.
    assert get_variables_result("CP", results, NOW) == [
        Datapoint("CP__Variable__S__L", 8, NOW),
        Datapoint("CP__Variable__S__L__MaxSet", 9, NOW),
    ]


def test_stream_values_take_basetime_plus_t() -> None:
    data = [{"t": 0, "v": "1"}, {"t": 0.5, "v": "2.5"}, {"t": 2, "v": "on"}]
    points = stream_values("K", "2026-01-01T00:00:00Z", data, NOW)
    assert [(p.value, p.timestamp) for p in points] == [
        (1, 1767225600000),
        (2.5, 1767225600500),
        ("on", 1767225602000),
    ]
    # Without a readable basetime, the time of receipt; the order is kept.
    assert [p.timestamp for p in stream_values("K", None, data, NOW)] == [NOW, NOW, NOW]


def test_stream_settings_and_message_fields() -> None:
    stream = {"id": 3, "variableMonitoringId": 9, "params": {"interval": 1}}
    assert stream_settings("CP", stream, NOW) == [
        Datapoint("CP__PeriodicEventStream__3__variableMonitoringId", 9, NOW),
        Datapoint("CP__PeriodicEventStream__3__interval", 1, NOW),
        Datapoint("CP__PeriodicEventStream__3__values", None, NOW),
    ]
    payload = {"chargingLimit": {"chargingLimitSource": "EMS"}, "evseId": 1, "list": [1]}
    assert message_fields("CP", "NotifyChargingLimit", payload, NOW) == [
        Datapoint("CP__NotifyChargingLimit__chargingLimit.chargingLimitSource", "EMS", NOW),
        Datapoint("CP__NotifyChargingLimit__evseId", 1, NOW),
    ]


# Numbers a station chooses cost bounded time and never break the other values
# of the frame (issue 17): each case is one bad sampled value beside a good one.
EXTREME_SAMPLES: dict[str, tuple[dict[str, Any], str]] = {
    "multiplier 10^7": ({"value": 13, "unitOfMeasure": {"multiplier": 10**7}}, "not a number"),
    "multiplier 10^100": ({"value": 1, "unitOfMeasure": {"multiplier": 10**100}}, "not a number"),
    "multiplier 309": ({"value": 1, "unitOfMeasure": {"multiplier": 309}}, "not a number"),
    "1e308 kWh": ({"value": 1e308, "unitOfMeasure": {"unit": "kWh"}}, "cannot be represented"),
    "400-digit integer": ({"value": 10**400}, "not a number"),
    "400-digit integer times 10": (
        {"value": 10**400, "unitOfMeasure": {"multiplier": 1}},
        "not a number",
    ),
    "infinity": ({"value": float("inf")}, "not a number"),
    "NaN": ({"value": float("nan")}, "not a number"),
}


@pytest.mark.parametrize("case", EXTREME_SAMPLES)
def test_extreme_numbers_are_skipped_and_the_rest_kept(case: str) -> None:
    sampled, reason = EXTREME_SAMPLES[case]
    mapped = meter_values_v2(
        "CP", 1, [{"timestamp": STAMP, "sampledValue": [sampled, {"value": 7}]}], NOW
    )
    assert [p.value for p in mapped.datapoints] == [7]
    assert len(mapped.problems) == 1 and reason in mapped.problems[0], mapped.problems
    # The problem names the value briefly, never 400 digits.
    assert len(mapped.problems[0]) < 200


@pytest.mark.parametrize(
    ("sampled", "value"),
    [
        ({"value": 13, "unitOfMeasure": {"multiplier": 300}}, 1.3e301),
        ({"value": 5, "unitOfMeasure": {"multiplier": -400}}, 0),
        ({"value": 12345, "unitOfMeasure": {"multiplier": -3}}, 12.345),
    ],
)
def test_large_but_finite_multipliers_still_map(sampled: dict[str, Any], value: float) -> None:
    mapped = meter_values_v2("CP", 1, [{"timestamp": STAMP, "sampledValue": [sampled]}], NOW)
    assert [p.value for p in mapped.datapoints] == [pytest.approx(value)]


@pytest.mark.parametrize(
    ("sent", "published"),
    [
        ("1e999", "1e999"),  # no float holds it: the text as sent, never Infinity
        ("-1e999", "-1e999"),
        ("123456789012345678901234567890", "123456789012345678901234567890"),
        ("9007199254740992", 9007199254740992),  # 2**53: still exact
        ("1" * 5000, "1" * 5000),  # beyond Python's digit limit for int()
        ({"a": float("inf")}, '{"a": null}'),
    ],
)
def test_variable_values_stay_strict_json(sent: Any, published: Any) -> None:
    assert variable_value(sent) == published


def test_stream_offsets_that_no_clock_holds_take_the_time_of_receipt() -> None:
    points = stream_values(
        "K", STAMP, [{"t": 1e308, "v": "1"}, {"t": float("inf"), "v": "2"}, {"t": 2, "v": "3"}], NOW
    )
    assert [p.timestamp for p in points] == [NOW, NOW, 1_767_225_602_000]
