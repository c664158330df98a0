"""Pure, table-driven tests of the actuators of CONTRACT §6."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from connector.core import actuators as act
from connector.core.commands import InvalidCommand
from connector.core.datapoints import Datapoint


@pytest.mark.parametrize(
    ("actuator", "value", "connector_id", "action", "payload"),
    [
        (act.REMOTE_START, "TAG1", None, "RemoteStartTransaction", {"idTag": "TAG1"}),
        (act.REMOTE_START, 4711, 2, "RemoteStartTransaction", {"idTag": "4711", "connectorId": 2}),
        (act.REMOTE_STOP, 77, None, "RemoteStopTransaction", {"transactionId": 77}),
        (act.REMOTE_STOP, "77", None, "RemoteStopTransaction", {"transactionId": 77}),
        (
            act.REMOTE_STOP,
            "anything",
            1,
            "RemoteStopTransaction",
            {"transactionId": act.RUNNING_TRANSACTION},
        ),
        (
            act.CHANGE_AVAILABILITY,
            "Inoperative",
            None,
            "ChangeAvailability",
            {"connectorId": 0, "type": "Inoperative"},
        ),
        (
            act.CHANGE_AVAILABILITY,
            True,
            2,
            "ChangeAvailability",
            {"connectorId": 2, "type": "Operative"},
        ),
        (
            act.CHANGE_AVAILABILITY,
            "false",
            0,
            "ChangeAvailability",
            {"connectorId": 0, "type": "Inoperative"},
        ),
        (act.RESET, "hard", None, "Reset", {"type": "Hard"}),
        (act.RESET, "Soft", None, "Reset", {"type": "Soft"}),
        (act.UNLOCK_CONNECTOR, None, 1, "UnlockConnector", {"connectorId": 1}),
        (act.CLEAR_CHARGING_PROFILE, 1, 2, "ClearChargingProfile", {"connectorId": 2}),
        (
            act.CHANGE_CONFIGURATION,
            "MeterValueSampleInterval=60",
            None,
            "ChangeConfiguration",
            {"key": "MeterValueSampleInterval", "value": "60"},
        ),
        (
            act.CHANGE_CONFIGURATION,
            "AuthorizationKey=a=b",
            None,
            "ChangeConfiguration",
            {"key": "AuthorizationKey", "value": "a=b"},
        ),
        (act.GET_CONFIGURATION, "", None, "GetConfiguration", {}),
        (act.GET_CONFIGURATION, None, None, "GetConfiguration", {}),
        (
            act.GET_CONFIGURATION,
            "HeartbeatInterval",
            None,
            "GetConfiguration",
            {"key": ["HeartbeatInterval"]},
        ),
        (
            act.DATA_TRANSFER,
            '{"vendorId": "com.x", "messageId": "m", "data": "d"}',
            None,
            "DataTransfer",
            {"vendorId": "com.x", "messageId": "m", "data": "d"},
        ),
        (act.DATA_TRANSFER, {"vendorId": "com.x"}, None, "DataTransfer", {"vendorId": "com.x"}),
        (
            act.GET_COMPOSITE_SCHEDULE,
            3600,
            1,
            "GetCompositeSchedule",
            {"connectorId": 1, "duration": 3600},
        ),
        (
            act.GET_COMPOSITE_SCHEDULE,
            "60",
            None,
            "GetCompositeSchedule",
            {"connectorId": 0, "duration": 60},
        ),
        (
            act.GET_DIAGNOSTICS,
            "ftps://files.example.com/up/",
            None,
            "GetDiagnostics",
            {"location": "ftps://files.example.com/up/"},
        ),
    ],
)
def test_valid_values(
    actuator: str, value: Any, connector_id: int | None, action: str, payload: dict[str, Any]
) -> None:
    assert act.build(actuator, value, connector_id) == act.Request(action, payload)


def test_update_firmware_retrieves_now() -> None:
    now = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
    request = act.update_firmware("https://example.com/fw.bin", None, now)
    assert request == act.Request(
        "UpdateFirmware",
        {"location": "https://example.com/fw.bin", "retrieveDate": "2026-01-01T12:00:00Z"},
    )


@pytest.mark.parametrize(
    ("actuator", "value", "connector_id", "reason"),
    [
        (act.REMOTE_START, "", None, "empty"),
        (act.REMOTE_START, "X" * 21, None, "at most 20"),
        (act.REMOTE_START, {"idTag": "x"}, None, "string"),
        (act.REMOTE_STOP, "latest", None, "whole number"),
        (act.REMOTE_STOP, -1, None, "from 0"),
        (act.REMOTE_STOP, 2**31, None, "from 0"),
        (act.CHANGE_AVAILABILITY, "maybe", None, "Operative"),
        (act.RESET, "Now", None, "Soft or Hard"),
        (act.RESET, "Soft", 1, "whole station"),
        (act.UNLOCK_CONNECTOR, 1, None, "connector key"),
        (act.UNLOCK_CONNECTOR, 1, 0, "connector key"),
        (act.CHANGE_CONFIGURATION, "HeartbeatInterval", None, "Key=Value"),
        (act.CHANGE_CONFIGURATION, "=5", None, "empty"),
        (act.CHANGE_CONFIGURATION, "K=" + "v" * 501, None, "500"),
        (act.CHANGE_CONFIGURATION, "K=1", 1, "whole station"),
        (act.GET_CONFIGURATION, "K" * 51, None, "at most 50"),
        (act.DATA_TRANSFER, "not json", None, "JSON object"),
        (act.DATA_TRANSFER, '{"messageId": "m"}', None, "vendorId"),
        (act.DATA_TRANSFER, '{"vendorId": "v", "extra": 1}', None, "unknown field"),
        (act.DATA_TRANSFER, '{"vendorId": "v", "data": {"a": 1}}', None, "JSON-encode"),
        (act.GET_COMPOSITE_SCHEDULE, 0, None, "from 1"),
        (act.GET_COMPOSITE_SCHEDULE, 1.5, None, "whole number"),
        (act.UPDATE_FIRMWARE, "file:///etc/passwd", None, "http, https, ftp or ftps"),
        (act.UPDATE_FIRMWARE, "https://", None, "with a host"),
        (act.UPDATE_FIRMWARE, "https://a b/fw", None, "spaces"),
        (act.GET_DIAGNOSTICS, "javascript:alert(1)", None, "http, https, ftp or ftps"),
        (act.GET_DIAGNOSTICS, 5, None, "http"),
    ],
)
def test_invalid_values(actuator: str, value: Any, connector_id: int | None, reason: str) -> None:
    with pytest.raises(InvalidCommand, match=reason):
        act.build(actuator, value, connector_id)


@pytest.mark.parametrize(
    ("actuator", "station", "connector"),
    [
        (act.REMOTE_START, True, True),
        (act.RESET, True, False),
        (act.UNLOCK_CONNECTOR, False, True),
        (act.UPDATE_FIRMWARE, True, False),
        ("execute_send_charging_profile", True, True),
    ],
)
def test_offered_on(actuator: str, station: bool, connector: bool) -> None:
    assert act.offered_on(actuator, None) is station
    assert act.offered_on(actuator, 1) is connector


@pytest.mark.parametrize(
    ("request_", "answer", "expected"),
    [
        (
            act.Request("DataTransfer", {"vendorId": "v"}),
            {"status": "Accepted", "data": "x"},
            [
                ("CP__DataTransfer__response__status", "Accepted"),
                ("CP__DataTransfer__response__data", "x"),
            ],
        ),
        (
            act.Request("GetCompositeSchedule", {"connectorId": 1, "duration": 60}),
            {
                "status": "Accepted",
                "connectorId": 1,
                "chargingSchedule": {
                    "chargingRateUnit": "A",
                    "chargingSchedulePeriod": [{"startPeriod": 0, "limit": 16}],
                },
            },
            [
                ("CP__CompositeSchedule__1__limit", 16),
                ("CP__CompositeSchedule__1__chargingRateUnit", "A"),
            ],
        ),
        (
            act.Request("GetCompositeSchedule", {"connectorId": 1, "duration": 60}),
            {"status": "Rejected"},
            [],
        ),
        (
            act.Request("GetDiagnostics", {"location": "ftp://x/"}),
            {"fileName": "d.zip"},
            [("CP__GetDiagnostics__fileName", "d.zip")],
        ),
        (act.Request("Reset", {"type": "Soft"}), {"status": "Accepted"}, []),
    ],
)
def test_result_datapoints(
    request_: act.Request, answer: dict[str, Any], expected: list[tuple[str, Any]]
) -> None:
    assert act.result_datapoints("CP", request_, answer, 7) == [
        Datapoint(key, value, 7) for key, value in expected
    ]
