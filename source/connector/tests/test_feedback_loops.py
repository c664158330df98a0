"""Feedback loops and floods (issue 9), end to end over a real Mosquitto.

Each case is an input that used to make the connector run away: a topic
mapped both ways, the connector's own log topic mapped as an actuator, the
same limit again and again, a station inventing keys, and a flood of bad
commands. Each test counts what reaches the station and the broker.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from typing import Any

import pytest
from ocpp.v16 import call

from connector.mqtt.embedded_broker import EmbeddedBroker
from connector.mqtt.mqtt_link import MQTT5, MQTT311, MqttLink
from connector.simulator.core import SimulatorOptions
from connector.simulator.v16 import SimulatedChargePoint
from connector.tests.helpers import (
    WAIT,
    Mosquitto,
    Probe,
    StartConnector,
    StartStation,
    connector_settings,
    eventually,
    running_connector,
    simulated_station,
)

pytestmark = pytest.mark.broker

CP = "CP_1"
LIMIT = f"{CP}__execute_send_charging_profile"
LIMIT_IN_FORCE = f"{CP}__ChargingLimit__W"
STATUS = f"{CP}__SetChargingProfile__status"
ENERGY = f"{CP}__MeterValues__1__Energy.Active.Import.Register__Wh"
# Long enough for a loop to show itself: before the fix, 236 calls in 10 s.
QUIET = 2.0


def log_lines(probe: Probe) -> list[dict[str, Any]]:
    return probe.received(f"{probe.name}/logs")


async def mapped(bridge: Any, *fragments: str, probe: Probe) -> None:
    """The map was applied (its log line), and the broker acknowledged its subscriptions."""
    await probe.wait_for_log("datapoint map applied", *fragments)
    await eventually(lambda: not bridge.mqtt.link.subscribing)


async def stays(check: Any, seconds: float = QUIET) -> None:
    """`check()` holds now and for `seconds`."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert check()
        await asyncio.sleep(0.05)


async def test_shared_state_and_command_topic_reaches_the_station_once(
    probe: Probe,
    name: str,
    start_connector: StartConnector,
    start_station: StartStation,
) -> None:
    shared = f"values-{name}/cp1/limit"

    async with start_connector() as bridge:
        assert bridge.mqtt is not None
        assert bridge.mqtt.link.protocol == MQTT5
        async with start_station(bridge, CP) as station:
            probe.publish(
                f"{name}/datapoint_map",
                {
                    "sensor": {LIMIT_IN_FORCE: shared, STATUS: probe.value_topic(STATUS)},
                    "actuator": {shared: LIMIT},
                },
                retain=True,
            )
            error = await probe.wait_for_log("conflicting", shared)
            assert error["level"] == 40
            assert LIMIT_IN_FORCE in error["msg"]
            await mapped(bridge, probe=probe)
            probe.command(shared, 11000)
            assert await probe.value(STATUS) == "Accepted"
            await stays(lambda: len(station.calls("SetChargingProfile")) == 1)
            assert station.limit_w(0) == 11000
            # Only the user's command is on the shared topic: the connector
            # never writes to a topic it takes commands from.
            assert [m["value"] for m in probe.received(shared)] == [11000]


async def test_logs_mapped_as_actuator_are_refused_and_the_topic_stays_quiet(
    probe: Probe,
    name: str,
    start_connector: StartConnector,
    start_station: StartStation,
) -> None:
    logs = f"{name}/logs"

    async with start_connector() as bridge:
        async with start_station(bridge, CP) as station:
            probe.publish(
                f"{name}/datapoint_map",
                {
                    "sensor": {ENERGY: f"{name}/datapoint_map"},
                    "actuator": {logs: LIMIT, probe.actuator_topic(LIMIT): LIMIT},
                },
                retain=True,
            )
            error = await probe.wait_for_log("conflicting", logs)
            assert f"{name}/datapoint_map" in error["msg"]  # the sensor entry too
            await mapped(bridge, probe=probe)
            # The rest of the map applies: a bad value on the good topic is
            # refused with one ERROR, which does not come back as a command.
            probe.command(probe.actuator_topic(LIMIT), "lots")
            await probe.wait_for_log("invalid command", "lots")
            await asyncio.sleep(QUIET)
            assert len(log_lines(probe)) < 10
            # A value published on the log topic is no command either.
            probe.command(logs, 7000)
            await asyncio.sleep(QUIET / 2)
            assert station.calls("SetChargingProfile") == []
            # The map topic was not overwritten by a sensor value.
            assert all("sensor" in m for m in probe.received(f"{name}/datapoint_map"))


async def test_bemcom_topics_under_messages_are_not_conflicts(
    probe: Probe,
    name: str,
    start_connector: StartConnector,
    start_station: StartStation,
) -> None:
    """BEMCom's API maps datapoints to `<name>/messages/<id>/value`."""
    sensor_topic = f"{name}/messages/1/value"
    actuator_topic = f"{name}/messages/2/value"

    async with start_connector() as bridge:
        async with start_station(bridge, CP) as station:
            probe.publish(
                f"{name}/datapoint_map",
                {"sensor": {STATUS: sensor_topic}, "actuator": {actuator_topic: LIMIT}},
                retain=True,
            )
            await mapped(bridge, "1 sensor and 1 actuator", probe=probe)
            probe.command(actuator_topic, 5000)
            await probe.wait_for(sensor_topic, lambda m: m["value"] == "Accepted")
            assert len(station.calls("SetChargingProfile")) == 1
            assert not any("conflicting" in m["msg"] for m in log_lines(probe))


async def _own_value_becomes_actuator(probe: Probe, name: str, bridge: Any) -> None:
    """An earlier map published the energy register on a topic (retained); a new
    map makes that topic an actuator topic. Our own value is no command."""
    topic = f"values-{name}/cp1/x"
    async with simulated_station(bridge, CP) as station:
        probe.publish(f"{name}/datapoint_map", {"sensor": {ENERGY: topic}}, retain=True)
        await probe.wait_for_log("datapoint map applied: 1 sensor")
        await station.send_meter_values(1, 3600)
        await probe.wait_for(topic)
        probe.publish(f"{name}/datapoint_map", {"actuator": {topic: LIMIT}}, retain=True)
        # The broker hands the kept value over as retained: no command (issue 17).
        await probe.wait_for_log("ignored a retained message on actuator topic", topic)
        await asyncio.sleep(QUIET / 2)
        assert station.calls("SetChargingProfile") == []
        # A command from someone else on that topic still works.
        probe.command(topic, 4000)
        await eventually(lambda: len(station.calls("SetChargingProfile")) == 1)


async def test_own_retained_value_is_no_command_on_mosquitto(
    probe: Probe, name: str, start_connector: StartConnector
) -> None:
    async with start_connector() as bridge:
        await _own_value_becomes_actuator(probe, name, bridge)


async def test_own_check_on_an_mqtt_311_broker(name: str) -> None:
    """The embedded broker speaks MQTT 3.1.1 only, so there is no no-local: our own
    check holds alone. It runs in a thread of its own, as a separate broker would."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    broker = EmbeddedBroker("127.0.0.1", 0)
    await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(broker.start(), loop))
    try:
        async with running_connector(connector_settings(name, broker.port)) as bridge:
            assert bridge.mqtt is not None
            await eventually(lambda: bridge.mqtt.link.connected.is_set())  # type: ignore[union-attr]
            assert bridge.mqtt.link.protocol == MQTT311
            probe = Probe(broker.port, name)
            try:
                await _own_value_becomes_actuator(probe, name, bridge)
            finally:
                probe.close()
    finally:
        stopped = asyncio.run_coroutine_threadsafe(broker.stop(), loop)
        await asyncio.wait_for(asyncio.wrap_future(stopped), WAIT)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(WAIT)


async def test_no_local_keeps_our_own_publishes_from_us(mosquitto: Mosquitto, name: str) -> None:
    """On MQTT 5 the broker itself never returns our publishes on actuator topics."""

    received: list[str] = []
    connected = asyncio.Event()
    link = MqttLink(
        "127.0.0.1",
        mosquitto.port,
        f"{name}-link",
        asyncio.get_running_loop(),
        connected.set,
        lambda topic, payload, retained: received.append(topic),
    )
    link.start()
    try:
        await asyncio.wait_for(connected.wait(), WAIT)
        assert link.protocol == MQTT5
        link.subscribe([f"{name}/no-local"], no_local=True)
        link.subscribe([f"{name}/control"])
        await eventually(lambda: not link.subscribing)
        link.publish(f"{name}/no-local", b"1", qos=1)
        link.publish(f"{name}/control", b"1", qos=1)
        await eventually(lambda: f"{name}/control" in received)
        await asyncio.sleep(0.3)
        assert f"{name}/no-local" not in received
    finally:
        link.stop()


async def test_the_same_limit_again_is_sent_once(
    probe: Probe,
    start_connector: StartConnector,
    start_station: StartStation,
) -> None:
    async with start_connector() as bridge:
        probe.map([STATUS, LIMIT_IN_FORCE], [LIMIT])
        async with start_station(bridge, CP) as station:
            await mapped(bridge, probe=probe)
            for _ in range(10):
                probe.command(probe.actuator_topic(LIMIT), 11000)
                await asyncio.sleep(0.05)
            await probe.value(LIMIT_IN_FORCE, lambda v: v == 11000)
            await stays(lambda: len(station.calls("SetChargingProfile")) == 1)
            # A new value is sent, and so is a clear, every time.
            probe.command(probe.actuator_topic(LIMIT), 7000)
            await eventually(lambda: len(station.calls("SetChargingProfile")) == 2)
            probe.command(probe.actuator_topic(LIMIT), None)
            probe.command(probe.actuator_topic(LIMIT), None)
            await eventually(lambda: len(station.calls("ClearChargingProfile")) >= 2)
            # After the clear, the old value is a change again.
            probe.command(probe.actuator_topic(LIMIT), 7000)
            await eventually(lambda: len(station.calls("SetChargingProfile")) == 3)
            assert station.limit_w(0) == 7000
        # A reconnect applies the limit in force again.
        async with start_station(bridge, CP) as again:
            await eventually(lambda: len(again.calls("SetChargingProfile")) == 1)
            assert again.limit_w(0) == 7000
            probe.command(probe.actuator_topic(LIMIT), 7000)
            await stays(lambda: len(again.calls("SetChargingProfile")) == 1, QUIET / 2)


async def test_the_same_limit_is_sent_again_for_a_new_session(
    probe: Probe,
    start_connector: StartConnector,
    start_station: StartStation,
) -> None:
    """A session that started after the limit may need its own TxProfile."""
    connector_limit = f"{LIMIT}__1"

    async with start_connector() as bridge:
        probe.map([], [connector_limit])
        async with start_station(bridge, CP) as station:
            await mapped(bridge, probe=probe)
            probe.command(probe.actuator_topic(connector_limit), 11000)
            await eventually(lambda: len(station.calls("SetChargingProfile")) == 1)
            probe.command(probe.actuator_topic(connector_limit), 11000)
            await stays(lambda: len(station.calls("SetChargingProfile")) == 1, QUIET / 2)
            transaction_id = await station.start_transaction(1)
            probe.command(probe.actuator_topic(connector_limit), 11000)
            await eventually(lambda: len(station.calls("SetChargingProfile")) == 3)
            purposes = [
                (
                    c["csChargingProfiles"]["chargingProfilePurpose"],
                    c["csChargingProfiles"].get("transactionId"),
                )
                for c in station.calls("SetChargingProfile")[1:]
            ]
            assert ("TxProfile", transaction_id) in purposes


async def test_a_refused_limit_is_sent_again(
    probe: Probe,
    start_connector: StartConnector,
    start_station: StartStation,
) -> None:
    """Only a limit the station accepted counts as in force."""

    async with start_connector() as bridge:
        probe.map([STATUS], [LIMIT])
        options = SimulatorOptions(meter_interval=0, responses={"SetChargingProfile": "Rejected"})
        async with start_station(bridge, CP, options) as station:
            await mapped(bridge, probe=probe)
            probe.command(probe.actuator_topic(LIMIT), 11000)
            await probe.value(STATUS, lambda v: v == "Rejected")
            sent = len(station.calls("SetChargingProfile"))
            probe.command(probe.actuator_topic(LIMIT), 11000)
            await eventually(lambda: len(station.calls("SetChargingProfile")) > sent)


async def _invent_keys(station: SimulatedChargePoint, connectors: int, per_call: int) -> None:
    """MeterValues over many connector ids, each with many measurand/phase/location keys."""
    measurands = ["Current.Import", "Voltage", "Power.Active.Import", "Frequency"]
    phases = ["L1", "L2", "L3", "N", "L1-N"]
    locations = ["Outlet", "Inlet", "Body"]
    combos = [(m, p, loc) for m in measurands for p in phases for loc in locations][:per_call]
    for connector_id in range(1, connectors + 1):
        values = [
            {"value": "1", "measurand": m, "phase": p, "location": loc} for m, p, loc in combos
        ]
        await station.call(
            call.MeterValues(
                connector_id=connector_id,
                meter_value=[{"timestamp": "2026-01-01T00:00:00Z", "sampledValue": values}],
            )
        )


async def test_a_station_over_its_key_budget_is_capped(
    mosquitto: Mosquitto, probe: Probe, name: str, start_station: StartStation
) -> None:
    budget = 60
    other_energy = "CP_2__MeterValues__1__Energy.Active.Import.Register__Wh"

    settings = connector_settings(name, mosquitto.port, ocpp_max_keys_per_station=budget)
    async with running_connector(settings) as bridge:
        assert bridge.mqtt is not None
        probe.map([ENERGY, other_energy])
        async with (
            start_station(bridge, CP) as flood,
            start_station(bridge, "CP_2") as other,
        ):
            await flood.send_meter_values(1, 3600)
            first = await probe.value(ENERGY)
            await _invent_keys(flood, connectors=20, per_call=30)
            # Meanwhile, another station is served.
            await other.send_meter_values(1, 3600)
            await probe.value(other_energy)
            keys = [k for k in bridge.mqtt.available_sensors if k.startswith(f"{CP}__")]
            assert len(keys) == budget
            warnings = [m for m in log_lines(probe) if "OCPP_MAX_KEYS_PER_STATION" in m["msg"]]
            assert len(warnings) == 1
            assert f"{CP}:" in warnings[0]["msg"] and str(budget) in warnings[0]["msg"]
            # Known keys keep updating.
            await flood.send_meter_values(1, 3600)
            await probe.value(ENERGY, lambda v: v > first)
            await _invent_keys(flood, connectors=3, per_call=30)
            await asyncio.sleep(0.5)
            warnings = [m for m in log_lines(probe) if "OCPP_MAX_KEYS_PER_STATION" in m["msg"]]
            assert len(warnings) == 1
            available = await probe.wait_for(
                f"{name}/available_datapoints",
                lambda m: other_energy in m["sensor"],
            )
            assert sum(k.startswith(f"{CP}__") for k in available["sensor"]) <= budget


async def test_a_flood_of_bad_commands_is_collapsed_in_the_log(
    probe: Probe,
    start_connector: StartConnector,
    start_station: StartStation,
) -> None:
    async with start_connector() as bridge:
        probe.map([], [LIMIT])
        async with start_station(bridge, CP) as station:
            await mapped(bridge, probe=probe)
            probe.clear()
            for index in range(200):
                probe.client.publish(
                    probe.actuator_topic(LIMIT),
                    json.dumps({"value": f"bad-{index}", "timestamp": 0}),
                    qos=1,
                )
            summary = await probe.wait_for_log("suppressed", "invalid command", timeout=WAIT)
            errors = [m for m in log_lines(probe) if "invalid command" in m["msg"]]
            # 200 refusals: a few lines a second and a count of the rest.
            assert len(errors) < 40
            suppressed = sum(
                int(m["msg"].split()[1]) for m in log_lines(probe) if "suppressed" in m["msg"]
            )
            shown = len(errors) - sum("suppressed" in m["msg"] for m in errors)
            await eventually(
                lambda: (
                    sum(
                        int(m["msg"].split()[1])
                        for m in log_lines(probe)
                        if m["msg"].startswith("suppressed")
                    )
                    + sum(
                        "invalid command" in m["msg"] and "suppressed" not in m["msg"]
                        for m in log_lines(probe)
                    )
                    == 200
                )
            )
            assert summary["level"] == 40
            assert suppressed > 0 and shown > 0
            assert station.calls("SetChargingProfile") == []
