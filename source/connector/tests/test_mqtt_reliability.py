"""README "Reliability" toward the broker: login, TLS, and outages, with real Mosquittos.

Each test starts its own Mosquitto, configured for what it tests, and
restarts it where an outage is the point.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from ocpp.v16 import call

from connector.mqtt.mqtt_link import MqttLink
from connector.simulator.core import SimulatorOptions
from connector.simulator.v16 import SimulatedChargePoint
from connector.tests.helpers import (
    Mosquitto,
    Probe,
    StartStation,
    connector_settings,
    eventually,
    free_port,
    run,
    running_connector,
    simulated_station,
)
from connector.tests.pki import Pki, make_pki

pytestmark = pytest.mark.broker

QUIET = SimulatorOptions(meter_interval=0)
USER, PASSWORD = "connector", "broker-Secret-1"


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture
def secured(tmp_path: Path, pki: Pki) -> Iterator[tuple[Mosquitto, int]]:
    """Mosquitto with a password file, on a plain and a TLS listener."""
    passwd = tmp_path / "passwd"
    passwd.touch()
    subprocess.run(
        ["mosquitto_passwd", "-b", str(passwd), USER, PASSWORD],
        check=True,
        capture_output=True,
        timeout=30,
    )
    tls_port = free_port()
    broker = Mosquitto(
        tmp_path,
        f"allow_anonymous false\npassword_file {passwd}\npersistence false\n"
        f"listener {tls_port} 127.0.0.1\ncafile {pki.ca}\n"
        f"certfile {pki.server_cert}\nkeyfile {pki.server_key}\n",
    )
    broker.start()
    yield broker, tls_port
    broker.stop()


def energy_key(cp_id: str) -> str:
    return f"{cp_id}__MeterValues__1__Energy.Active.Import.Register__Wh"


@pytest.mark.within(90)
async def test_broker_login_and_tls(
    secured: tuple[Mosquitto, int], pki: Pki, name: str, caplog: Any, start_station: StartStation
) -> None:
    broker, tls_port = secured
    login = {"username": USER, "password": PASSWORD}

    for port, tls in ((broker.port, {}), (tls_port, {"mqtt_tls": True})):
        probe = Probe(port, name, **login, tls_ca=pki.ca if tls else None)
        try:
            probe.map(sensors=[energy_key("CP_1")])
            settings = connector_settings(
                name,
                port,
                mqtt_broker_host="localhost" if tls else "127.0.0.1",
                mqtt_broker_username=USER,
                mqtt_broker_password=PASSWORD,
                mqtt_tls_ca=str(pki.ca) if tls else "",
                **tls,
            )
            async with running_connector(settings) as bridge:
                async with start_station(bridge, "CP_1", QUIET) as station:
                    await station.send_meter_values(1, 3600)
                    assert await probe.value(energy_key("CP_1")) == 11000
        finally:
            probe.close()

    # Wrong credentials: the broker refuses, the connector says so and keeps
    # serving stations; the password is not in the log.
    caplog.set_level(logging.INFO)
    settings = connector_settings(
        name, broker.port, mqtt_broker_username=USER, mqtt_broker_password="wrong-one"
    )
    async with running_connector(settings) as bridge:
        async with start_station(bridge, "CP_1", QUIET) as station:
            await station.call(call.Heartbeat())
        assert "refused the connection" in caplog.text
        assert "wrong-one" not in caplog.text


@pytest.fixture
def persistent(tmp_path: Path) -> Iterator[Mosquitto]:
    """Mosquitto that keeps sessions across its own restart (the probe's, not ours)."""
    broker = Mosquitto(
        tmp_path,
        f"allow_anonymous true\npersistence true\npersistence_location {tmp_path}/\n",
    )
    broker.start()
    yield broker
    broker.stop()


async def send_steadily(
    station: SimulatedChargePoint, sent: list[float], stop: asyncio.Event
) -> None:
    while not stop.is_set():
        await station.send_meter_values(1, 10)
        sent.append(round(station.energy_wh, 1))
        await asyncio.sleep(0.2)


def received_values(probe: Probe, key: str) -> list[float]:
    """In arrival order, a QoS 1 redelivery after the reconnect counted once."""
    seen: list[float] = []
    for message in probe.received(probe.value_topic(key)):
        if message["value"] not in seen:
            seen.append(message["value"])
    return seen


def outage_scenario(
    broker: Mosquitto, name: str, max_queued: int, stations: int, raw: bool = False
) -> Any:
    cp_ids = [f"CP_{i}" for i in range(stations)]

    async def scenario() -> tuple[dict[str, list[float]], dict[str, list[float]], Any]:
        probe = Probe(broker.port, name, session=f"outage-probe-{name}")
        try:
            probe.map(
                sensors=[energy_key(cp) for cp in cp_ids],
                actuators=["CP_0__execute_trigger_message"],
            )
            settings = connector_settings(
                name, broker.port, mqtt_max_queued=max_queued, send_raw_message_to_db=raw
            )
            sent: dict[str, list[float]] = {cp: [] for cp in cp_ids}
            async with running_connector(settings) as bridge:
                async with contextlib.AsyncExitStack() as stack:
                    sims = [
                        await stack.enter_async_context(simulated_station(bridge, cp, QUIET))
                        for cp in cp_ids
                    ]
                    stop = asyncio.Event()
                    senders = [
                        asyncio.create_task(send_steadily(sim, sent[sim.id], stop)) for sim in sims
                    ]
                    await asyncio.sleep(1)
                    broker.stop()
                    await asyncio.sleep(10)
                    broker.start()
                    await asyncio.sleep(2)
                    stop.set()
                    await asyncio.gather(*senders)
                    assert bridge.mqtt is not None
                    link = bridge.mqtt.link
                    await eventually(lambda: link.unacked == 0, timeout=30)
                    # Commands work again after the restart.
                    probe.command(probe.actuator_topic("CP_0__execute_trigger_message"), 3)
                    await eventually(lambda: sims[0].calls("TriggerMessage") != [])
                    await asyncio.sleep(1)
                    received = {cp: received_values(probe, energy_key(cp)) for cp in cp_ids}
                    return sent, received, link
        finally:
            probe.close()

    return scenario()


def test_nothing_is_lost_across_a_broker_restart(persistent: Mosquitto, name: str) -> None:
    """10 stations send while Mosquitto is down for 10 s: every value arrives, in order."""
    sent, received, link = run(outage_scenario(persistent, name, 100000, 10), timeout=120)
    for cp_id, values in sent.items():
        assert len(values) > 30
        assert received[cp_id] == values, cp_id
    assert link.dropped == 0


def test_nothing_is_lost_across_a_broker_restart_with_raw_messages(
    persistent: Mosquitto, name: str
) -> None:
    """Issue 17: with SEND_RAW_MESSAGE_TO_DB=TRUE (QoS 2 beside the values' QoS 1), a
    restart lost most values: the QoS 2 backlog used up Mosquitto's receive quota,
    and it refused every QoS 1 value with "Quota exceeded", which paho reported as
    published."""
    sent, received, link = run(outage_scenario(persistent, name, 100000, 10, raw=True), timeout=120)
    for cp_id, values in sent.items():
        assert len(values) > 30
        assert received[cp_id] == values, cp_id
    assert link.dropped == 0


def test_qos_1_and_2_interleaved_across_a_restart_with_the_link_alone(
    persistent: Mosquitto, name: str
) -> None:
    """The same, reduced to MqttLink: every QoS 1 and QoS 2 message arrives."""

    async def scenario() -> tuple[int, set[int], set[int]]:
        probe = Probe(persistent.port, name, session=f"mix-probe-{name}")
        loop = asyncio.get_running_loop()
        link = MqttLink(
            "127.0.0.1", persistent.port, f"mix-{name}", loop, lambda: None, lambda *_: None
        )
        link.start()
        try:
            await eventually(link.connected.is_set)
            sent = 0
            stop = asyncio.Event()

            async def pump() -> None:
                nonlocal sent
                while not stop.is_set():
                    link.publish(f"{name}/v", str(sent), qos=1)
                    link.publish(f"{name}/raw", str(sent), qos=2)
                    sent += 1
                    await asyncio.sleep(0.02)

            task = asyncio.create_task(pump())
            await asyncio.sleep(1)
            persistent.stop()
            await asyncio.sleep(5)
            persistent.start()
            await asyncio.sleep(2)
            stop.set()
            await task
            await eventually(lambda: link.unacked == 0, timeout=30)
            await asyncio.sleep(1)
            values = {int(p) for t, p, _ in probe.messages if t == f"{name}/v"}
            raws = {int(p) for t, p, _ in probe.messages if t == f"{name}/raw"}
            return sent, values, raws
        finally:
            link.stop()
            probe.close()

    sent, values, raws = run(scenario(), timeout=90)
    assert values == set(range(sent))
    # QoS 2 too: one the broker had received but not released when it went down
    # is published again, not released by a PUBREL it no longer knows.
    assert raws == set(range(sent))


async def test_a_topic_paho_or_the_broker_would_refuse_is_an_error_never_an_exception(
    mosquitto: Mosquitto, name: str, caplog: Any
) -> None:
    caplog.set_level(logging.ERROR)
    loop = asyncio.get_running_loop()
    link = MqttLink("127.0.0.1", mosquitto.port, f"t-{name}", loop, lambda: None, lambda *_: None)
    link.start()
    try:
        await eventually(link.connected.is_set)
        for topic in (
            f"{name}/a#b",
            f"{name}/a+b",
            f"{name}/a\x00b",
            f"{name}/\x01",
            "",
            "x" * 70000,
        ):
            assert link.publish(topic, b"1", qos=1) is False
        assert link.publish(f"{name}/fine", b"1", qos=1) is True
        await eventually(lambda: link.unacked == 0)
        # Still connected: a malformed topic would have made Mosquitto drop us.
        assert link.connected.is_set()
    finally:
        link.stop()
    assert caplog.text.count("not published on") == 6


def test_beyond_mqtt_max_queued_drops_are_counted(
    persistent: Mosquitto, name: str, caplog: Any
) -> None:
    caplog.set_level(logging.WARNING)
    sent, received, link = run(outage_scenario(persistent, name, 30, 3), timeout=120)
    assert link.dropped > 0
    assert "dropped" in caplog.text
    for cp_id, values in sent.items():
        # What arrived came in order; the newest values during the outage were dropped.
        positions = [values.index(v) for v in received[cp_id]]
        assert positions == sorted(positions)
        assert len(received[cp_id]) < len(values)
