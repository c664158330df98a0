"""Pure, table-driven: actuator values -> OCPP 2.0.1/2.1 requests (README "OCPP 2.0.1 and 2.1
stations").

Each request built is checked against the version's schema, as the station
will check it.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import pytest
from ocpp.messages import Call, validate_payload

from connector import actuators
from connector.actuators import Request
from connector.core.commands import InvalidCommand
from connector.ocpp2 import requests as rv2
from connector.versions import BY_NAME

VERSIONS = ["2.0.1", "2.1"]


def build(actuator: str, value: Any, evse: int | None, version: str) -> Request:
    return actuators.build(actuator, value, evse, BY_NAME[version])


def valid(action: str, payload: dict[str, Any], version: str) -> None:
    asyncio.run(validate_payload(Call("x", action, payload), version))


@pytest.mark.parametrize(
    ("text", "component", "variable"),
    [
        ("SmartChargingCtrlr.RateUnit", {"name": "SmartChargingCtrlr"}, {"name": "RateUnit"}),
        ("EVSE@1.Power", {"name": "EVSE", "evse": {"id": 1}}, {"name": "Power"}),
        (
            "Connector@1.2.ConnectorType",
            {"name": "Connector", "evse": {"id": 1, "connectorId": 2}},
            {"name": "ConnectorType"},
        ),
        (
            "OCPPCommCtrlr(1).MessageTimeout(Default)",
            {"name": "OCPPCommCtrlr", "instance": "1"},
            {"name": "MessageTimeout", "instance": "Default"},
        ),
    ],
)
def test_variable_paths(text: str, component: dict[str, Any], variable: dict[str, Any]) -> None:
    path = rv2.parse_variable_path(text)
    assert (path.component, path.variable) == (component, variable)


@pytest.mark.parametrize("text", ["", "RateUnit", "A.B.C.D", "EVSE@x.Power", "a b.c", 5, None])
def test_bad_variable_paths(text: Any) -> None:
    with pytest.raises(InvalidCommand):
        rv2.parse_variable_path(text)


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize(
    ("actuator", "value", "evse", "action", "expected"),
    [
        (
            "execute_trigger_message",
            0,
            None,
            "TriggerMessage",
            {"requestedMessage": "BootNotification"},
        ),
        (
            "execute_trigger_message",
            "1",
            None,
            "TriggerMessage",
            {"requestedMessage": "LogStatusNotification"},
        ),
        (
            "execute_trigger_message",
            4,
            2,
            "TriggerMessage",
            {"requestedMessage": "MeterValues", "evse": {"id": 2}},
        ),
        (
            "execute_trigger_message",
            "transactionEvent",
            None,
            "TriggerMessage",
            {"requestedMessage": "TransactionEvent"},
        ),
        ("execute_reset", "Soft", None, "Reset", {"type": "OnIdle"}),
        ("execute_reset", "hard", None, "Reset", {"type": "Immediate"}),
        ("execute_reset", "OnIdle", None, "Reset", {"type": "OnIdle"}),
        (
            "execute_change_availability",
            False,
            1,
            "ChangeAvailability",
            {"operationalStatus": "Inoperative", "evse": {"id": 1}},
        ),
        (
            "execute_change_availability",
            "Operative",
            None,
            "ChangeAvailability",
            {"operationalStatus": "Operative"},
        ),
        ("execute_unlock_connector", 1, 3, "UnlockConnector", {"evseId": 3, "connectorId": 1}),
        (
            "execute_remote_stop_transaction",
            "tx-9",
            None,
            "RequestStopTransaction",
            {"transactionId": "tx-9"},
        ),
        (
            "execute_get_composite_schedule",
            "600",
            None,
            "GetCompositeSchedule",
            {"evseId": 0, "duration": 600},
        ),
        ("execute_clear_variable_monitoring", 7, None, "ClearVariableMonitoring", {"id": [7]}),
        (
            "execute_get_configuration",
            "EVSE@1.Power",
            None,
            "GetVariables",
            {
                "getVariableData": [
                    {
                        "component": {"name": "EVSE", "evse": {"id": 1}},
                        "variable": {"name": "Power"},
                    }
                ]
            },
        ),
        (
            "execute_change_configuration",
            "OCPPCommCtrlr.HeartbeatInterval = 60",
            None,
            "SetVariables",
            {
                "setVariableData": [
                    {
                        "attributeValue": "60",
                        "component": {"name": "OCPPCommCtrlr"},
                        "variable": {"name": "HeartbeatInterval"},
                    }
                ]
            },
        ),
        (
            "execute_data_transfer",
            {"vendorId": "v", "data": [1]},
            None,
            "DataTransfer",
            {"vendorId": "v", "data": [1]},
        ),
    ],
)
def test_actuators_build_2x_requests(
    actuator: str, value: Any, evse: int | None, action: str, expected: dict[str, Any], version: str
) -> None:
    request = build(actuator, value, evse, version)
    assert (request.action, request.payload) == (action, expected)
    valid(action, request.payload, version)


@pytest.mark.parametrize("version", VERSIONS)
def test_fresh_ids_and_times(version: str) -> None:
    start = build("execute_remote_start_transaction", "TAG", 1, version)
    again = build("execute_remote_start_transaction", "TAG", None, version)
    assert start.payload["remoteStartId"] != again.payload["remoteStartId"]
    assert "evseId" not in again.payload
    firmware = build("execute_update_firmware", "https://x.example/f.bin", None, version)
    log = build("execute_get_diagnostics", "https://x.example/up", None, version)
    base = build("execute_get_configuration", "", None, version)
    for request in (start, again, firmware, log, base):
        valid(request.action, request.payload, version)
    assert base.payload["reportBase"] == "FullInventory"


@pytest.mark.parametrize(
    ("actuator", "value", "evse", "version", "reason"),
    [
        ("execute_reset", "Sometime", None, "2.0.1", "reset must be"),
        ("execute_reset", "ImmediateAndResume", None, "2.0.1", "reset must be"),
        ("execute_trigger_message", 6, None, "2.1", "is not 0-5"),
        (
            "execute_trigger_message",
            "DiagnosticsStatusNotification",
            None,
            "2.1",
            "unknown trigger",
        ),
        ("execute_change_configuration", "NoDot=1", None, "2.1", "the variable must be"),
        ("execute_set_variable_monitoring", '{"component": "EVSE"}', None, "2.1", "type must be"),
        (
            "execute_set_variable_monitoring",
            {
                "component": "EVSE",
                "variable": "Power",
                "type": "Periodic",
                "interval": 5,
                "stream": {"values": 3},
            },
            None,
            "2.0.1",
            "need OCPP 2.1",
        ),
        ("execute_adjust_periodic_event_stream", {"id": 1}, None, "2.0.1", "needs OCPP 2.1"),
        ("execute_adjust_periodic_event_stream", {"id": -1}, None, "2.1", "stream id"),
        ("execute_set_variable_monitoring", "{}", None, "1.6", "needs OCPP 2.0.1 or 2.1"),
        ("execute_unlock_connector", 1, None, "2.1", "needs a connector key"),
    ],
)
def test_values_that_are_not_valid(
    actuator: str, value: Any, evse: int | None, version: str, reason: str
) -> None:
    with pytest.raises(InvalidCommand, match=reason):
        build(actuator, value, evse, version)


def test_monitoring_with_a_stream_on_2_1() -> None:
    value = (
        '{"component": "EVSE", "evseId": 1, "variable": "Power", "type": "PeriodicClockAligned",'
        ' "interval": 60, "severity": 3, "stream": {"interval": 1, "values": 10}}'
    )
    request = build("execute_set_variable_monitoring", value, None, "2.1")
    assert request.payload == {
        "setMonitoringData": [
            {
                "value": 60,
                "type": "PeriodicClockAligned",
                "severity": 3,
                "component": {"name": "EVSE", "evse": {"id": 1}},
                "variable": {"name": "Power"},
                "periodicEventStream": {"interval": 1, "values": 10},
            }
        ]
    }
    valid(request.action, request.payload, "2.1")
    adjust = build("execute_adjust_periodic_event_stream", {"id": 4, "interval": 5}, None, "2.1")
    assert adjust.payload == {"id": 4, "params": {"interval": 5}}
    valid(adjust.action, adjust.payload, "2.1")


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize(
    ("purpose", "evse", "transaction_id", "unit", "limit", "phases"),
    [
        ("ChargePointMaxProfile", 0, None, "W", 7400, None),
        ("TxDefaultProfile", 1, None, "A", 15.9, 3),
        ("TxProfile", 1, "tx-1", "W", 4000, None),
    ],
)
def test_charging_profiles(
    purpose: str,
    evse: int,
    transaction_id: str | None,
    unit: str,
    limit: float,
    phases: int | None,
    version: str,
) -> None:
    now = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
    payload = rv2.set_charging_profile(
        9000, purpose, evse, transaction_id, unit, limit, phases, 8, now
    )
    profile = payload["chargingProfile"]
    assert payload["evseId"] == evse
    assert profile["chargingProfilePurpose"] == rv2.PURPOSES.get(purpose, purpose)
    assert profile.get("transactionId") == transaction_id
    schedule = profile["chargingSchedule"][0]
    assert schedule["startSchedule"] == "2026-01-01T11:59:00Z"
    assert schedule["chargingSchedulePeriod"][0] == (
        {"startPeriod": 0, "limit": limit} | ({"numberPhases": phases} if phases else {})
    )
    valid("SetChargingProfile", payload, version)
