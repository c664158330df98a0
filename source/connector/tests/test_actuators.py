"""Pure, table-driven tests of the actuators of README "Actuators"."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from ocpp.messages import Call, validate_payload

from connector import actuators as act
from connector.actuators import Route, Scope, update_firmware
from connector.core.commands import InvalidCommand
from connector.core.datapoints import Datapoint
from connector.versions import OCPP16, VERSIONS, Family

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
RUNNING_TRANSACTION = None


@pytest.mark.parametrize(
    ("actuator", "value", "connector_id", "action", "payload"),
    [
        (REMOTE_START, "TAG1", None, "RemoteStartTransaction", {"idTag": "TAG1"}),
        (REMOTE_START, 4711, 2, "RemoteStartTransaction", {"idTag": "4711", "connectorId": 2}),
        (REMOTE_STOP, 77, None, "RemoteStopTransaction", {"transactionId": 77}),
        (REMOTE_STOP, "77", None, "RemoteStopTransaction", {"transactionId": 77}),
        (
            REMOTE_STOP,
            "anything",
            1,
            "RemoteStopTransaction",
            {"transactionId": RUNNING_TRANSACTION},
        ),
        (
            CHANGE_AVAILABILITY,
            "Inoperative",
            None,
            "ChangeAvailability",
            {"connectorId": 0, "type": "Inoperative"},
        ),
        (
            CHANGE_AVAILABILITY,
            True,
            2,
            "ChangeAvailability",
            {"connectorId": 2, "type": "Operative"},
        ),
        (
            CHANGE_AVAILABILITY,
            "false",
            0,
            "ChangeAvailability",
            {"connectorId": 0, "type": "Inoperative"},
        ),
        (RESET, "hard", None, "Reset", {"type": "Hard"}),
        (RESET, "Soft", None, "Reset", {"type": "Soft"}),
        (UNLOCK_CONNECTOR, None, 1, "UnlockConnector", {"connectorId": 1}),
        (CLEAR_CHARGING_PROFILE, 1, 2, "ClearChargingProfile", {"connectorId": 2}),
        (
            CHANGE_CONFIGURATION,
            "MeterValueSampleInterval=60",
            None,
            "ChangeConfiguration",
            {"key": "MeterValueSampleInterval", "value": "60"},
        ),
        (
            CHANGE_CONFIGURATION,
            "AuthorizationKey=a=b",
            None,
            "ChangeConfiguration",
            {"key": "AuthorizationKey", "value": "a=b"},
        ),
        (GET_CONFIGURATION, "", None, "GetConfiguration", {}),
        (GET_CONFIGURATION, None, None, "GetConfiguration", {}),
        (
            GET_CONFIGURATION,
            "HeartbeatInterval",
            None,
            "GetConfiguration",
            {"key": ["HeartbeatInterval"]},
        ),
        (
            DATA_TRANSFER,
            '{"vendorId": "com.x", "messageId": "m", "data": "d"}',
            None,
            "DataTransfer",
            {"vendorId": "com.x", "messageId": "m", "data": "d"},
        ),
        (DATA_TRANSFER, {"vendorId": "com.x"}, None, "DataTransfer", {"vendorId": "com.x"}),
        (
            GET_COMPOSITE_SCHEDULE,
            3600,
            1,
            "GetCompositeSchedule",
            {"connectorId": 1, "duration": 3600},
        ),
        (
            GET_COMPOSITE_SCHEDULE,
            "60",
            None,
            "GetCompositeSchedule",
            {"connectorId": 0, "duration": 60},
        ),
        (
            GET_DIAGNOSTICS,
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
    request = update_firmware.build_v16("https://example.com/fw.bin", None, OCPP16, now)
    assert request == act.Request(
        "UpdateFirmware",
        {"location": "https://example.com/fw.bin", "retrieveDate": "2026-01-01T12:00:00Z"},
    )


@pytest.mark.parametrize(
    ("actuator", "value", "connector_id", "reason"),
    [
        (REMOTE_START, "", None, "empty"),
        (REMOTE_START, "X" * 21, None, "at most 20"),
        (REMOTE_START, {"idTag": "x"}, None, "string"),
        (REMOTE_STOP, "latest", None, "whole number"),
        (REMOTE_STOP, -1, None, "from 0"),
        (REMOTE_STOP, 2**31, None, "from 0"),
        (CHANGE_AVAILABILITY, "maybe", None, "Operative"),
        (RESET, "Now", None, "Soft or Hard"),
        (RESET, "Soft", 1, "whole station"),
        (UNLOCK_CONNECTOR, 1, None, "connector key"),
        (UNLOCK_CONNECTOR, 1, 0, "connector key"),
        (CHANGE_CONFIGURATION, "HeartbeatInterval", None, "Key=Value"),
        (CHANGE_CONFIGURATION, "=5", None, "empty"),
        (CHANGE_CONFIGURATION, "K=" + "v" * 501, None, "500"),
        (CHANGE_CONFIGURATION, "K=1", 1, "whole station"),
        (GET_CONFIGURATION, "K" * 51, None, "at most 50"),
        (DATA_TRANSFER, "not json", None, "JSON object"),
        (DATA_TRANSFER, '{"messageId": "m"}', None, "vendorId"),
        (DATA_TRANSFER, '{"vendorId": "v", "extra": 1}', None, "unknown field"),
        (DATA_TRANSFER, '{"vendorId": "v", "data": {"a": 1}}', None, "JSON-encode"),
        (GET_COMPOSITE_SCHEDULE, 0, None, "from 1"),
        (GET_COMPOSITE_SCHEDULE, 1.5, None, "whole number"),
        (UPDATE_FIRMWARE, "file:///etc/passwd", None, "http, https, ftp or ftps"),
        (UPDATE_FIRMWARE, "https://", None, "with a host"),
        (UPDATE_FIRMWARE, "https://a b/fw", None, "spaces"),
        (GET_DIAGNOSTICS, "javascript:alert(1)", None, "http, https, ftp or ftps"),
        (GET_DIAGNOSTICS, 5, None, "http"),
    ],
)
def test_invalid_values(actuator: str, value: Any, connector_id: int | None, reason: str) -> None:
    with pytest.raises(InvalidCommand, match=reason):
        act.build(actuator, value, connector_id)


@pytest.mark.parametrize(
    ("actuator", "station", "connector"),
    [
        (REMOTE_START, True, True),
        (RESET, True, False),
        (UNLOCK_CONNECTOR, False, True),
        (UPDATE_FIRMWARE, True, False),
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
            act.Request("DataTransfer", {"vendorId": "v"}, DATA_TRANSFER),
            {"status": "Accepted", "data": "x"},
            [
                ("CP__DataTransfer__response__status", "Accepted"),
                ("CP__DataTransfer__response__data", "x"),
            ],
        ),
        (
            act.Request(
                "GetCompositeSchedule", {"connectorId": 1, "duration": 60}, GET_COMPOSITE_SCHEDULE
            ),
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
            act.Request(
                "GetCompositeSchedule", {"connectorId": 1, "duration": 60}, GET_COMPOSITE_SCHEDULE
            ),
            {"status": "Rejected"},
            [],
        ),
        (
            act.Request("GetDiagnostics", {"location": "ftp://x/"}, GET_DIAGNOSTICS),
            {"fileName": "d.zip"},
            [("CP__GetDiagnostics__fileName", "d.zip")],
        ),
        (act.Request("Reset", {"type": "Soft"}, RESET), {"status": "Accepted"}, []),
    ],
)
def test_result_datapoints(
    request_: act.Request, answer: dict[str, Any], expected: list[tuple[str, Any]]
) -> None:
    assert act.result_datapoints("CP", request_, answer, 7) == [
        Datapoint(key, value, 7) for key, value in expected
    ]


# ---- the declarations, against the README and the schemas ----------------

ROOT = Path(__file__).resolve().parents[3]
SCOPES = {"station": Scope.STATION, "connector": Scope.CONNECTOR, "station, connector": Scope.BOTH}


def readme_rows() -> list[list[str]]:
    rows = []
    for line in (ROOT / "README.md").read_text(encoding="utf-8").splitlines():
        if line.startswith("| `execute_"):
            rows.append([cell.strip() for cell in line.strip().strip("|").split("|")])
    return rows


@pytest.mark.parametrize("name", act.NAMES)
def test_the_readme_describes_every_actuator(name: str) -> None:
    """The command tables follow the declarations (actuators/): each 1.6 command's
    keys, each 2.x call, and the versions of those that are not for every one."""
    actuator = act.ACTUATORS[name]
    rows = [row for row in readme_rows() if row[0].startswith(f"`{name}`")]
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert f"`{name}`" in readme
    for row in rows:
        if row[1] in SCOPES:  # the table of README "Actuators": its keys
            assert SCOPES[row[1]] is actuator.scope, row
    versions = [v.name for v in VERSIONS if actuator.serves(v)]
    if Family.OCPP2 in actuator.builders and actuator.route is not Route.LOCAL:
        assert rows, f"{name} has no row in the README's 2.x tables"
    if len(versions) < len(VERSIONS) and Family.OCPP2 in actuator.builders:
        assert any(f"({', '.join(versions)})" in row[0] for row in rows), (name, versions)


@pytest.mark.parametrize("name", act.NAMES)
def test_every_builder_builds_a_valid_request_for_each_version_it_claims(name: str) -> None:
    """A builder per family it claims, each valid for every version of the family
    (against that version's schema), for the declared example value."""
    actuator = act.ACTUATORS[name]
    for version in VERSIONS:
        if not actuator.serves(version):
            with pytest.raises(InvalidCommand, match="needs OCPP"):
                actuator.build(actuator.example_for(version), None, version)
            continue
        connector_id = None if actuator.scope is not Scope.CONNECTOR else 1
        request = actuator.build(actuator.example_for(version), connector_id, version)
        assert request.actuator == name
        if actuator.route is Route.COMMAND:
            payload = request.payload
            if payload.get("transactionId", 0) is None:
                continue  # filled in by `prepare`
            asyncio.run(validate_payload(Call("x", request.action, payload), version.name))
