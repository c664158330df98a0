"""Pure, table-driven tests of the OCPP -> datapoint mapping. No broker."""

from __future__ import annotations

import pytest

from connector.core import datapoints as dp
from connector.ocpp16 import mapping as m16

NOW = 1_700_000_000_000
T1 = "2026-01-01T00:00:00Z"
T1_MS = 1_767_225_600_000
T2 = "2026-01-01T00:00:10.500Z"
T2_MS = T1_MS + 10_500


@pytest.mark.parametrize(
    ("sampled", "key", "value"),
    [
        # Missing measurand and unit: Energy.Active.Import.Register in Wh.
        ({"value": "12.5"}, "CP_1__MeterValues__1__Energy.Active.Import.Register__Wh", 12.5),
        (
            {"value": "1.5", "unit": "kWh"},
            "CP_1__MeterValues__1__Energy.Active.Import.Register__Wh",
            1500,
        ),
        (
            {"value": "12.345", "unit": "kWh"},
            "CP_1__MeterValues__1__Energy.Active.Import.Register__Wh",
            12345,
        ),
        (
            {"value": "7.4", "measurand": "Power.Active.Import", "unit": "kW"},
            "CP_1__MeterValues__1__Power.Active.Import__W",
            7400,
        ),
        (
            {"value": "2300", "measurand": "Power.Active.Import", "phase": "L1", "unit": "W"},
            "CP_1__MeterValues__1__Power.Active.Import__L1__W",
            2300,
        ),
        (
            {"value": "80", "measurand": "SoC", "location": "EV", "unit": "Percent"},
            "CP_1__MeterValues__1__SoC__EV__Percent",
            80,
        ),
        (
            {"value": "300.15", "measurand": "Temperature", "location": "Body", "unit": "K"},
            "CP_1__MeterValues__1__Temperature__Body__Celsius",
            27,
        ),
        (
            {"value": "212", "measurand": "Temperature", "unit": "Fahrenheit"},
            "CP_1__MeterValues__1__Temperature__Celsius",
            100,
        ),
        (
            {"value": "1", "measurand": "Energy.Reactive.Import.Register", "unit": "kvarh"},
            "CP_1__MeterValues__1__Energy.Reactive.Import.Register__varh",
            1000,
        ),
        (
            {"value": "2", "measurand": "Power.Reactive.Import", "unit": "kvar"},
            "CP_1__MeterValues__1__Power.Reactive.Import__var",
            2000,
        ),
        (
            {"value": "0.5", "measurand": "Power.Offered", "unit": "kVA"},
            "CP_1__MeterValues__1__Power.Offered__VA",
            500,
        ),
        # Outlet is the default location and is left out of the key.
        (
            {"value": "16", "measurand": "Current.Import", "location": "Outlet", "unit": "A"},
            "CP_1__MeterValues__1__Current.Import__A",
            16,
        ),
        # A voltage without a unit is in V, not Wh.
        ({"value": "231.2", "measurand": "Voltage"}, "CP_1__MeterValues__1__Voltage__V", 231.2),
        (
            {"value": "0.98", "measurand": "Power.Factor"},
            "CP_1__MeterValues__1__Power.Factor",
            0.98,
        ),
        (
            {"value": "50", "measurand": "Frequency", "location": "Inlet", "unit": "Hz"},
            "CP_1__MeterValues__1__Frequency__Inlet__Hz",
            50,
        ),
    ],
)
def test_sampled_value_keys_and_units(sampled: dict, key: str, value: float) -> None:
    mapped = dp.meter_values("CP_1", 1, [{"timestamp": T1, "sampledValue": [sampled]}], NOW)
    assert mapped.problems == []
    assert mapped.datapoints == [dp.Datapoint(key, value, T1_MS)]
    assert type(mapped.datapoints[0].value) is type(value)


def test_entries_in_time_order_with_their_own_timestamps() -> None:
    meter_value = [
        {"timestamp": T2, "sampledValue": [{"value": "20"}]},
        {"timestamp": T1, "sampledValue": [{"value": "10"}]},
        {"timestamp": "not a time", "sampledValue": [{"value": "5"}]},
    ]
    mapped = dp.meter_values("CP_1", 2, meter_value, NOW)
    key = "CP_1__MeterValues__2__Energy.Active.Import.Register__Wh"
    # NOW (2023) is earlier than T1 and T2 (2026): the unparseable entry, stamped
    # with the time of receipt, comes first.
    assert mapped.datapoints == [
        dp.Datapoint(key, 5, NOW),
        dp.Datapoint(key, 10, T1_MS),
        dp.Datapoint(key, 20, T2_MS),
    ]


def test_transaction_id_and_every_sampled_value_of_every_entry() -> None:
    meter_value = [
        {
            "timestamp": T1,
            "sampledValue": [{"value": "1"}, {"value": "2", "measurand": "Voltage", "unit": "V"}],
        },
        {"timestamp": T2, "sampledValue": [{"value": "3"}]},
    ]
    mapped = dp.meter_values("CP_1", 1, meter_value, NOW, transaction_id=42)
    assert [p.value for p in mapped.datapoints] == [1, 2, 3, 42]
    assert mapped.datapoints[-1] == dp.Datapoint("CP_1__MeterValues__1__transactionId", 42, NOW)


@pytest.mark.parametrize("bad", ["abc", "NaN", "inf", "", None, "1e999"])
def test_non_numeric_values_are_skipped_with_a_reason(bad: object) -> None:
    mapped = dp.meter_values(
        "CP_1", 1, [{"timestamp": T1, "sampledValue": [{"value": bad}, {"value": "7"}]}], NOW
    )
    assert [p.value for p in mapped.datapoints] == [7]
    assert len(mapped.problems) == 1 and "not a number" in mapped.problems[0]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-01-01T00:00:00Z", T1_MS),
        ("2026-01-01T00:00:00+00:00", T1_MS),
        ("2026-01-01T01:00:00+01:00", T1_MS),
        ("2026-01-01T00:00:00", T1_MS),  # no zone: UTC
        ("2026-01-01T00:00:10.500Z", T2_MS),
        ("garbage", None),
        ("", None),
        (None, None),
        (12, None),
    ],
)
def test_parse_timestamp(text: object, expected: int | None) -> None:
    assert dp.parse_timestamp(text) == expected


@pytest.mark.parametrize(
    ("function", "args", "expected"),
    [
        (
            m16.boot_notification,
            (
                "CP_1",
                {"chargePointVendor": "V", "chargePointModel": "M", "firmwareVersion": "1"},
                NOW,
            ),
            [
                ("CP_1__BootNotification__chargePointVendor", "V"),
                ("CP_1__BootNotification__chargePointModel", "M"),
                ("CP_1__BootNotification__firmwareVersion", "1"),
            ],
        ),
        (dp.heartbeat, ("CP_1", NOW), [("CP_1__Heartbeat", NOW)]),
        (dp.connected, ("CP_1", True, NOW), [("CP_1__connected", True)]),
        (
            m16.status_notification,
            ("CP_1", {"connectorId": 0, "status": "Available", "errorCode": "NoError"}, NOW),
            [
                ("CP_1__StatusNotification__0__status", "Available"),
                ("CP_1__StatusNotification__0__errorCode", "NoError"),
            ],
        ),
        (
            m16.status_notification,
            (
                "CP_1",
                {
                    "connectorId": 2,
                    "status": "Faulted",
                    "errorCode": "OtherError",
                    "info": "x",
                    "vendorErrorCode": "E7",
                },
                NOW,
            ),
            [
                ("CP_1__StatusNotification__2__status", "Faulted"),
                ("CP_1__StatusNotification__2__errorCode", "OtherError"),
                ("CP_1__StatusNotification__2__info", "x"),
                ("CP_1__StatusNotification__2__vendorErrorCode", "E7"),
            ],
        ),
        (m16.authorize, ("CP_1", {"idTag": "ABC"}, NOW), [("CP_1__Authorize__idTag", "ABC")]),
        (
            m16.data_transfer,
            ("CP_1", {"vendorId": "acme", "messageId": "m", "data": '{"a":1}'}, NOW),
            [
                ("CP_1__DataTransfer__vendorId", "acme"),
                ("CP_1__DataTransfer__messageId", "m"),
                ("CP_1__DataTransfer__data", '{"a":1}'),
            ],
        ),
        (
            m16.status_only,
            ("CP_1", "FirmwareStatusNotification", {"status": "Downloading"}, NOW),
            [("CP_1__FirmwareStatusNotification__status", "Downloading")],
        ),
        (
            m16.status_only,
            ("CP_1", "DiagnosticsStatusNotification", {"status": "Uploaded"}, NOW),
            [("CP_1__DiagnosticsStatusNotification__status", "Uploaded")],
        ),
        (
            m16.start_transaction,
            ("CP_1", {"connectorId": 1, "idTag": "T", "meterStart": 5, "timestamp": T1}, 77, NOW),
            [
                ("CP_1__StartTransaction__1__idTag", "T"),
                ("CP_1__StartTransaction__1__meterStart", 5),
                ("CP_1__StartTransaction__1__timestamp", T1),
                ("CP_1__StartTransaction__1__transactionId", 77),
            ],
        ),
        (
            dp.command_status,
            ("CP_1", "SetChargingProfile", "Accepted", NOW),
            [("CP_1__SetChargingProfile__status", "Accepted")],
        ),
    ],
)
def test_message_mappings(function: object, args: tuple, expected: list) -> None:
    points = function(*args)  # type: ignore[operator]
    assert [(p.key, p.value) for p in points] == expected
    assert all(p.timestamp == NOW for p in points)


def test_stop_transaction_with_transaction_data() -> None:
    payload = {
        "transactionId": 77,
        "meterStop": 9000,
        "timestamp": T2,
        "reason": "EVDisconnected",
        "idTag": "T",
        "transactionData": [{"timestamp": T2, "sampledValue": [{"value": "9", "unit": "kWh"}]}],
    }
    mapped = m16.stop_transaction("CP_1", 3, payload, NOW)
    assert [(p.key, p.value) for p in mapped.datapoints] == [
        ("CP_1__StopTransaction__3__transactionId", 77),
        ("CP_1__StopTransaction__3__meterStop", 9000),
        ("CP_1__StopTransaction__3__timestamp", T2),
        ("CP_1__StopTransaction__3__reason", "EVDisconnected"),
        ("CP_1__StopTransaction__3__idTag", "T"),
        ("CP_1__MeterValues__3__Energy.Active.Import.Register__Wh", 9000),
        ("CP_1__MeterValues__3__transactionId", 77),
    ]
