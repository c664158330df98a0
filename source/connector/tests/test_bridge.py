"""End to end: simulated stations over real WebSockets, a real Mosquitto, MQTT probes.

Covers README "MQTT topics", "Datapoint keys", "Robustness toward stations" as an operator and a
station see them.
"""

from __future__ import annotations

import asyncio
import json

import pytest
from ocpp.v16 import call

from connector.simulator.core import SimulatorOptions
from connector.tests.helpers import (
    Mosquitto,
    Probe,
    StartConnector,
    StartStation,
    connector_settings,
    eventually,
    running_connector,
)

pytestmark = pytest.mark.broker

LIMIT_1 = "CP_1__execute_send_charging_profile__1"
LIMIT_CP = "CP_1__execute_send_charging_profile"
TRIGGER_CP = "CP_1__execute_trigger_message"
TRIGGER_1 = "CP_1__execute_trigger_message__1"
ENERGY = "CP_1__MeterValues__1__Energy.Active.Import.Register__Wh"
POWER = "CP_1__MeterValues__1__Power.Active.Import__W"


async def test_station_data_reaches_mapped_topics(
    mosquitto: Mosquitto,
    probe: Probe,
    name: str,
    start_connector: StartConnector,
    start_station: StartStation,
) -> None:
    keys = [
        "CP_1__connected",
        "CP_1__BootNotification__chargePointVendor",
        "CP_1__StatusNotification__1__status",
        "CP_1__Heartbeat",
        ENERGY,
        POWER,
        "CP_1__MeterValues__1__Voltage__L1-N__V",
    ]

    probe.map(sensors=keys)
    async with start_connector() as bridge:
        async with start_station(bridge, "CP_1") as station:
            assert await probe.value("CP_1__connected") is True
            assert await probe.value("CP_1__BootNotification__chargePointVendor") == "FZI"
            assert await probe.value("CP_1__StatusNotification__1__status") == "Available"
            await station.send_meter_values(1, seconds=3600)
            assert await probe.value(ENERGY) == 11000
            assert await probe.value(POWER) == 11000
            assert await probe.value("CP_1__MeterValues__1__Voltage__L1-N__V") == 230.1
            await station.call(call.Heartbeat())
            assert isinstance(await probe.value("CP_1__Heartbeat"), int)
        assert await probe.value("CP_1__connected", lambda v: v is False) is False
    # Values are retained and carry BEMCom's shape: a late subscriber gets them.
    late = Probe(mosquitto.port, name)
    try:
        await eventually(lambda: any(r for t, _, r in late.messages if t.endswith(ENERGY)))
        payload = next(p for t, p, r in late.messages if t.endswith(ENERGY) and r)
        assert json.loads(payload) == {
            "value": 11000,
            "timestamp": json.loads(payload)["timestamp"],
        }
        assert isinstance(json.loads(payload)["timestamp"], int)
    finally:
        late.close()
    # Unmapped keys are not published anywhere outside <name>/.
    assert not [t for t, _, _ in probe.messages if t.endswith("StatusNotification__0__status")]


async def test_available_datapoints_heartbeat_and_logs(
    mosquitto: Mosquitto, probe: Probe, name: str, start_station: StartStation
) -> None:
    settings = connector_settings(name, mosquitto.port, heartbeat_interval=0.2)
    async with running_connector(settings) as bridge:
        async with start_station(bridge, "CP_1"):
            available = await probe.wait_for(
                f"{name}/available_datapoints",
                lambda m: (
                    "CP_1__StatusNotification__1__status" in m["sensor"]
                    and LIMIT_1 in m["actuator"]
                ),
            )
            assert set(available["actuator"]) == {LIMIT_CP, TRIGGER_CP, LIMIT_1, TRIGGER_1}
            assert available["sensor"]["CP_1__BootNotification__chargePointModel"] == "Simulated"
            beats = await probe.wait_for(f"{name}/heartbeat")
            assert beats["next_heartbeats_timestamp"] - beats["this_heartbeats_timestamp"] == 200
            log = await probe.wait_for_log("CP_1", "boot accepted")
            assert set(log) == {"timestamp", "msg", "emitter", "level"}
            assert log["level"] == 20 and log["emitter"].startswith("connector.ocpp16.station")
        late = Probe(mosquitto.port, name)
        try:
            for topic in ("available_datapoints", "logs"):

                def seen(retained: str = f"{name}/{topic}") -> bool:
                    return any(r for m, _, r in late.messages if m == retained)

                await eventually(seen)
        finally:
            late.close()


async def test_available_datapoints_are_coalesced(
    probe: Probe,
    name: str,
    start_connector: StartConnector,
    start_station: StartStation,
) -> None:
    """Many new keys in a burst give a few republishes, not one per key."""

    async with start_connector() as bridge:
        stations = [start_station(bridge, f"CP_{i}") for i in range(20)]
        entered = [await s.__aenter__() for s in stations]
        topic = f"{name}/available_datapoints"
        await probe.wait_for(topic, lambda m: "CP_19__StatusNotification__1__status" in m["sensor"])
        for station in stations:
            await station.__aexit__(None, None, None)
        assert len(entered) == 20
    keys = len(probe.received(topic)[-1]["sensor"])
    assert keys >= 20 * 8
    assert len(probe.received(topic)) < keys / 4


async def test_retained_map_at_start_and_map_changes(
    probe: Probe,
    name: str,
    start_connector: StartConnector,
    start_station: StartStation,
) -> None:
    probe.map(sensors=[POWER], actuators=[TRIGGER_CP])  # retained before the start
    async with start_connector() as bridge:
        assert bridge.bemcom is not None and bridge.bemcom.sensor_map
        async with start_station(bridge, "CP_1") as station:
            probe.command(probe.actuator_topic(TRIGGER_CP), "MeterValues")
            assert await probe.value(POWER) == 11000
            # An invalid map is logged and ignored; the old one stays.
            probe.publish(f"{name}/datapoint_map", b'{"sensor": []}', retain=True)
            await probe.wait_for_log("invalid datapoint map")
            probe.clear()
            probe.command(probe.actuator_topic(TRIGGER_CP), 4)
            await probe.value(POWER)
            # A new map: the old actuator topic is unsubscribed, the new one works.
            probe.map(sensors=[POWER], actuators=[TRIGGER_1])
            await probe.wait_for_log("datapoint map applied")
            calls_before = len(station.calls("TriggerMessage"))
            probe.command(probe.actuator_topic(TRIGGER_CP), 4)
            probe.command(probe.actuator_topic(TRIGGER_1), 4)
            await eventually(lambda: len(station.calls("TriggerMessage")) == calls_before + 1)
            await asyncio.sleep(0.3)
            assert station.calls("TriggerMessage")[-1] == {
                "requestedMessage": "MeterValues",
                "connectorId": 1,
            }
            assert len(station.calls("TriggerMessage")) == calls_before + 1


async def test_charging_limits(
    probe: Probe,
    start_connector: StartConnector,
    start_station: StartStation,
) -> None:
    status = "CP_1__SetChargingProfile__status"

    probe.map(sensors=[status, "CP_1__ClearChargingProfile__status"], actuators=[LIMIT_1, LIMIT_CP])
    async with start_connector() as bridge:
        async with start_station(bridge, "CP_1") as station:
            probe.command(probe.actuator_topic(LIMIT_1), 11000)
            assert await probe.value(status) == "Accepted"
            sent = station.calls("SetChargingProfile")[-1]
            profile = sent["csChargingProfiles"]
            assert sent["connectorId"] == 1
            assert profile["chargingProfilePurpose"] == "TxDefaultProfile"
            schedule = profile["chargingSchedule"]
            assert schedule["chargingRateUnit"] == "W"
            assert schedule["chargingSchedulePeriod"] == [{"startPeriod": 0, "limit": 11000}]
            assert station.limit_w(1) == 11000

            # A numeric string; a new value replaces the old profile (same id and level).
            probe.command(probe.actuator_topic(LIMIT_1), "3700.55")
            await eventually(lambda: station.limit_w(1) == 3700.5)
            second = station.calls("SetChargingProfile")[-1]["csChargingProfiles"]
            assert second["chargingProfileId"] == profile["chargingProfileId"]
            assert second["stackLevel"] == profile["stackLevel"]

            probe.command(probe.actuator_topic(LIMIT_1), 0)  # pause
            await eventually(lambda: station.limit_w(1) == 0)
            assert len(station.profiles) == 1

            probe.command(probe.actuator_topic(LIMIT_CP), 7000)  # station level
            await eventually(lambda: station.limit_w(0) == 7000)
            assert station.calls("SetChargingProfile")[-1]["connectorId"] == 0

            probe.command(probe.actuator_topic(LIMIT_1), None)  # hand back control
            await eventually(lambda: station.limit_w(1) == 7000)  # the station cap only
            assert {"id": second["chargingProfileId"]} in station.calls("ClearChargingProfile")
            assert await probe.value("CP_1__ClearChargingProfile__status") == "Accepted"


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        (
            SimulatorOptions(meter_interval=0, responses={"SetChargingProfile": "Rejected"}),
            "Rejected",
        ),
        (
            SimulatorOptions(meter_interval=0, call_errors={"SetChargingProfile": "NotSupported"}),
            "CallError:NotSupported",
        ),
        (SimulatorOptions(meter_interval=0, silent={"SetChargingProfile"}), "Timeout"),
    ],
)
async def test_command_outcomes(
    mosquitto: Mosquitto,
    probe: Probe,
    name: str,
    options: SimulatorOptions,
    expected: str,
    start_station: StartStation,
) -> None:
    status = "CP_1__SetChargingProfile__status"

    probe.map(sensors=[status], actuators=[LIMIT_1, TRIGGER_CP])
    settings = connector_settings(name, mosquitto.port, ocpp_response_timeout=1.0)
    async with running_connector(settings) as bridge:
        async with start_station(bridge, "CP_1", options) as station:
            probe.command(probe.actuator_topic(LIMIT_1), 5000)
            assert await probe.value(status) == expected
            await probe.wait_for_log("CP_1", "SetChargingProfile", expected)
            # The station still serves the next command.
            probe.command(probe.actuator_topic(TRIGGER_CP), 3)
            await eventually(lambda: station.calls("TriggerMessage") != [])


async def test_triggers(
    probe: Probe,
    start_connector: StartConnector,
    start_station: StartStation,
) -> None:
    probe.map(sensors=[POWER, "CP_1__TriggerMessage__status"], actuators=[TRIGGER_CP, TRIGGER_1])
    async with start_connector() as bridge:
        async with start_station(bridge, "CP_1") as station:
            probe.command(probe.actuator_topic(TRIGGER_CP), 4)
            assert await probe.value("CP_1__TriggerMessage__status") == "Accepted"
            assert station.calls("TriggerMessage")[-1] == {"requestedMessage": "MeterValues"}
            assert await probe.value(POWER) == 11000
            probe.command(probe.actuator_topic(TRIGGER_1), "StatusNotification")
            await eventually(lambda: len(station.calls("TriggerMessage")) == 2)
            assert station.calls("TriggerMessage")[-1] == {
                "requestedMessage": "StatusNotification",
                "connectorId": 1,
            }


@pytest.mark.parametrize(
    ("key", "payload", "reason"),
    [
        (LIMIT_1, b"not json", "not JSON"),
        (LIMIT_1, b'{"timestamp": 1}', '"value"'),
        (LIMIT_1, b'{"value": -5}', "negative"),
        (LIMIT_1, b'{"value": "fast"}', "number"),
        (TRIGGER_CP, b'{"value": 9}', "0-5"),
        (TRIGGER_CP, b'{"value": "Reset"}', "unknown trigger"),
        ("CP_1__execute_fly", b'{"value": 1}', "names no actuator"),
    ],
)
async def test_invalid_commands_are_logged_and_not_sent(
    probe: Probe,
    key: str,
    payload: bytes,
    reason: str,
    start_connector: StartConnector,
    start_station: StartStation,
) -> None:
    probe.map(actuators=[key])
    async with start_connector() as bridge:
        async with start_station(bridge, "CP_1") as station:
            topic = probe.actuator_topic(key)
            probe.publish(topic, payload)
            log = await probe.wait_for_log(topic, reason)
            assert log["level"] == 40
            assert payload.decode()[:10] in log["msg"]
            await asyncio.sleep(0.3)
            assert [a for a, _ in station.received if a != "GetConfiguration"] == []


async def test_away_station_gets_its_limit_and_triggers_are_dropped(
    probe: Probe,
    start_connector: StartConnector,
    start_station: StartStation,
) -> None:
    probe.map(actuators=[LIMIT_1, TRIGGER_CP])
    async with start_connector() as bridge:
        probe.command(probe.actuator_topic(LIMIT_1), 4200)
        await probe.wait_for_log("CP_1", "not connected", "kept")
        probe.command(probe.actuator_topic(TRIGGER_CP), 4)
        log = await probe.wait_for_log("CP_1", "dropped")
        assert log["level"] == 30
        async with start_station(bridge, "CP_1") as station:
            await eventually(lambda: station.limit_w(1) == 4200)
            assert station.calls("TriggerMessage") == []
        # Reconnecting without a BootNotification still brings the limit back.
        async with start_station(bridge, "CP_1", boot=False) as station:
            await eventually(lambda: station.limit_w(1) == 4200)


async def test_transactions(
    probe: Probe,
    start_connector: StartConnector,
    start_station: StartStation,
) -> None:
    async with start_connector() as bridge:
        assert bridge.mqtt is not None
        async with (
            start_station(bridge, "CP_1") as one,
            start_station(bridge, "CP_2") as two,
        ):
            first = await one.start_transaction(1, "TAG1")
            second = await two.start_transaction(1, "TAG2")
            assert first != second and 0 < first < 2**31 and 0 < second < 2**31
            # MeterValues carrying a transactionId (answered InternalError by BEMCom's
            # original connector) maps fine.
            await one.send_meter_values(1, 60)
            await one.stop_transaction("EVDisconnected")
        value = bridge.mqtt.last_value
        assert value("CP_1__StartTransaction__1__transactionId") == first
        assert value("CP_1__StartTransaction__1__idTag") == "TAG1"
        assert value("CP_1__MeterValues__1__transactionId") == first
        assert value("CP_1__StopTransaction__1__transactionId") == first
        assert value("CP_1__StopTransaction__1__reason") == "EVDisconnected"
        assert value("CP_2__StartTransaction__1__transactionId") == second
        last = second
    # A restarted connector continues above, from the state kept on the broker.
    async with start_connector() as bridge:
        assert bridge.transaction_ids.last >= last
        async with start_station(bridge, "CP_1") as one:
            assert await one.start_transaction(1) > last


async def test_raw_messages_to_db(
    mosquitto: Mosquitto, probe: Probe, name: str, start_station: StartStation
) -> None:
    settings = connector_settings(name, mosquitto.port, send_raw_message_to_db=True)
    async with running_connector(settings) as bridge:
        async with start_station(bridge, "CP_1"):
            raw = await probe.wait_for(
                f"{name}/raw_message_to_db",
                lambda m: "BootNotification" in m["payload"]["raw_message"]["message"],
            )
    assert raw["connector_version"] == "test"
    assert raw["payload"]["raw_message"]["charge_point_id"] == "CP_1"
    assert isinstance(raw["payload"]["timestamp"], int)


async def test_no_raw_messages_by_default(
    probe: Probe,
    name: str,
    start_connector: StartConnector,
    start_station: StartStation,
) -> None:
    async with start_connector() as bridge:
        async with start_station(bridge, "CP_1"):
            await probe.wait_for_log("boot accepted")
    assert probe.received(f"{name}/raw_message_to_db") == []


async def test_a_new_connection_replaces_the_old_one(
    probe: Probe,
    start_connector: StartConnector,
    start_station: StartStation,
) -> None:
    probe.map(sensors=["CP_1__connected"])
    async with start_connector() as bridge:
        assert bridge.central is not None
        async with start_station(bridge, "CP_1") as old:
            async with start_station(bridge, "CP_1") as new:
                await eventually(lambda: old._connection.close_code is not None)
                assert bridge.central.stations["CP_1"].id == "CP_1"
                await asyncio.sleep(0.2)
                values = [m["value"] for m in probe.received(probe.value_topic("CP_1__connected"))]
                assert values[-1] is True and False not in values
                await new.send_status(1, "Charging")
                assert bridge.central.stations["CP_1"].connectors == {0, 1}


async def test_limit_survives_a_reboot(
    probe: Probe,
    start_connector: StartConnector,
    start_station: StartStation,
) -> None:
    probe.map(actuators=[LIMIT_1])
    async with start_connector() as bridge:
        async with start_station(bridge, "CP_1") as station:
            probe.command(probe.actuator_topic(LIMIT_1), 6000)
            await eventually(lambda: station.limit_w(1) == 6000)
            station.forget_profiles()  # this station forgets on reboot
            await station.boot()
            await eventually(lambda: station.limit_w(1) == 6000)


@pytest.mark.within(90)
async def test_subscriptions_and_available_datapoints_come_back_after_a_broker_restart(
    mosquitto: Mosquitto,
    probe: Probe,
    name: str,
    start_connector: StartConnector,
    start_station: StartStation,
) -> None:
    probe.map(actuators=[TRIGGER_CP])
    async with start_connector() as bridge:
        async with start_station(bridge, "CP_1") as station:
            await probe.wait_for(f"{name}/available_datapoints", lambda m: m["actuator"])
            mosquitto.stop()
            await asyncio.sleep(0.5)
            mosquitto.start()  # no persistence: the broker forgot everything
            after = Probe(mosquitto.port, name)
            try:
                available = await after.wait_for(
                    f"{name}/available_datapoints",
                    lambda m: TRIGGER_CP in m["actuator"],
                    timeout=20,
                )
                assert "CP_1__connected" in available["sensor"]
                after.command(after.actuator_topic(TRIGGER_CP), 4)
                await eventually(lambda: station.calls("TriggerMessage") != [])
            finally:
                after.close()
