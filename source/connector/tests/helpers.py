"""What the tests share besides fixtures: a real Mosquitto, an MQTT probe,
the connector's test settings, a running connector, simulated stations, and
bounded waits. The fixtures (conftest.py) are built from these.

Integration tests run their own Mosquitto on a free port and give every test
its own CONNECTOR_NAME, so topics never collide. Every await is bounded.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import socket
import subprocess
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from websockets.asyncio.client import connect

from connector.bridge import Bridge
from connector.settings import Settings
from connector.simulator.core import SimulatorOptions
from connector.versions import BY_NAME

TEST_TIMEOUT = 60.0
WAIT = 10.0  # bound for a single expected event


def run(coroutine: Coroutine[Any, Any, Any], timeout: float = TEST_TIMEOUT) -> Any:
    """Run an async scenario with a hard bound, so a hang fails instead of blocking CI."""
    return asyncio.run(asyncio.wait_for(coroutine, timeout))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_for_port(port: int, deadline: float) -> None:
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listens on port {port}")


class Mosquitto:
    """A real Mosquitto on a free port; can be stopped and started again."""

    def __init__(
        self, workdir: Path, config: str = "allow_anonymous true\npersistence false\n"
    ) -> None:
        """`config` follows the plain listener on `self.port`; it may add listeners."""
        executable = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
        if not os.path.exists(executable):
            pytest.fail("mosquitto is not installed (apt-get install mosquitto)")
        self.executable = executable
        self.port = free_port()
        self.config = workdir / "mosquitto.conf"
        # `user root`: as root, Mosquitto would switch to its own user, which
        # cannot read the test's files.
        user = "user root\n" if os.geteuid() == 0 else ""
        self.config.write_text(f"{user}listener {self.port} 127.0.0.1\n{config}")
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            [self.executable, "-c", str(self.config)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        _wait_for_port(self.port, time.monotonic() + 10)

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(10)
            self.process = None


class Probe:
    """A plain MQTT client that records everything under the connector's name."""

    def __init__(
        self,
        port: int,
        name: str,
        *,
        session: str | None = None,
        username: str | None = None,
        password: str | None = None,
        tls_ca: Path | None = None,
    ) -> None:
        """`session`: a client id whose session the broker keeps across disconnects."""
        self.name = name
        self.messages: list[tuple[str, bytes, bool]] = []
        self._lock = threading.Lock()
        self.client = mqtt.Client(
            callback_api_version=CallbackAPIVersion.VERSION2,
            client_id=session or f"probe-{name}-{uuid.uuid4().hex[:6]}",
            clean_session=session is None,
        )
        if username is not None:
            self.client.username_pw_set(username, password)
        if tls_ca is not None:
            self.client.tls_set(ca_certs=str(tls_ca))
        self.client.reconnect_delay_set(min_delay=0.2, max_delay=1)  # type: ignore[arg-type]
        self.client.on_message = self._on_message
        connected = threading.Event()
        self.client.on_connect = lambda *args: connected.set()
        self.client.connect("localhost" if tls_ca else "127.0.0.1", port)
        self.client.loop_start()
        if not connected.wait(WAIT):
            raise RuntimeError("probe could not connect")
        self.client.subscribe(f"{name}/#", qos=1)
        self.client.subscribe(f"values-{name}/#", qos=1)

    def _on_message(self, client: Any, userdata: Any, message: mqtt.MQTTMessage) -> None:
        with self._lock:
            self.messages.append((message.topic, bytes(message.payload), bool(message.retain)))

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()

    def publish(self, topic: str, payload: Any, retain: bool = False) -> None:
        data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        self.client.publish(topic, data, qos=1, retain=retain).wait_for_publish(WAIT)

    def command(self, topic: str, value: Any) -> None:
        self.publish(topic, {"value": value, "timestamp": int(time.time() * 1000)})

    def received(self, topic: str) -> list[Any]:
        with self._lock:
            return [json.loads(p) for t, p, _ in self.messages if t == topic]

    def clear(self) -> None:
        with self._lock:
            self.messages.clear()

    async def wait_for(
        self,
        topic: str,
        predicate: Callable[[Any], bool] = lambda _: True,
        timeout: float = WAIT,
    ) -> Any:
        """The first message on `topic` that satisfies `predicate`."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for payload in self.received(topic):
                if predicate(payload):
                    return payload
            await asyncio.sleep(0.02)
        raise AssertionError(
            f"nothing matching on {topic} within {timeout} s; got {self.received(topic)[-5:]}"
        )

    async def wait_for_log(self, *fragments: str, timeout: float = WAIT) -> dict[str, Any]:
        return await self.wait_for(
            f"{self.name}/logs",
            lambda log: all(f in log["msg"] for f in fragments),
            timeout,
        )

    def value_topic(self, key: str) -> str:
        return f"values-{self.name}/{key}"

    def map(self, sensors: list[str] = (), actuators: list[str] = (), retain: bool = True) -> None:  # type: ignore[assignment]
        """Map sensor keys to `values-<name>/<key>` and actuators to `cmd-<name>/<key>`."""
        self.publish(
            f"{self.name}/datapoint_map",
            {
                "sensor": {key: self.value_topic(key) for key in sensors},
                "actuator": {self.actuator_topic(key): key for key in actuators},
            },
            retain=retain,
        )

    def actuator_topic(self, key: str) -> str:
        return f"cmd-{self.name}/{key}"

    async def value(self, key: str, predicate: Callable[[Any], bool] = lambda _: True) -> Any:
        message = await self.wait_for(self.value_topic(key), lambda m: predicate(m["value"]))
        return message["value"]


def connector_settings(name: str, broker_port: int, **overrides: Any) -> Settings:
    """The connector's settings for a test: its own name, the broker, a free port."""
    base = Settings(
        connector_name=name,
        mqtt_broker_host="127.0.0.1",
        mqtt_broker_port=broker_port,
        ocpp_host="127.0.0.1",
        ocpp_port=0,
        heartbeat_interval=30,
        ocpp_response_timeout=5,
        ocpp_boot_wait=0.5,
        http_port=0,  # off: a test that wants it gives a free port
    )
    return replace(base, **overrides)


# The fixtures' factories (conftest.py): a connector, a simulated station.
StartConnector = Callable[..., AbstractAsyncContextManager[Bridge]]
StartStation = Callable[..., AbstractAsyncContextManager[Any]]


@asynccontextmanager
async def running_connector(settings: Settings) -> AsyncIterator[Bridge]:
    bridge = Bridge(settings, "test")
    await bridge.start()
    try:
        yield bridge
    finally:
        await bridge.stop()


def station_url(bridge: Bridge, cp_id: str) -> str:
    assert bridge.central is not None
    if bridge.central.options.ssl_context is not None:
        return f"wss://localhost:{bridge.central.port}/ocpp/{cp_id}"
    return f"ws://127.0.0.1:{bridge.central.port}/ocpp/{cp_id}"


class Recorded:
    """A station's WebSocket as its simulator sees it, recording what it sends."""

    def __init__(self, ws: Any) -> None:
        self._ws = ws
        self.sent: list[str] = []

    async def recv(self) -> Any:
        return await self._ws.recv()

    async def send(self, text: str) -> None:
        self.sent.append(text)
        await self._ws.send(text)


@asynccontextmanager
async def simulated_station(
    bridge: Bridge,
    cp_id: str,
    options: SimulatorOptions | None = None,
    boot: bool = True,
    version: str = "1.6",
    record: bool = False,
    **connect_args: Any,
) -> AsyncIterator[Any]:
    """A simulated station of that OCPP version (the versions table names its
    class); `connect_args` go to websockets' connect. With `record`, every
    frame it sends is in `station.wire.sent`, as sent."""
    url = station_url(bridge, cp_id)
    ocpp = BY_NAME[version]
    subprotocols = [ocpp.subprotocol]
    async with connect(url, subprotocols=subprotocols, **connect_args) as ws:  # type: ignore[arg-type]
        options = options or SimulatorOptions(meter_interval=0)
        wire = Recorded(ws) if record else ws
        station: Any = ocpp.simulator_class(cp_id, wire, options, ocpp)
        station.wire = wire
        reader = asyncio.create_task(station.start())
        try:
            if boot:
                await asyncio.wait_for(station.boot(), WAIT)
                await asyncio.wait_for(station.send_all_status(), WAIT)
            yield station
        finally:
            if reader.done() and not reader.cancelled() and reader.exception() is not None:
                # Surfaces a crash of the simulated station in the test's output.
                print(f"simulated station {cp_id} stopped: {reader.exception()!r}")
            reader.cancel()


def equal_to(expected: Any) -> Callable[[Any], bool]:
    """A predicate for Probe.value: the value equals `expected`."""
    return lambda value: value == expected


async def eventually(check: Callable[[], bool], timeout: float = WAIT) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.02)
