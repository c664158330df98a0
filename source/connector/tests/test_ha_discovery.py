"""README "Home Assistant in five minutes", Home Assistant discovery: pure tables for the
configurations,
and end to end over a real Mosquitto with the simulator and no datapoint map."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import jinja2
import pytest

from connector.actuators import home_assistant_controls as controls
from connector.core import ha_discovery as ha
from connector.simulator.core import SimulatorOptions
from connector.tests.helpers import (
    Mosquitto,
    Probe,
    connector_settings,
    eventually,
    free_port,
    running_connector,
    simulated_station,
)

ROOT = Path(__file__).resolve().parents[3]
# The station controls OCPP_CONFIG offers when unset.
DEFAULT_CONTROLS = ("execute_send_charging_profile", "execute_trigger_message")


@pytest.mark.parametrize(
    ("cp_id", "object_id"),
    [("CP_1", "CP_1"), ("garage-2", "garage-2")],
)
def test_safe_ids_stay(cp_id: str, object_id: str) -> None:
    assert ha.station_object_id(cp_id) == object_id


def test_unsafe_ids_get_a_hash_and_never_collide() -> None:
    one, two = ha.station_object_id("CP 1"), ha.station_object_id("CP/1")
    assert one.startswith("CP_1_") and two.startswith("CP_1_") and one != two
    assert all(c.isalnum() or c in "_-" for c in one + two)


def test_an_id_spelling_another_ids_hashed_form_is_hashed_too() -> None:
    """Issue 17: the station `CP_1_03fddec0` took over every entity of `CP 1`."""
    spelled = ha.station_object_id("CP 1")
    assert spelled == "CP_1_03fddec0"
    impostor = ha.station_object_id(spelled)
    assert impostor != spelled and impostor.startswith(spelled + "_")
    assert ha.station_object_id("CP_1_0000000g") == "CP_1_0000000g"  # not hex: unchanged


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        ("CP__connected", ("binary_sensor", "connected", "connectivity", None, None)),
        ("CP__upstream", ("binary_sensor", "upstream", "connectivity", None, None)),
        ("CP__StatusNotification__1__status", ("sensor", "status_1", "enum", None, None)),
        ("CP__StatusNotification__2__connectorStatus", ("sensor", "status_2", "enum", None, None)),
        (
            "CP__MeterValues__1__Energy.Active.Import.Register__Wh",
            ("sensor", "energy_1", "energy", "total_increasing", "Wh"),
        ),
        (
            "CP__MeterValues__1__Power.Active.Import__W",
            ("sensor", "power_1", "power", "measurement", "W"),
        ),
        (
            "CP__MeterValues__1__Current.Import__L1__A",
            ("sensor", "current_1_L1", "current", "measurement", "A"),
        ),
        (
            "CP__MeterValues__1__Voltage__L1-N__V",
            ("sensor", "voltage_1_L1_N", "voltage", "measurement", "V"),
        ),
        (
            "CP__MeterValues__1__SoC__EV__Percent",
            ("sensor", "soc_1_EV", "battery", "measurement", "%"),
        ),
        ("CP__ChargingLimit__W", ("sensor", "limit", "power", "measurement", "W")),
        ("CP__MeterValues__1__Temperature__Celsius", None),
        ("CP__BootNotification__chargePointModel", None),
        ("CP__StatusNotification__1__errorCode", None),
    ],
)
def test_which_keys_become_entities(key: str, expected: tuple[Any, ...] | None) -> None:
    found = ha.entity_for_key(key)
    if expected is None:
        assert found is None
        return
    assert found is not None
    component, object_id, fields = found
    assert (
        component,
        object_id,
        fields.get("device_class"),
        fields.get("state_class"),
        fields.get("unit_of_measurement"),
    ) == expected


def test_configs_read_direct_topics_and_need_both_availabilities() -> None:
    boot = {"chargePointVendor": "V", "chargePointModel": "M", "firmwareVersion": "1"}
    entity = ha.sensor_entity("n", "CP", "CP__MeterValues__1__Power.Active.Import__W", boot)
    assert entity is not None
    config = entity.config
    assert config["state_topic"] == "n/direct/CP/MeterValues/1/Power.Active.Import/W"
    assert config["unique_id"] == "ocpp_CP_power_1"
    assert config["device"] == {
        "identifiers": ["ocpp_CP"],
        "name": "CP",
        "manufacturer": "V",
        "model": "M",
        "sw_version": "1",
    }
    assert config["availability_mode"] == "all"
    assert [a["topic"] for a in config["availability"]] == ["n/direct/CP/connected", "n/status"]
    assert ha.config_topic("homeassistant", "CP", entity) == (
        "homeassistant/sensor/ocpp_CP/power_1/config"
    )
    limit, remove, button = ha.control_entities("n", "CP", boot, None, controls(DEFAULT_CONTROLS))
    # No limit at all is a null; 0 would pause charging.
    assert remove.component == "button" and remove.config["payload_press"] == "null"
    assert remove.config["command_topic"] == limit.config["command_topic"]
    assert limit.component == "number" and limit.config["max"] == 22000
    assert limit.config["command_topic"] == "n/direct/CP/execute_send_charging_profile/set"
    assert (limit.config["min"], limit.config["step"], limit.config["unit_of_measurement"]) == (
        0,
        1,
        "W",
    )
    assert button.component == "button" and button.config["payload_press"] == "4"
    assert button.config["command_topic"] == "n/direct/CP/execute_trigger_message/set"


@pytest.mark.parametrize(
    ("offered", "object_ids"),
    [
        ((), []),
        (("execute_remote_start_transaction",), ["start_2"]),
        (
            (
                "execute_remote_start_transaction",
                "execute_remote_stop_transaction",
                "execute_change_availability",
            ),
            ["start_2", "stop_2", "available_2"],
        ),
    ],
)
def test_connector_controls_follow_what_is_offered(
    offered: tuple[str, ...], object_ids: list[str]
) -> None:
    entities = ha.connector_entities("n", "CP", "2", "connectorStatus", {}, controls(offered))
    assert [e.object_id for e in entities] == object_ids
    for entity in entities:
        assert entity.config["command_topic"].startswith("n/direct/CP/execute_")
        assert entity.config["command_topic"].endswith("/2/set")
    switch = [e for e in entities if e.component == "switch"]
    if switch:
        assert switch[0].config["state_topic"] == "n/direct/CP/StatusNotification/2/connectorStatus"


@pytest.mark.parametrize(
    ("key", "value", "power"),
    [
        ("CP__Variable__EVSE@1__Power__maxLimit", 11000.0, 11000.0),
        ("CP__Variable__EVSE@2__Power__MaxSet", 7400, 7400.0),
        ("CP__Variable__EVSE@1__Power", 3680, None),  # what it draws now, no maximum
        ("CP__Variable__EVSE@1__Power__maxLimit", "11000", None),
        ("CP__Variable__EVSE@1__Power__MaxSet", -1, None),
        ("CP__Variable__SmartChargingCtrlr__Power", 11000, None),
        ("CP__MeterValues__1__Power.Active.Import__W", 11000, None),
    ],
)
def test_the_largest_power_comes_from_the_device_model(key: str, value: Any, power: Any) -> None:
    assert ha.evse_power(key, value) == power


def test_the_limit_maximum_follows_the_station() -> None:
    limit = ha.control_entities("n", "CP", {}, 11000.0, controls(DEFAULT_CONTROLS))[0]
    assert limit.config["max"] == 11000.0


def configs(probe: Probe, prefix: str) -> dict[str, list[bytes]]:
    found: dict[str, list[bytes]] = {}
    with probe._lock:
        for topic, payload, _ in probe.messages:
            if topic.startswith(prefix + "/") and topic.endswith("/config"):
                found.setdefault(topic, []).append(payload)
    return found


@pytest.mark.broker
async def test_discovery_end_to_end(mosquitto: Mosquitto, name: str) -> None:
    prefix = f"ha-{name}"
    probe = Probe(mosquitto.port, name)
    probe.client.subscribe(f"{prefix}/#", qos=1)
    device = f"{prefix}/%s/ocpp_CP_1/%s/config"

    try:
        settings = connector_settings(
            name,
            mosquitto.port,
            homeassistant_discovery=True,
            homeassistant_discovery_prefix=prefix,
            ocpp_config=(
                "execute_send_charging_profile",
                "execute_trigger_message",
                "execute_remote_start_transaction",
            ),
        )
        async with running_connector(settings) as bridge:
            async with simulated_station(bridge, "CP_1", SimulatorOptions(meter_interval=0)) as sim:
                await eventually(lambda: bridge.central.stations["CP_1"].learned.is_set())  # type: ignore[union-attr]
                await sim.send_meter_values(1, 0)
                energy = device % ("sensor", "energy_1")
                last = device % ("sensor", "current_1_L3")  # the reading's last value
                await eventually(lambda: {energy, last} <= set(configs(probe, prefix)))
                found = configs(probe, prefix)
                for component, object_id in (
                    ("binary_sensor", "connected"),
                    ("sensor", "status_1"),
                    ("sensor", "power_1"),
                    ("sensor", "voltage_1_L1_N"),
                    ("number", "charging_limit"),
                    ("button", "trigger_meter_values"),
                    ("button", "start_1"),
                ):
                    assert device % (component, object_id) in found, (component, object_id)
                config = json.loads(found[energy][-1])
                assert config["device"]["manufacturer"] == "FZI"
                assert config["state_class"] == "total_increasing"
                # Once per entity: more values publish no configuration again.
                before = {t: len(p) for t, p in configs(probe, prefix).items()}
                for _ in range(3):
                    await sim.send_meter_values(1, 1)
                await probe.wait_for(
                    f"{name}/direct/CP_1/MeterValues/1/Energy.Active.Import.Register/Wh",
                    lambda m: m["value"] == round(sim.energy_wh, 1) or m["value"] > 0,
                )
                assert {t: len(p) for t, p in configs(probe, prefix).items()} == before
                # The number and the button command the station.
                number = json.loads(found[device % ("number", "charging_limit")][-1])
                probe.publish(number["command_topic"], b"11000")
                await eventually(lambda: sim.limit_w(1) == 11000)
                button = json.loads(found[device % ("button", "trigger_meter_values")][-1])
                probe.publish(button["command_topic"], button["payload_press"].encode())
                await eventually(
                    lambda: {"requestedMessage": "MeterValues"} in sim.calls("TriggerMessage")
                )
                start = json.loads(found[device % ("button", "start_1")][-1])
                probe.publish(start["command_topic"], start["payload_press"].encode())
                await eventually(
                    lambda: (
                        {"idTag": "HomeAssistant", "connectorId": 1}
                        in sim.calls("RemoteStartTransaction")
                    )
                )
                assert device % ("switch", "available_1") not in found  # not offered
                # Forget removes the configurations; the station, still
                # connected, is announced again.
                probe.publish(f"{name}/direct/CP_1/execute_forget_station/set", b"1")
                await eventually(lambda: all(b"" in p for p in configs(probe, prefix).values()))
                await eventually(lambda: all(p[-1] != b"" for p in configs(probe, prefix).values()))
    finally:
        probe.close()


@pytest.mark.broker
def test_availability_goes_offline_when_the_connector_is_killed(
    mosquitto: Mosquitto, probe: Probe, name: str
) -> None:
    env = {
        **os.environ,
        "HTTP_PORT": "0",
        "CONNECTOR_NAME": name,
        "MQTT_BROKER_HOST": "127.0.0.1",
        "MQTT_BROKER_PORT": str(mosquitto.port),
        "OCPP_HOST": "127.0.0.1",
        "OCPP_PORT": str(free_port()),
        "HOMEASSISTANT_DISCOVERY": "TRUE",
    }
    process = subprocess.Popen(
        [sys.executable, "source/connector/main.py"], cwd=ROOT, env=env, stderr=subprocess.DEVNULL
    )
    try:
        deadline = time.monotonic() + 20
        while b"online" not in [p for t, p, _ in list(probe.messages) if t == f"{name}/status"]:
            assert time.monotonic() < deadline, "no status online"
            time.sleep(0.05)
        process.send_signal(signal.SIGKILL)
        process.wait(10)
        while [p for t, p, _ in list(probe.messages) if t == f"{name}/status"][-1] != b"offline":
            assert time.monotonic() < deadline + 20, "the last will did not arrive"
            time.sleep(0.05)
    finally:
        if process.poll() is None:
            process.kill()


@pytest.mark.broker
async def test_the_limit_maximum_of_a_2x_station_comes_from_its_report(
    mosquitto: Mosquitto, name: str
) -> None:
    prefix = f"ha-{name}"
    probe = Probe(mosquitto.port, name)
    probe.client.subscribe(f"{prefix}/#", qos=1)
    number = f"{prefix}/number/ocpp_CP_2/charging_limit/config"

    try:
        settings = connector_settings(
            name,
            mosquitto.port,
            homeassistant_discovery=True,
            homeassistant_discovery_prefix=prefix,
        )
        async with running_connector(settings) as bridge:
            options = SimulatorOptions(meter_interval=0, max_power_w=7400)
            async with simulated_station(bridge, "CP_2", options, version="2.0.1") as sim:
                await eventually(lambda: number in configs(probe, prefix))
                # Asked when the connector learns the station (EVSE.Power's MaxSet).
                await eventually(
                    lambda: json.loads(configs(probe, prefix)[number][-1])["max"] == 7400
                )
                assert {"attributeType": "MaxSet"}.items() <= (
                    sim.calls("GetVariables")[-1]["getVariableData"][0].items()
                )
                # A report says it too (maxLimit), and its Actual (drawn now) changes nothing.
                await sim._report(1)
                await asyncio.sleep(0.3)
                assert json.loads(configs(probe, prefix)[number][-1])["max"] == 7400
    finally:
        probe.close()


TEMPLATES = [
    (ha.VALUE_TEMPLATE, {"value": 7.5}, "7.5"),
    (ha.BINARY_TEMPLATE, {"value": True}, "ON"),
    (ha.BINARY_TEMPLATE, {"value": False}, "OFF"),
    (ha.AVAILABLE_TEMPLATE, {"value": True}, "online"),
    (ha.STATUS_TEMPLATE, {"value": "Charging"}, "Charging"),
    (ha.STATUS_TEMPLATE, {"value": "Unavailable"}, "Out of service"),
]


@pytest.mark.parametrize(("template", "value_json", "expected"), TEMPLATES)
def test_templates_render_and_tolerate_an_empty_payload(
    template: str, value_json: dict[str, Any], expected: str
) -> None:
    """Rendered with Jinja2, as Home Assistant renders them: a value, and an
    empty payload (a topic removed: no value_json at all) without an error."""
    environment = jinja2.Environment(undefined=jinja2.StrictUndefined)
    compiled = environment.from_string(template)
    assert compiled.render(value_json=value_json) == expected
    empty = compiled.render()  # StrictUndefined: any use of value_json would raise
    assert empty in ("None", "", "offline")


def test_every_control_template_tolerates_an_empty_payload() -> None:
    environment = jinja2.Environment(undefined=jinja2.StrictUndefined)
    for _, control in ha_controls():
        template = control.fields.get("value_template")
        if template is not None:
            environment.from_string(template).render()


def ha_controls() -> list[tuple[str, Any]]:
    from connector import actuators

    return actuators.home_assistant_controls(actuators.NAMES)
