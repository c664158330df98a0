"""README "Actuators" end to end: every actuator from its mapped MQTT topic to a station
in strict schema mode (the ocpp library validates each call it receives), the
payload it gets, and the result on MQTT. Real Mosquitto, real WebSockets.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest

from connector.actuators import NAMES as ACTUATORS
from connector.simulator.core import SimulatorOptions
from connector.simulator.v16 import SimulatedChargePoint
from connector.tests.helpers import (
    Mosquitto,
    Probe,
    StartStation,
    connector_settings,
    equal_to,
    eventually,
    running_connector,
)

pytestmark = pytest.mark.broker

CP = "CP_1"


def key(actuator: str, connector_id: int | None = None) -> str:
    base = f"{CP}__execute_{actuator}"
    return base if connector_id is None else f"{base}__{connector_id}"


Prepare = Callable[[SimulatedChargePoint], Awaitable[Any]]


async def nothing(station: SimulatedChargePoint) -> None:
    return None


async def charging(station: SimulatedChargePoint) -> int:
    return await station.start_transaction(1)


@dataclass
class Case:
    actuator_key: str
    value: Any
    action: str
    # the payload, or a function of the station and what `prepare` returned
    payload: Callable[[SimulatedChargePoint, Any], dict[str, Any]] | dict[str, Any]
    results: dict[str, Any]  # datapoint key (after "CP_1__") -> value
    prepare: Prepare = nothing
    options: dict[str, Any] = field(default_factory=dict)


CASES: dict[str, Case] = {
    "remote_start": Case(
        key("remote_start_transaction", 1),
        "TAG7",
        "RemoteStartTransaction",
        {"idTag": "TAG7", "connectorId": 1},
        {"RemoteStartTransaction__status": "Accepted", "StartTransaction__1__idTag": "TAG7"},
    ),
    "remote_stop_connector": Case(
        key("remote_stop_transaction", 1),
        True,
        "RemoteStopTransaction",
        lambda s, transaction_id: {"transactionId": transaction_id},
        {"RemoteStopTransaction__status": "Accepted", "StopTransaction__1__reason": "Remote"},
        prepare=charging,
    ),
    "remote_stop_station": Case(
        key("remote_stop_transaction"),
        "424242",
        "RemoteStopTransaction",
        {"transactionId": 424242},
        {"RemoteStopTransaction__status": "Rejected"},  # the station runs no such transaction
    ),
    "change_availability": Case(
        key("change_availability", 1),
        "Inoperative",
        "ChangeAvailability",
        {"connectorId": 1, "type": "Inoperative"},
        {"ChangeAvailability__status": "Accepted", "StatusNotification__1__status": "Unavailable"},
    ),
    "reset": Case(
        key("reset"),
        "Soft",
        "Reset",
        {"type": "Soft"},
        {"Reset__status": "Accepted"},
    ),
    "unlock_connector": Case(
        key("unlock_connector", 1),
        1,
        "UnlockConnector",
        {"connectorId": 1},
        {"UnlockConnector__status": "Unlocked"},
    ),
    "clear_charging_profile": Case(
        key("clear_charging_profile", 1),
        1,
        "ClearChargingProfile",
        {"id": 8001},  # after {"id": 7001}: the ids this connector's profiles use
        {"ClearChargingProfile__status": "Unknown", "ChargingLimit__1__W": None},
    ),
    "change_configuration": Case(
        key("change_configuration"),
        "MeterValueSampleInterval=60",
        "ChangeConfiguration",
        {"key": "MeterValueSampleInterval", "value": "60"},
        {
            "ChangeConfiguration__status": "Accepted",
            "Configuration__MeterValueSampleInterval": "60",
        },
    ),
    "change_configuration_reboot": Case(
        key("change_configuration"),
        "HeartbeatInterval=120",
        "ChangeConfiguration",
        {"key": "HeartbeatInterval", "value": "120"},
        {
            "ChangeConfiguration__status": "RebootRequired",
            "Configuration__HeartbeatInterval": "120",
        },
        options={"responses": {"ChangeConfiguration": "RebootRequired"}},
    ),
    "get_configuration": Case(
        key("get_configuration"),
        "NumberOfConnectors",
        "GetConfiguration",
        {"key": ["NumberOfConnectors"]},
        {"GetConfiguration__status": "Accepted", "Configuration__NumberOfConnectors": "1"},
    ),
    "data_transfer": Case(
        key("data_transfer"),
        '{"vendorId": "com.example", "messageId": "ping", "data": "hi"}',
        "DataTransfer",
        {"vendorId": "com.example", "messageId": "ping", "data": "hi"},
        {
            "DataTransfer__status": "Accepted",
            "DataTransfer__response__status": "Accepted",
            "DataTransfer__response__data": "echo:hi",
        },
    ),
    "get_composite_schedule": Case(
        key("get_composite_schedule", 1),
        3600,
        "GetCompositeSchedule",
        {"connectorId": 1, "duration": 3600},
        {"GetCompositeSchedule__status": "Accepted", "CompositeSchedule__1__limit": 11000},
    ),
    "update_firmware": Case(
        key("update_firmware"),
        "https://example.com/fw-2.0.bin",
        "UpdateFirmware",
        lambda s, _: {
            "location": "https://example.com/fw-2.0.bin",
            "retrieveDate": s.calls("UpdateFirmware")[-1]["retrieveDate"],
        },
        {"UpdateFirmware__status": "Accepted", "FirmwareStatusNotification__status": "Installed"},
    ),
    "get_diagnostics": Case(
        key("get_diagnostics"),
        "ftp://logs.example.com/upload/",
        "GetDiagnostics",
        {"location": "ftp://logs.example.com/upload/"},
        {
            "GetDiagnostics__status": "Accepted",
            "GetDiagnostics__fileName": "diagnostics-CP_1.zip",
            "DiagnosticsStatusNotification__status": "Uploaded",
        },
    ),
}


def all_settings(name: str, port: int, **overrides: Any) -> Any:
    return connector_settings(name, port, ocpp_config=ACTUATORS, **overrides)


@pytest.mark.parametrize("case_id", list(CASES))
async def test_each_command(
    mosquitto: Mosquitto, probe: Probe, name: str, case_id: str, start_station: StartStation
) -> None:
    case = CASES[case_id]
    result_keys = [f"{CP}__{k}" for k in case.results]

    probe.map(sensors=result_keys, actuators=[case.actuator_key])
    options = SimulatorOptions(meter_interval=0, **case.options)
    async with running_connector(all_settings(name, mosquitto.port)) as bridge:
        async with start_station(bridge, CP, options) as station:
            prepared = await case.prepare(station)
            await eventually(lambda: bridge.central.stations[CP].learned.is_set())  # type: ignore[union-attr]
            before = len(station.calls(case.action))
            probe.command(probe.actuator_topic(case.actuator_key), case.value)
            await eventually(lambda: len(station.calls(case.action)) > before)
            payload = case.payload
            expected = payload(station, prepared) if callable(payload) else payload
            sent = station.calls(case.action)[-1]
            assert sent == expected
            for result_key, value in case.results.items():
                assert await probe.value(f"{CP}__{result_key}", equal_to(value)) == value


INVALID = [
    (key("remote_start_transaction"), "", "empty"),
    (key("remote_stop_transaction"), "latest", "whole number"),
    (key("change_availability", 1), "sometimes", "Operative"),
    (key("reset"), "Now", "Soft or Hard"),
    (key("unlock_connector"), 1, "connector key"),
    (key("change_configuration"), "HeartbeatInterval", "Key=Value"),
    (key("get_configuration"), "K" * 51, "at most 50"),
    (key("data_transfer"), '{"data": "x"}', "vendorId"),
    (key("get_composite_schedule", 1), -5, "from 1"),
    (key("update_firmware"), "file:///etc/shadow", "http, https, ftp or ftps"),
    (key("get_diagnostics"), "not a url", "spaces"),
    (key("clear_charging_profile", 1000), 1, "connector id"),
]


@pytest.mark.parametrize(("actuator_key", "value", "reason"), INVALID)
async def test_invalid_values_are_logged_and_nothing_is_sent(
    mosquitto: Mosquitto,
    probe: Probe,
    name: str,
    actuator_key: str,
    value: Any,
    reason: str,
    start_station: StartStation,
) -> None:
    probe.map(actuators=[actuator_key])
    async with running_connector(all_settings(name, mosquitto.port)) as bridge:
        async with start_station(bridge, CP, SimulatorOptions(meter_interval=0)) as station:
            await eventually(lambda: bridge.central.stations[CP].learned.is_set())  # type: ignore[union-attr]
            before = len(station.received)
            topic = probe.actuator_topic(actuator_key)
            probe.command(topic, value)
            log = await probe.wait_for_log(topic, reason, "nothing was sent")
            assert log["level"] == 40
            await asyncio.sleep(0.3)
            assert station.received[before:] == []


@pytest.mark.parametrize(
    ("options", "status"),
    [
        ({"responses": {"Reset": "Rejected"}}, "Rejected"),
        ({"call_errors": {"Reset": "NotSupported"}}, "CallError:NotSupported"),
        ({"silent": {"Reset"}}, "Timeout"),
    ],
)
async def test_rejected_unsupported_and_silent(
    mosquitto: Mosquitto,
    probe: Probe,
    name: str,
    options: dict[str, Any],
    status: str,
    start_station: StartStation,
) -> None:
    probe.map(sensors=[f"{CP}__Reset__status"], actuators=[key("reset")])
    settings = all_settings(name, mosquitto.port, ocpp_response_timeout=1.0)
    async with running_connector(settings) as bridge:
        async with start_station(bridge, CP, SimulatorOptions(meter_interval=0, **options)):
            probe.command(probe.actuator_topic(key("reset")), "Hard")
            assert await probe.value(f"{CP}__Reset__status") == status


async def test_remote_stop_without_a_running_transaction_says_so(
    mosquitto: Mosquitto, probe: Probe, name: str, start_station: StartStation
) -> None:
    probe.map(actuators=[key("remote_stop_transaction", 1)])
    async with running_connector(all_settings(name, mosquitto.port)) as bridge:
        async with start_station(bridge, CP, SimulatorOptions(meter_interval=0)) as station:
            probe.command(probe.actuator_topic(key("remote_stop_transaction", 1)), 1)
            await probe.wait_for_log(CP, "no transaction", "connector 1")
            assert station.calls("RemoteStopTransaction") == []


async def test_a_transaction_seen_only_in_meter_values_can_be_stopped(
    mosquitto: Mosquitto, probe: Probe, name: str, start_station: StartStation
) -> None:
    """After a restart of the connector, the running transaction is known from MeterValues."""

    probe.map(actuators=[key("remote_stop_transaction", 1)])
    async with running_connector(all_settings(name, mosquitto.port)) as bridge:
        async with start_station(bridge, CP, SimulatorOptions(meter_interval=0)) as station:
            station.transaction_id, station.transaction_connector = 5150, 1
            await station.send_meter_values(1, 1)
            probe.command(probe.actuator_topic(key("remote_stop_transaction", 1)), True)
            await eventually(lambda: station.calls("RemoteStopTransaction") != [])
            assert station.calls("RemoteStopTransaction")[-1] == {"transactionId": 5150}


async def test_order_per_station_and_no_delay_for_others(
    mosquitto: Mosquitto, probe: Probe, name: str, start_station: StartStation
) -> None:
    """One station's commands arrive in order; a silent station delays only itself,
    and by one response timeout per command at most."""

    change = key("change_configuration")
    silent_reset = "SILENT__execute_reset"
    silent_get = "SILENT__execute_get_configuration"
    probe.map(actuators=[change, silent_reset, silent_get])
    settings = all_settings(name, mosquitto.port, ocpp_response_timeout=2.0)
    async with running_connector(settings) as bridge:
        silent_options = SimulatorOptions(meter_interval=0, silent={"Reset"})
        async with (
            start_station(bridge, CP, SimulatorOptions(meter_interval=0)) as station,
            start_station(bridge, "SILENT", silent_options) as silent,
        ):
            central = bridge.central
            assert central is not None
            await eventually(lambda: all(s.learned.is_set() for s in central.stations.values()))
            probe.command(probe.actuator_topic(silent_reset), "Soft")
            await eventually(lambda: silent.calls("Reset") != [])
            started = time.monotonic()
            gets_before = len(silent.calls("GetConfiguration"))
            probe.command(probe.actuator_topic(silent_get), "")
            for index in range(5):
                probe.command(probe.actuator_topic(change), f"HeartbeatInterval={100 + index}")
            await eventually(lambda: len(station.calls("ChangeConfiguration")) == 5)
            # The other station was served while the silent one held its call.
            assert time.monotonic() - started < 1.5
            values = [c["value"] for c in station.calls("ChangeConfiguration")]
            assert values == [str(100 + i) for i in range(5)]
            # The silent station's next command follows within one response timeout.
            await eventually(lambda: len(silent.calls("GetConfiguration")) > gets_before, timeout=5)
            assert time.monotonic() - started < 2.0 + 1.5
