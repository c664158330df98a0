"""README "OCPP 2.0.1 and 2.1 stations" end to end: OCPP 2.0.1 and 2.1 stations beside 1.6 ones.

Real Mosquitto, real WebSockets, and the simulated 2.x station on the ocpp
library's client side, which validates every call it gets against the
version's schemas (strict mode).
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from ocpp.messages import CallResult, validate_payload
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from connector.simulator.core import SimulatorOptions
from connector.tests.helpers import (
    Mosquitto,
    Probe,
    StartStation,
    connector_settings,
    equal_to,
    eventually,
    running_connector,
    station_url,
)

pytestmark = pytest.mark.broker

CP = "CP_2"
V2 = ["2.0.1", "2.1"]
ALL = "all"


def settings(name: str, port: int, **overrides: Any) -> Any:
    from connector.actuators import NAMES as ACTUATORS

    return connector_settings(name, port, ocpp_config=ACTUATORS, **overrides)


def k(*parts: Any) -> str:
    return "__".join([CP, *(str(p) for p in parts)])


def options(**overrides: Any) -> SimulatorOptions:
    return SimulatorOptions(meter_interval=0, **overrides)


@pytest.mark.parametrize("version", V2)
async def test_boot_status_learning_and_actuators(
    mosquitto: Mosquitto, probe: Probe, name: str, version: str, start_station: StartStation
) -> None:
    boot = [k("BootNotification", f) for f in ("chargingStation.vendorName", "reason")]
    learned = [k("Variable", "SmartChargingCtrlr", "RateUnit")]
    status = [k("StatusNotification", 1, f) for f in ("connectorStatus", "connectorId")]
    probe.map(sensors=[*boot, *learned, *status, k("connected")])
    async with running_connector(settings(name, mosquitto.port)) as bridge:
        async with start_station(bridge, CP, options(), version=version) as station:
            assert station._connection.subprotocol == f"ocpp{version}"
            assert await probe.value(boot[0]) == "FZI"
            assert await probe.value(boot[1]) == "PowerUp"
            assert await probe.value(status[0]) == "Available"
            assert await probe.value(status[1]) == 1
            assert await probe.value(learned[0]) == "Current,Power"
            assert await probe.value(k("connected")) is True
            listed = await probe.wait_for(
                f"{name}/available_datapoints",
                lambda m: k("execute_send_charging_profile", 1) in m["actuator"],
            )
            actuators = set(listed["actuator"])
            assert k("execute_reset") in actuators
            assert k("execute_set_variable_monitoring") in actuators
            # Streams exist in 2.1 only.
            assert (k("execute_get_periodic_event_stream") in actuators) == (version == "2.1")
            await probe.wait_for_log(CP, "charging rate units A/W, max stack level 8")


@pytest.mark.parametrize("version", V2)
async def test_transaction_events_and_meter_values(
    mosquitto: Mosquitto, probe: Probe, name: str, version: str, start_station: StartStation
) -> None:
    energy = k("MeterValues", 1, "Energy.Active.Import.Register", "Wh")
    power = k("MeterValues", 1, "Power.Active.Import", "W")
    keys = [
        energy,
        power,
        k("MeterValues", 1, "Current.Import", "L1", "A"),
        k("MeterValues", 1, "transactionId"),
        k("TransactionEvent", 1, "eventType"),
        k("TransactionEvent", 1, "seqNo"),
        k("TransactionEvent", 1, "idToken.idToken"),
        k("TransactionEvent", 1, "transactionInfo.stoppedReason"),
        k("Authorize", "idToken"),
    ]

    probe.map(sensors=keys)
    async with running_connector(settings(name, mosquitto.port)) as bridge:
        async with start_station(bridge, CP, options(), version=version) as station:
            answer = await station.call(
                station._call.Authorize(id_token={"idToken": "TAG9", "type": "ISO14443"})
            )
            assert answer.id_token_info["status"] == "Accepted"
            assert await probe.value(k("Authorize", "idToken")) == "TAG9"
            transaction_id = await station.start_transaction(1, "TAG1")
            assert await probe.value(keys[4]) == "Started"
            assert await probe.value(keys[6]) == "TAG1"
            assert await probe.value(keys[3]) == transaction_id  # the station's string
            station.energy_wh = 13.5  # sent as 0.0135 kWh with multiplier -3
            await station.update_transaction(0)  # no `evse`: EVSE 1, from the start
            assert await probe.value(keys[4], lambda v: v == "Updated")
            assert await probe.value(energy, lambda v: v == 13.5)
            assert await probe.value(power) == 11000
            assert await probe.value(keys[2]) == 15.9
            station.seq_no += 3  # three events lost
            await station.update_transaction(0)
            await probe.wait_for_log(CP, f"transaction {transaction_id}: seqNo 5 follows 1")
            await station.stop_transaction("EVDisconnected")
            assert await probe.value(keys[7]) == "EVDisconnected"
            assert await probe.value(keys[4], lambda v: v == "Ended")
            # Plain MeterValues map to the same keys as 1.6.
            station.energy_wh = 20
            await station.send_meter_values(1, 0)
            assert await probe.value(energy, lambda v: v == 20)


@pytest.mark.parametrize("version", V2)
async def test_charging_limits(
    mosquitto: Mosquitto, probe: Probe, name: str, version: str, start_station: StartStation
) -> None:
    station_key = k("execute_send_charging_profile")
    evse_key = k("execute_send_charging_profile", 1)

    probe.map(
        sensors=[
            k("ChargingLimit", "W"),
            k("ChargingLimit", 1, "W"),
            k("SetChargingProfile", "status"),
        ],
        actuators=[station_key, evse_key],
    )
    async with running_connector(settings(name, mosquitto.port)) as bridge:
        async with start_station(bridge, CP, options(), version=version) as station:
            await eventually(lambda: bridge.central.stations[CP].learned.is_set())  # type: ignore[union-attr]
            probe.command(probe.actuator_topic(station_key), 7400)
            assert await probe.value(k("ChargingLimit", "W")) == 7400
            sent = station.calls("SetChargingProfile")[-1]
            assert sent["evseId"] == 0
            profile = sent["chargingProfile"]
            assert profile["chargingProfilePurpose"] == "ChargingStationMaxProfile"
            assert profile["chargingSchedule"][0]["chargingRateUnit"] == "W"
            assert profile["stackLevel"] == 8
            assert station.limit_w(1) == 7400

            transaction_id = await station.start_transaction(1)
            probe.command(probe.actuator_topic(evse_key), 4000)
            assert await probe.value(k("ChargingLimit", 1, "W")) == 4000
            purposes = [
                (
                    c["chargingProfile"]["chargingProfilePurpose"],
                    c["chargingProfile"].get("transactionId"),
                )
                for c in station.calls("SetChargingProfile")[-2:]
            ]
            assert purposes == [("TxProfile", transaction_id), ("TxDefaultProfile", None)]
            assert station.power_w(1) == 4000

            probe.command(probe.actuator_topic(evse_key), None)
            assert await probe.value(k("ChargingLimit", 1, "W"), lambda v: v is None) is None
            cleared = {c["chargingProfileId"] for c in station.calls("ClearChargingProfile")}
            assert cleared == {7001, 8001}
            assert station.power_w(1) == 7400


@pytest.mark.parametrize("version", V2)
async def test_a_station_that_takes_only_amperes(
    mosquitto: Mosquitto, probe: Probe, name: str, version: str, start_station: StartStation
) -> None:
    evse_key = k("execute_send_charging_profile", 1)
    probe.map(sensors=[k("ChargingLimit", 1, "A")], actuators=[evse_key])
    quirks = options(rate_units="A", accepted_units={"A"})
    async with running_connector(settings(name, mosquitto.port)) as bridge:
        async with start_station(bridge, CP, quirks, version=version) as station:
            await station.send_meter_values(1, 0)  # 230.1 V on three phases
            probe.command(probe.actuator_topic(evse_key), 11000)
            assert await probe.value(k("ChargingLimit", 1, "A")) == 15.9
            period = station.calls("SetChargingProfile")[-1]["chargingProfile"]["chargingSchedule"][
                0
            ]["chargingSchedulePeriod"][0]
            assert period == {"startPeriod": 0, "limit": 15.9, "numberPhases": 3}


@pytest.mark.parametrize("version", V2)
async def test_limits_are_applied_again_after_a_reconnect(
    mosquitto: Mosquitto, probe: Probe, name: str, version: str, start_station: StartStation
) -> None:
    station_key = k("execute_send_charging_profile")
    probe.map(actuators=[station_key])
    async with running_connector(settings(name, mosquitto.port)) as bridge:
        probe.command(probe.actuator_topic(station_key), 5000)  # not connected: kept
        await probe.wait_for_log(CP, "not connected; the limit")
        async with start_station(bridge, CP, options(), version=version) as station:
            await eventually(lambda: station.limit_w(1) == 5000)
        async with start_station(bridge, CP, options(), version=version) as station:
            await eventually(lambda: station.limit_w(1) == 5000)


@pytest.mark.parametrize("version", V2)
async def test_triggers(
    mosquitto: Mosquitto, probe: Probe, name: str, version: str, start_station: StartStation
) -> None:
    trigger_evse = k("execute_trigger_message", 1)
    trigger = k("execute_trigger_message")
    probe.map(
        sensors=[k("TriggerMessage", "status"), k("LogStatusNotification", "status")],
        actuators=[trigger, trigger_evse],
    )
    async with running_connector(settings(name, mosquitto.port)) as bridge:
        async with start_station(bridge, CP, options(), version=version) as station:
            await eventually(lambda: bridge.central.stations[CP].learned.is_set())  # type: ignore[union-attr]
            probe.command(probe.actuator_topic(trigger_evse), 4)
            await eventually(lambda: bool(station.calls("TriggerMessage")))
            assert station.calls("TriggerMessage")[-1] == {
                "requestedMessage": "MeterValues",
                "evse": {"id": 1},
            }
            probe.command(probe.actuator_topic(trigger), 1)
            assert await probe.value(k("LogStatusNotification", "status")) == "Idle"
            probe.command(probe.actuator_topic(trigger), "transactionevent")
            await eventually(lambda: len(station.calls("TriggerMessage")) == 3)
            assert station.calls("TriggerMessage")[-1] == {"requestedMessage": "TransactionEvent"}
            probe.command(probe.actuator_topic(trigger), "DiagnosticsStatusNotification")
            await probe.wait_for_log("unknown trigger")


async def test_handshake_picks_the_newest_common_version(mosquitto: Mosquitto, name: str) -> None:
    async with running_connector(settings(name, mosquitto.port)) as bridge:
        url = station_url(bridge, CP)
        offered = ["ocpp1.6", "ocpp2.1", "ocpp2.0.1"]
        async with connect(url, subprotocols=offered) as ws:  # type: ignore[arg-type]
            assert ws.subprotocol == "ocpp2.1"
    only_16 = settings(name, mosquitto.port, ocpp_versions=("ocpp1.6",))
    async with running_connector(only_16) as bridge:
        url = station_url(bridge, CP)
        with pytest.raises(InvalidStatus) as refused:
            async with connect(url, subprotocols=["ocpp2.0.1"]):  # type: ignore[list-item]
                pass
        assert refused.value.response.status_code == 400
        async with connect(url, subprotocols=["ocpp2.0.1", "ocpp1.6"]) as ws:  # type: ignore[list-item]
            assert ws.subprotocol == "ocpp1.6"


async def test_a_restarted_connector_serves_a_known_station_that_does_not_boot(
    mosquitto: Mosquitto, probe: Probe, name: str, start_station: StartStation
) -> None:
    """2.x forbids triggering a BootNotification: the record kept on the broker
    lets a restarted connector serve the station as accepted."""

    station_key = k("execute_send_charging_profile")
    probe.map(actuators=[station_key])
    async with running_connector(settings(name, mosquitto.port)) as bridge:
        async with start_station(bridge, CP, options(), version="2.0.1") as station:
            probe.command(probe.actuator_topic(station_key), 6000)
            await eventually(lambda: station.limit_w(1) == 6000)
    # A new run of the connector; the station reconnects without booting.
    async with running_connector(settings(name, mosquitto.port)) as bridge:
        async with start_station(bridge, CP, options(), boot=False, version="2.0.1") as station:
            await probe.wait_for_log(CP, "served as accepted")
            await eventually(lambda: bool(station.calls("SetChargingProfile")))
            triggers = [c["requestedMessage"] for c in station.calls("TriggerMessage")]
            assert triggers == ["StatusNotification"]
            assert station.calls("GetVariables")
        # Another station, never seen: it is left to boot; nothing is triggered.
        async with start_station(
            bridge, "CP_NEW", options(), boot=False, version="2.0.1"
        ) as stranger:
            await probe.wait_for_log("CP_NEW", "waiting for it")
            await asyncio.sleep(0.3)
            assert stranger.received == []


# ---- every actuator on a 2.x station ---------------------------

COMMANDS: dict[str, tuple[str, Any, str, Any, dict[str, Any]]] = {
    # id: (actuator key, value, 2.x action, payload or check, results after CP__)
    "remote_start": (
        k("execute_remote_start_transaction", 1),
        "TAG7",
        "RequestStartTransaction",
        lambda p: (
            p["idToken"] == {"idToken": "TAG7", "type": "Central"}
            and p["evseId"] == 1
            and isinstance(p["remoteStartId"], int)
        ),
        {
            "RequestStartTransaction__status": "Accepted",
            "TransactionEvent__1__eventType": "Started",
        },
    ),
    "remote_stop_station": (
        k("execute_remote_stop_transaction"),
        "no-such-tx",
        "RequestStopTransaction",
        {"transactionId": "no-such-tx"},
        {"RequestStopTransaction__status": "Rejected"},
    ),
    "change_availability": (
        k("execute_change_availability", 1),
        "Inoperative",
        "ChangeAvailability",
        {"operationalStatus": "Inoperative", "evse": {"id": 1}},
        {"ChangeAvailability__status": "Accepted"},
    ),
    "reset_soft": (
        k("execute_reset"),
        "Soft",
        "Reset",
        {"type": "OnIdle"},
        {"Reset__status": "Accepted"},
    ),
    "reset_hard": (k("execute_reset"), "Hard", "Reset", {"type": "Immediate"}, {}),
    "unlock": (
        k("execute_unlock_connector", 1),
        True,
        "UnlockConnector",
        {"evseId": 1, "connectorId": 1},
        {"UnlockConnector__status": "Unlocked"},
    ),
    "clear_charging_profile": (
        k("execute_clear_charging_profile", 1),
        True,
        "ClearChargingProfile",
        lambda p: p["chargingProfileId"] in (7001, 8001),
        {"ClearChargingProfile__status": "Unknown", "ChargingLimit__1__W": None},
    ),
    "change_configuration": (
        k("execute_change_configuration"),
        "SampledDataCtrlr.TxUpdatedInterval=60",
        "SetVariables",
        {
            "setVariableData": [
                {
                    "attributeValue": "60",
                    "component": {"name": "SampledDataCtrlr"},
                    "variable": {"name": "TxUpdatedInterval"},
                }
            ]
        },
        {"SetVariables__status": "Accepted", "Variable__SampledDataCtrlr__TxUpdatedInterval": 60},
    ),
    "change_configuration_read_only": (
        k("execute_change_configuration"),
        "SmartChargingCtrlr.RateUnit=W",
        "SetVariables",
        lambda p: p["setVariableData"][0]["attributeValue"] == "W",
        {"SetVariables__status": "Rejected"},
    ),
    "get_configuration": (
        k("execute_get_configuration"),
        "SmartChargingCtrlr.ProfileStackLevel",
        "GetVariables",
        {
            "getVariableData": [
                {
                    "component": {"name": "SmartChargingCtrlr"},
                    "variable": {"name": "ProfileStackLevel"},
                }
            ]
        },
        {"GetVariables__status": "Accepted", "Variable__SmartChargingCtrlr__ProfileStackLevel": 8},
    ),
    "get_base_report": (
        k("execute_get_configuration"),
        "",
        "GetBaseReport",
        lambda p: p["reportBase"] == "FullInventory" and isinstance(p["requestId"], int),
        {"GetBaseReport__status": "Accepted", "Variable__EVSE@1__Power__maxLimit": 11000.0},
    ),
    "data_transfer": (
        k("execute_data_transfer"),
        '{"vendorId": "com.example", "messageId": "ping", "data": {"n": 1}}',
        "DataTransfer",
        {"vendorId": "com.example", "messageId": "ping", "data": {"n": 1}},
        {
            "DataTransfer__response__status": "Accepted",
            "DataTransfer__response__data": '{"echo": {"n": 1}}',
        },
    ),
    "get_composite_schedule": (
        k("execute_get_composite_schedule", 1),
        3600,
        "GetCompositeSchedule",
        {"evseId": 1, "duration": 3600},
        {"GetCompositeSchedule__status": "Accepted", "CompositeSchedule__1__limit": 11000.0},
    ),
    "update_firmware": (
        k("execute_update_firmware"),
        "https://example.com/fw.bin",
        "UpdateFirmware",
        lambda p: (
            p["firmware"]["location"] == "https://example.com/fw.bin"
            and p["firmware"]["retrieveDateTime"].endswith("Z")
        ),
        {"UpdateFirmware__status": "Accepted", "FirmwareStatusNotification__status": "Installed"},
    ),
    "get_diagnostics": (
        k("execute_get_diagnostics"),
        "ftp://example.com/up/",
        "GetLog",
        lambda p: (
            p["logType"] == "DiagnosticsLog"
            and p["log"] == {"remoteLocation": "ftp://example.com/up/"}
        ),
        {
            "GetLog__status": "Accepted",
            "GetLog__filename": "diagnostics.zip",
            "LogStatusNotification__status": "Uploaded",
        },
    ),
    "set_variable_monitoring": (
        k("execute_set_variable_monitoring"),
        {"component": "EVSE", "evseId": 1, "variable": "Power", "type": "Periodic", "interval": 5},
        "SetVariableMonitoring",
        {
            "setMonitoringData": [
                {
                    "value": 5,
                    "type": "Periodic",
                    "severity": 8,
                    "component": {"name": "EVSE", "evse": {"id": 1}},
                    "variable": {"name": "Power"},
                }
            ]
        },
        {"SetVariableMonitoring__status": "Accepted", "SetVariableMonitoring__id": 2},
    ),
    "clear_variable_monitoring": (
        k("execute_clear_variable_monitoring"),
        99,
        "ClearVariableMonitoring",
        {"id": [99]},
        {"ClearVariableMonitoring__status": "NotFound"},
    ),
}


@pytest.mark.parametrize("case_id", sorted(COMMANDS))
async def test_each_command_on_a_2x_station(
    mosquitto: Mosquitto, probe: Probe, name: str, case_id: str, start_station: StartStation
) -> None:
    actuator_key, value, action, expected, results = COMMANDS[case_id]
    result_keys = [f"{CP}__{r}" for r in results]

    probe.map(sensors=result_keys, actuators=[actuator_key])
    async with running_connector(settings(name, mosquitto.port)) as bridge:
        async with start_station(bridge, CP, options(), version="2.0.1") as station:
            await eventually(lambda: bridge.central.stations[CP].learned.is_set())  # type: ignore[union-attr]
            before = len(station.calls(action))
            probe.command(probe.actuator_topic(actuator_key), value)
            await eventually(lambda: len(station.calls(action)) > before)
            sent = station.calls(action)[before]
            assert expected(sent) if callable(expected) else sent == expected, sent
            for key, result in zip(result_keys, results.values(), strict=True):
                assert await probe.value(key, equal_to(result)) == result


async def test_remote_stop_on_an_evse_stops_its_running_transaction(
    mosquitto: Mosquitto, probe: Probe, name: str, start_station: StartStation
) -> None:
    stop = k("execute_remote_stop_transaction", 1)
    reason = k("TransactionEvent", 1, "transactionInfo.stoppedReason")
    probe.map(sensors=[reason], actuators=[stop])
    async with running_connector(settings(name, mosquitto.port)) as bridge:
        async with start_station(bridge, CP, options(), version="2.0.1") as station:
            transaction_id = await station.start_transaction(1)
            probe.command(probe.actuator_topic(stop), True)
            assert await probe.value(reason) == "Remote"
            assert station.calls("RequestStopTransaction") == [{"transactionId": transaction_id}]


# ---- every station message: validated, answered per spec, published --------

T = "2026-01-01T00:00:00Z"
PROFILE = {
    "id": 1,
    "stackLevel": 0,
    "chargingProfilePurpose": "TxDefaultProfile",
    "chargingProfileKind": "Absolute",
    "chargingSchedule": [
        {
            "id": 1,
            "chargingRateUnit": "W",
            "chargingSchedulePeriod": [{"startPeriod": 0, "limit": 1000}],
        }
    ],
}
STATION_MESSAGES = {
    "FirmwareStatusNotification": {"status": "Installed"},
    "LogStatusNotification": {"status": "Uploaded"},
    "SecurityEventNotification": {"type": "FirmwareUpdated", "timestamp": T},
    "NotifyChargingLimit": {"chargingLimit": {"chargingLimitSource": "EMS"}, "evseId": 1},
    "ClearedChargingLimit": {"chargingLimitSource": "EMS"},
    "NotifyEVChargingNeeds": {
        "evseId": 1,
        "chargingNeeds": {"requestedEnergyTransfer": "AC_three_phase"},
    },
    "NotifyEVChargingSchedule": {
        "timeBase": T,
        "evseId": 1,
        "chargingSchedule": {
            "id": 1,
            "chargingRateUnit": "W",
            "chargingSchedulePeriod": [{"startPeriod": 0, "limit": 1000}],
        },
    },
    "ReportChargingProfiles": {
        "requestId": 1,
        "chargingLimitSource": "CSO",
        "evseId": 1,
        "chargingProfile": [PROFILE],
    },
    "NotifyCustomerInformation": {"data": "x", "seqNo": 0, "generatedAt": T, "requestId": 1},
    "NotifyDisplayMessages": {"requestId": 1},
    "PublishFirmwareStatusNotification": {"status": "Published"},
    "ReservationStatusUpdate": {"reservationId": 1, "reservationUpdateStatus": "Expired"},
    "Get15118EVCertificate": {"iso15118SchemaVersion": "x", "action": "Install", "exiRequest": "x"},
    "GetCertificateStatus": {
        "ocspRequestData": {
            "hashAlgorithm": "SHA256",
            "issuerNameHash": "a",
            "issuerKeyHash": "b",
            "serialNumber": "c",
            "responderURL": "http://x",
        }
    },
    "SignCertificate": {"csr": "x"},
    "NotifyMonitoringReport": {"requestId": 1, "seqNo": 0, "generatedAt": T},
    "NotifyEvent": {
        "generatedAt": T,
        "seqNo": 0,
        "eventData": [
            {
                "eventId": 1,
                "timestamp": T,
                "trigger": "Delta",
                "actualValue": "230",
                "eventNotificationType": "HardWiredNotification",
                "component": {"name": "EVSE", "evse": {"id": 1}},
                "variable": {"name": "Power"},
            }
        ],
    },
    "NotifyReport": {
        "requestId": 1,
        "generatedAt": T,
        "seqNo": 0,
        "reportData": [
            {
                "component": {"name": "SmartChargingCtrlr"},
                "variable": {"name": "RateUnit"},
                "variableAttribute": [{"value": "W"}],
            }
        ],
    },
    "DataTransfer": {"vendorId": "com.example", "data": [1, 2]},
    "Heartbeat": {},
    "Authorize": {"idToken": {"idToken": "T", "type": "ISO14443"}},
    "StatusNotification": {
        "timestamp": T,
        "connectorStatus": "Occupied",
        "evseId": 1,
        "connectorId": 1,
    },
    "MeterValues": {
        "evseId": 1,
        "meterValue": [{"timestamp": T, "sampledValue": [{"value": 1.5}]}],
    },
    "TransactionEvent": {
        "eventType": "Started",
        "timestamp": T,
        "triggerReason": "Authorized",
        "seqNo": 0,
        "transactionInfo": {"transactionId": "t1"},
        "evse": {"id": 1},
    },
    "BootNotification": {"chargingStation": {"model": "M", "vendorName": "V"}, "reason": "PowerUp"},
}
STATION_MESSAGES_21 = {
    "PullDynamicScheduleUpdate": {"chargingProfileId": 1},
    "VatNumberValidation": {"vatNumber": "DE1"},
    "NotifyPriorityCharging": {"transactionId": "t", "activated": True},
    "ReportDERControl": {"requestId": 1},
    "OpenPeriodicEventStream": {
        "constantStreamData": {"id": 1, "variableMonitoringId": 1, "params": {}}
    },
    "ClosePeriodicEventStream": {"id": 1},
    "BatterySwap": {
        "eventType": "BatteryIn",
        "requestId": 1,
        "idToken": {"idToken": "T", "type": "ISO14443"},
        "batteryData": [{"evseId": 1, "serialNumber": "s", "soC": 50, "soH": 90}],
    },
}


async def exchange(ws: Any, frame: Any, timeout: float = 5.0) -> Any:
    """Send a frame; the next answer or error, past the connector's own calls."""
    await ws.send(frame if isinstance(frame, str) else json.dumps(frame))
    while True:
        received = json.loads(await asyncio.wait_for(ws.recv(), timeout))
        if received[0] != 2:
            return received


@pytest.mark.parametrize("version", V2)
async def test_every_station_message_is_answered_and_published(
    mosquitto: Mosquitto, name: str, version: str
) -> None:
    messages = dict(STATION_MESSAGES)
    if version == "2.1":
        messages.update(STATION_MESSAGES_21)

    async with running_connector(settings(name, mosquitto.port)) as bridge:
        url = station_url(bridge, CP)
        async with connect(url, subprotocols=[f"ocpp{version}"]) as ws:  # type: ignore[list-item]
            for number, (action, payload) in enumerate(messages.items()):
                answer = await exchange(ws, [2, f"m{number}", action, payload])
                assert answer[:2] == [3, f"m{number}"], (action, answer)
                # The answer is what the specification asks for.
                result = CallResult(f"m{number}", answer[2], action)
                await validate_payload(result, version)
            assert bridge.mqtt is not None
            keys = set(bridge.mqtt.available_sensors)
            for action in messages:
                if action in ("NotifyReport", "NotifyEvent"):
                    continue  # variables, checked below
                if action == "ClosePeriodicEventStream":
                    continue  # forgets the stream; nothing to publish
                if action == "OpenPeriodicEventStream":
                    action = "PeriodicEventStream"
                assert any(key.startswith(f"{CP}__{action}") for key in keys), action
            assert bridge.mqtt.last_value(k("Variable", "SmartChargingCtrlr", "RateUnit")) == "W"
            assert bridge.mqtt.last_value(k("Variable", "EVSE@1", "Power")) == 230
            assert bridge.mqtt.last_value(k("DataTransfer", "data")) == "[1, 2]"


@pytest.mark.parametrize(
    ("frame", "code"),
    [
        ('[2,"a","Heartbeat",', "FormatViolation"),  # not JSON
        ('[2,"b","FlyToTheMoon",{}]', "NotImplemented"),  # no such action
        ('[2,"c","Reset",{"type":"Immediate"}]', "NotSupported"),  # ours to send
        ('[2,"d","StatusNotification",{"evseId":1}]', "OccurrenceConstraintViolation"),
        (
            '[2,"e","StatusNotification",{"timestamp":"x","connectorStatus":"Occupied","evseId":"1","connectorId":1}]',
            "TypeConstraintViolation",
        ),
        (
            '[2,"f","BootNotification",{"chargingStation":{"model":"M","vendorName":"V"},"reason":"Bored"}]',
            "PropertyConstraintViolation",
        ),
        ('[7,"g","Heartbeat",{}]', "MessageTypeNotSupported"),
    ],
)
async def test_errors_use_the_2x_codes(
    mosquitto: Mosquitto, name: str, frame: str, code: str
) -> None:
    async with running_connector(settings(name, mosquitto.port)) as bridge:
        url = station_url(bridge, CP)
        async with connect(url, subprotocols=["ocpp2.0.1"]) as ws:  # type: ignore[list-item]
            answer = await exchange(ws, frame)
            assert answer[0] == 4 and answer[2] == code, answer
            # The connection stays open and served.
            assert (await exchange(ws, [2, "h", "Heartbeat", {}]))[0] == 3


# ---- periodic event streams (2.1) -------------------------------------------


async def test_a_periodic_event_stream_end_to_end(
    mosquitto: Mosquitto, probe: Probe, name: str, start_station: StartStation
) -> None:
    power = k("Variable", "EVSE@1", "Power")
    monitor = k("execute_set_variable_monitoring")
    adjust = k("execute_adjust_periodic_event_stream")
    get = k("execute_get_periodic_event_stream")

    probe.map(
        sensors=[power, k("SetVariableMonitoring", "id")],
        actuators=[monitor, adjust, get],
    )
    async with running_connector(settings(name, mosquitto.port)) as bridge:
        async with start_station(bridge, CP, options(), version="2.1") as station:
            await eventually(lambda: bridge.central.stations[CP].learned.is_set())  # type: ignore[union-attr]
            value = {
                "component": "EVSE",
                "evseId": 1,
                "variable": "Power",
                "type": "Periodic",
                "interval": 60,
                "stream": {"interval": 1, "values": 3},
            }
            probe.command(probe.actuator_topic(monitor), json.dumps(value))
            monitor_id = await probe.value(k("SetVariableMonitoring", "id"))
            sent = station.calls("SetVariableMonitoring")[0]["setMonitoringData"][0]
            assert sent["periodicEventStream"] == {"interval": 1, "values": 3}
            await eventually(lambda: bool(station.streams))
            stream_id = next(iter(station.streams))
            assert station.streams[stream_id]["variableMonitoringId"] == monitor_id
            await probe.wait_for_log(CP, f"stream {stream_id} opened, for monitor {monitor_id}")
            await station.stream(stream_id, ["7400.5", "7300", "7200"], pending=4)
            values = await probe.wait_for(probe.value_topic(power), lambda m: m["value"] == 7200)
            published = [m for m in probe.received(probe.value_topic(power))]
            assert [m["value"] for m in published] == [7400.5, 7300, 7200]
            stamps = [m["timestamp"] for m in published]
            assert stamps[1] - stamps[0] == 1000 and stamps[2] - stamps[1] == 1000
            assert values["timestamp"] == stamps[2]
            assert bridge.mqtt.last_value(k("PeriodicEventStream", stream_id, "pending")) == 4  # type: ignore[union-attr]
            # A SEND is never answered, and a bad one is dropped and logged.
            await station._send(json.dumps([6, "x1", "NotifyPeriodicEventStream", {"id": "?"}]))
            await probe.wait_for_log(CP, "dropped an invalid NotifyPeriodicEventStream")
            probe.command(probe.actuator_topic(adjust), {"id": stream_id, "values": 10})
            await eventually(lambda: station.streams[stream_id]["params"]["values"] == 10)
            probe.command(probe.actuator_topic(get), True)
            hub = bridge.mqtt
            assert hub is not None
            await eventually(
                lambda: hub.last_value(k("PeriodicEventStream", stream_id, "values")) == 10
            )
            await station.close_stream(stream_id)
            await probe.wait_for_log(CP, f"stream {stream_id} closed")
            # A stream not opened on this connection: its own key.
            await station.stream(77, ["1"])
            await eventually(
                lambda: hub.available_sensors.get(k("PeriodicEventStream", 77, "value")) == 1
            )
            # The station's frames were never answered: only our calls' answers.
            assert all(action != "NotifyPeriodicEventStream" for action, _ in station.received)


async def test_stream_values_do_not_hold_up_other_messages(mosquitto: Mosquitto, name: str) -> None:
    """Thousands of values in SEND frames; a Heartbeat sent after them is answered
    at once, and every value reaches the broker's queue in order."""

    async with running_connector(settings(name, mosquitto.port)) as bridge:
        url = station_url(bridge, CP)
        async with connect(url, subprotocols=["ocpp2.1"]) as ws:  # type: ignore[list-item]
            for batch in range(50):
                data = [{"t": i / 100, "v": str(batch * 100 + i)} for i in range(100)]
                payload = {"id": 5, "pending": 0, "basetime": T, "data": data}
                await ws.send(json.dumps([6, f"s{batch}", "NotifyPeriodicEventStream", payload]))
            answer = await exchange(ws, [2, "hb", "Heartbeat", {}])
            assert answer[:2] == [3, "hb"]
            assert bridge.mqtt is not None
            assert bridge.mqtt.last_value(k("PeriodicEventStream", 5, "value")) == 4999


# ---- beside 1.6, and with the security profiles ------------------------------


async def test_a_16_and_a_2x_station_give_the_same_keys_for_the_same_readings(
    mosquitto: Mosquitto, probe: Probe, name: str, start_station: StartStation
) -> None:
    measurands = [
        ("Energy.Active.Import.Register", "Wh"),
        ("Power.Active.Import", "W"),
        ("Current.Import", "L2", "A"),
    ]

    def key(cp_id: str, parts: tuple[str, ...]) -> str:
        return "__".join([cp_id, "MeterValues", "1", *parts])

    probe.map(sensors=[key(cp, m) for cp in ("OLD", "NEW") for m in measurands])
    async with running_connector(settings(name, mosquitto.port)) as bridge:
        async with (
            start_station(bridge, "OLD", options()) as old,
            start_station(bridge, "NEW", options(), version="2.1") as new,
        ):
            old.energy_wh = new.energy_wh = 1234.5
            await old.send_meter_values(1, 0)
            await new.send_meter_values(1, 0)
            for parts in measurands:
                one = await probe.value(key("OLD", parts))
                two = await probe.value(key("NEW", parts))
                assert one == two, parts
            assert await probe.value(key("NEW", measurands[0])) == 1234.5


async def test_security_profile_1_applies_to_2x_stations(mosquitto: Mosquitto, name: str) -> None:
    import base64

    secured = settings(name, mosquitto.port, ocpp_basic_auth={CP: "s3cret-pass-16"})
    async with running_connector(secured) as bridge:
        url = station_url(bridge, CP)
        with pytest.raises(InvalidStatus) as refused:
            async with connect(url, subprotocols=["ocpp2.0.1"]):  # type: ignore[list-item]
                pass
        assert refused.value.response.status_code == 401
        token = base64.b64encode(f"{CP}:s3cret-pass-16".encode()).decode()
        headers = {"Authorization": f"Basic {token}"}
        async with connect(
            url,
            subprotocols=["ocpp2.0.1"],  # type: ignore[list-item]
            additional_headers=headers,
        ) as ws:
            assert (await exchange(ws, [2, "h", "Heartbeat", {}]))[0] == 3
