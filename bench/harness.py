"""Shared parts of the benchmarks: a real Mosquitto, the connector as its own
process (as deployed), and /proc readings of its CPU and memory."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "source"))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_port(port: int, seconds: float = 10) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError(f"port {port} did not open")


def process_tree(pid: int) -> list[int]:
    """The process and its descendants (OCPP_WORKERS runs its instances as children)."""
    pids = [pid]
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        return pids
    for child in children:
        pids += process_tree(int(child))
    return pids


def cpu_seconds(pid: int) -> float:
    """User + system CPU of the process and its children that are running now."""
    total = 0.0
    for member in process_tree(pid):
        try:
            fields = Path(f"/proc/{member}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def rss_mib(pid: int) -> float:
    """Resident memory of the process and its children."""
    total = 0.0
    for member in process_tree(pid):
        try:
            lines = Path(f"/proc/{member}/status").read_text().splitlines()
        except OSError:
            continue
        total += sum(int(line.split()[1]) / 1024 for line in lines if line.startswith("VmRSS:"))
    return total


def percentile(ordered: list[float], p: float) -> float:
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))]


class Broker:
    """A Mosquitto on a free port that can be stopped and started again.

    `persistent`: it keeps sessions and queued messages across its restarts.
    """

    def __init__(self, persistent: bool = False) -> None:
        self.port = free_port()
        self.dir = Path(tempfile.mkdtemp())
        config = f"listener {self.port} 127.0.0.1\nallow_anonymous true\n"
        if persistent:
            config += (
                f"persistence true\npersistence_location {self.dir}/\n"
                "max_queued_messages 1000000\nuser root\n"
            )
        (self.dir / "m.conf").write_text(config)
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        executable = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
        self.process = subprocess.Popen(
            [executable, "-c", str(self.dir / "m.conf")], stderr=subprocess.DEVNULL
        )
        wait_port(self.port)

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(10)
            self.process = None


@contextmanager
def mosquitto() -> Iterator[int]:
    """A Mosquitto on a free port; yields the port."""
    broker = Broker()
    broker.start()
    try:
        yield broker.port
    finally:
        broker.stop()


def subscriber(
    port: int,
    topic: str,
    on_message: Callable[[mqtt.Client, Any, mqtt.MQTTMessage], None],
    session: str | None = None,
) -> mqtt.Client:
    """A running client that subscribes to `topic` at QoS 1 on every connect.

    `session`: a client id whose session the broker keeps while it is away.
    """
    client = mqtt.Client(
        callback_api_version=CallbackAPIVersion.VERSION2,
        client_id=session or "",
        clean_session=session is None,
    )
    client.reconnect_delay_set(min_delay=1, max_delay=2)
    client.on_message = on_message
    client.on_connect = lambda c, *_: c.subscribe(topic, qos=1)
    client.connect("127.0.0.1", port)
    client.loop_start()
    return client


def publish_retained(port: int, topic: str, payload: Any) -> None:
    client = mqtt.Client(callback_api_version=CallbackAPIVersion.VERSION2)
    client.connect("127.0.0.1", port)
    client.loop_start()
    client.publish(topic, json.dumps(payload), qos=1, retain=True).wait_for_publish(10)
    client.loop_stop()
    client.disconnect()


def connector_env(name: str, mqtt_port: int, ocpp_port: int) -> dict[str, str]:
    """The environment of a connector on loopback, otherwise with its defaults."""
    return {
        **os.environ,
        "CONNECTOR_NAME": name,
        "MQTT_BROKER_HOST": "127.0.0.1",
        "MQTT_BROKER_PORT": str(mqtt_port),
        "OCPP_HOST": "127.0.0.1",
        "OCPP_PORT": str(ocpp_port),
        # Several connectors on one machine would each want 8080.
        "HTTP_PORT": "0",
    }


@contextmanager
def connector(
    name: str, mqtt_port: int, ocpp_port: int, extra: dict[str, str] | None = None
) -> Iterator[subprocess.Popen[bytes]]:
    """The connector as its own process; `extra`: more of its environment."""
    env = {**connector_env(name, mqtt_port, ocpp_port), **(extra or {})}
    process = subprocess.Popen(
        [sys.executable, "source/connector/main.py"], cwd=ROOT, env=env, stderr=subprocess.DEVNULL
    )
    try:
        wait_port(ocpp_port)
        yield process
    finally:
        process.terminate()
        process.wait(15)
