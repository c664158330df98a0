"""The embedded broker, driven by paho and by the connector's real process. No Mosquitto."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from connector.mqtt.embedded_broker import EmbeddedBroker, topic_matches
from connector.tests.helpers import WAIT, free_port

ROOT = Path(__file__).resolve().parents[3]


@pytest.mark.parametrize(
    ("topic_filter", "topic", "matches"),
    [
        ("a/b", "a/b", True),
        ("a/+", "a/b", True),
        ("a/+", "a/b/c", False),
        ("a/#", "a/b/c", True),
        ("a/#", "a", True),
        ("#", "a/b", True),
        ("#", "$SYS/x", False),
        ("+/b", "$SYS/b", False),
        ("a/b", "a/c", False),
        ("a/+/c", "a/x/c", True),
    ],
)
def test_topic_matching(topic_filter: str, topic: str, matches: bool) -> None:
    assert topic_matches(topic_filter, topic) is matches


@contextmanager
def broker_in_thread() -> Iterator[EmbeddedBroker]:
    """The broker on its own event loop, so paho's blocking calls cannot stall it."""
    loop = asyncio.new_event_loop()
    broker = EmbeddedBroker("127.0.0.1", 0)
    loop.run_until_complete(broker.start())
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    try:
        yield broker
    finally:
        asyncio.run_coroutine_threadsafe(broker.stop(), loop).result(WAIT)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(WAIT)
        loop.close()


def test_paho_publish_subscribe_retained() -> None:
    got: list[tuple[str, bytes, bool]] = []
    done = threading.Event()

    def on_message(client: mqtt.Client, userdata: object, message: mqtt.MQTTMessage) -> None:
        got.append((message.topic, bytes(message.payload), bool(message.retain)))
        if len(got) == 3:
            done.set()

    with broker_in_thread() as broker:
        publisher = mqtt.Client(callback_api_version=CallbackAPIVersion.VERSION2)
        publisher.connect("127.0.0.1", broker.port)
        publisher.loop_start()
        publisher.publish("x/retained", b"kept", qos=1, retain=True).wait_for_publish(WAIT)
        subscriber = mqtt.Client(callback_api_version=CallbackAPIVersion.VERSION2)
        subscriber.on_message = on_message
        subscribed = threading.Event()
        subscriber.on_subscribe = lambda *args: subscribed.set()
        subscriber.connect("127.0.0.1", broker.port)
        subscriber.loop_start()
        subscriber.subscribe("x/#", qos=1)
        assert subscribed.wait(WAIT)
        publisher.publish("x/q1", b"one", qos=1).wait_for_publish(WAIT)
        publisher.publish("x/q2", b"two", qos=2).wait_for_publish(WAIT)
        publisher.publish("y/other", b"no", qos=0)
        assert done.wait(WAIT)
        for client in (publisher, subscriber):
            client.loop_stop()
            client.disconnect()
    assert got == [("x/retained", b"kept", True), ("x/q1", b"one", False), ("x/q2", b"two", False)]


def test_connector_runs_on_the_embedded_broker_and_stops_cleanly_on_sigterm() -> None:
    mqtt_port, ocpp_port = free_port(), free_port()
    env = {
        **os.environ,
        "HTTP_PORT": "0",
        "MQTT_BROKER_HOST": "",
        "MQTT_BROKER_PORT": str(mqtt_port),
        "OCPP_PORT": str(ocpp_port),
        "OCPP_HOST": "127.0.0.1",
        "CONNECTOR_NAME": "embedded-test",
    }
    process = subprocess.Popen(
        [sys.executable, "source/connector/main.py"],
        cwd=ROOT,
        env=env,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        received: list[mqtt.MQTTMessage] = []
        client = mqtt.Client(callback_api_version=CallbackAPIVersion.VERSION2)
        client.on_message = lambda c, u, m: received.append(m)
        deadline = time.monotonic() + WAIT
        while True:
            try:
                client.connect("127.0.0.1", mqtt_port)
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        client.subscribe("embedded-test/#")
        client.loop_start()
        deadline = time.monotonic() + WAIT
        while not any(m.topic == "embedded-test/available_datapoints" for m in received):
            assert time.monotonic() < deadline, "no available_datapoints from the connector"
            time.sleep(0.05)
        available = next(m for m in received if m.topic == "embedded-test/available_datapoints")
        assert json.loads(available.payload) == {"sensor": {}, "actuator": {}}
        client.loop_stop()
        client.disconnect()
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=15)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0
    # Spoken to in MQTT 3.1.1 from the start, without a refused MQTT 5 attempt.
    assert "(MQTT 3.1.1)" in stderr and "protocol level 5" not in stderr
    assert "WARNING" in stderr and "embedded broker" in stderr and "local trials" in stderr
