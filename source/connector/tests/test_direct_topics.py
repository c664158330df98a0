"""README "Direct topics", direct topics (MQTT_DIRECT_TOPICS): every value on its own topic,
and `/set` commands, without any datapoint map. Real Mosquitto, the simulator."""

from __future__ import annotations

import json
from typing import Any

import pytest

from connector.core.direct_topics import command_key, command_payload, sensor_topic
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

P = "n/direct/"


@pytest.mark.parametrize(
    ("key", "topic"),
    [
        ("CP_1__connected", "n/direct/CP_1/connected"),
        (
            "CP_1__MeterValues__1__Energy.Active.Import.Register__Wh",
            "n/direct/CP_1/MeterValues/1/Energy.Active.Import.Register/Wh",
        ),
        ("a/b+#__connected", "n/direct/a%2Fb%2B%23/connected"),
        # Names a station chose are escaped like ids (issue 17): no publish raises.
        ("CP__Configuration__Vendor#Key", "n/direct/CP/Configuration/Vendor%23Key"),
        ("CP__Variable__a+b__c/d", "n/direct/CP/Variable/a%2Bb/c%2Fd"),
        ("CP__Variable__EVSE@1__Power", "n/direct/CP/Variable/EVSE@1/Power"),
        ("CP__Configuration__50%\x00\x1f", "n/direct/CP/Configuration/50%25%00%1F"),
        # Unicode non-characters: Mosquitto drops the connection for them.
        ("CP__Configuration__K\uffff", "n/direct/CP/Configuration/K%EF%BF%BF"),
    ],
)
def test_sensor_topics(key: str, topic: str) -> None:
    assert sensor_topic(P, key) == topic


@pytest.mark.parametrize(
    ("topic", "key"),
    [
        ("n/direct/CP_1/execute_send_charging_profile/set", "CP_1__execute_send_charging_profile"),
        ("n/direct/CP_1/execute_trigger_message/2/set", "CP_1__execute_trigger_message__2"),
        ("n/direct/a%2Fb/execute_reset/set", "a/b__execute_reset"),
        ("n/direct/CP_1/Variable/set", None),  # one of our sensor topics
        ("n/direct/CP_1/Variable/Comp/set", None),
        ("n/direct/CP_1/execute_reset", None),
        ("other/CP_1/execute_reset/set", None),
    ],
)
def test_command_topics(topic: str, key: str | None) -> None:
    assert command_key(P, topic) == key


@pytest.mark.parametrize(
    ("payload", "value"),
    [
        (b"11000", 11000),
        (b"null", None),
        (b"", ""),
        (b"Soft", "Soft"),
        (b'{"value": 7400, "timestamp": 1}', 7400),
        (b'{"vendorId": "x"}', {"vendorId": "x"}),
        (b"\xff", "\ufffd"),
    ],
)
def test_command_payloads(payload: bytes, value: Any) -> None:
    assert json.loads(command_payload(payload))["value"] == value


@pytest.mark.broker
async def test_values_and_commands_without_a_map(
    mosquitto: Mosquitto, probe: Probe, name: str, start_station: StartStation
) -> None:
    base = f"{name}/direct/CP_1"

    settings = connector_settings(name, mosquitto.port, mqtt_direct_topics=True)
    async with running_connector(settings) as bridge:
        options = SimulatorOptions(meter_interval=0)
        async with start_station(bridge, "CP_1", options) as station:
            await eventually(lambda: bridge.central.stations["CP_1"].learned.is_set())  # type: ignore[union-attr]
            connected = await probe.wait_for(f"{base}/connected")
            assert connected["value"] is True
            station.energy_wh = 1500
            await station.send_meter_values(1, 0)
            energy = await probe.wait_for(
                f"{base}/MeterValues/1/Energy.Active.Import.Register/Wh",
                lambda m: m["value"] == 1500,
            )
            assert set(energy) == {"value", "timestamp"}
            # A plain value on /set sets the limit.
            probe.publish(f"{base}/execute_send_charging_profile/set", 7400)
            await eventually(lambda: station.limit_w(1) == 7400)
            # A BEMCom value payload works too; and a trigger on a connector.
            probe.command(f"{base}/execute_trigger_message/1/set", 4)
            await eventually(lambda: bool(station.calls("TriggerMessage")))
            # A bad value: an ERROR on <name>/logs, nothing sent.
            calls = len(station.received)
            probe.publish(f"{base}/execute_send_charging_profile/set", b"lots")
            await probe.wait_for_log("invalid command", "power must be a number")
            assert len(station.received) == calls
            # Forget: the retained direct topics are removed.
            probe.publish(f"{base}/execute_forget_station/set", True)
            await probe.wait_for_log("CP_1: forgotten")
            await eventually(
                lambda: any(t == f"{base}/connected" and p == b"" for t, p, _ in probe.messages)
            )


@pytest.mark.broker
async def test_direct_topics_are_off_by_default(
    probe: Probe,
    name: str,
    start_connector: StartConnector,
    start_station: StartStation,
) -> None:
    async with start_connector() as bridge:
        async with start_station(bridge, "CP_1"):
            await probe.wait_for(f"{name}/available_datapoints")
            assert not [t for t, _, _ in probe.messages if t.startswith(f"{name}/direct/")]
