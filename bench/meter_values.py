"""Benchmark: N simulated stations send MeterValues at 1 Hz for T seconds.

Runs a real Mosquitto and the connector as its own process (as deployed), and
prints the connector's CPU and RSS and the latency from station to MQTT
subscriber (sample timestamp -> receipt by a subscriber of the mapped topic).

    python bench/meter_values.py --stations 100 --seconds 30
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from websockets.asyncio.client import connect

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "source"))

from connector.simulator import SimulatedChargePoint, SimulatorOptions  # noqa: E402

NAME = "bench"
KEY = "{cp}__MeterValues__1__Power.Active.Import__W"


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


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


class Subscriber:
    def __init__(self, port: int) -> None:
        self.latencies_ms: list[float] = []
        self.counting = False
        self._lock = threading.Lock()
        self.client = mqtt.Client(callback_api_version=CallbackAPIVersion.VERSION2)
        self.client.on_message = self._on_message
        self.client.connect("127.0.0.1", port)
        self.client.subscribe("bench-values/#", qos=1)
        self.client.loop_start()

    def _on_message(self, client: object, userdata: object, message: mqtt.MQTTMessage) -> None:
        received = time.time() * 1000
        if self.counting and not message.retain:
            sent = json.loads(message.payload)["timestamp"]
            with self._lock:
                self.latencies_ms.append(received - sent)


async def station(url: str, cp_id: str, stop_at: float, sent: list[int]) -> None:
    async with connect(url, subprotocols=["ocpp1.6"], ping_interval=None) as ws:  # type: ignore[list-item]
        cp = SimulatedChargePoint(cp_id, ws, SimulatorOptions(meter_interval=0))
        reader = asyncio.create_task(cp.start())
        await cp.boot()
        await cp.send_all_status()
        next_at = time.monotonic()
        while time.monotonic() < stop_at:
            await cp.send_meter_values(1, 1)
            sent[0] += 1
            next_at += 1.0
            await asyncio.sleep(max(0.0, next_at - time.monotonic()))
        reader.cancel()


async def drive(ocpp_port: int, stations: int, seconds: float, sub: Subscriber) -> int:
    sent = [0]
    warmup = 3.0
    stop_at = time.monotonic() + warmup + seconds
    tasks = []
    for i in range(stations):
        url = f"ws://127.0.0.1:{ocpp_port}/CP_{i}"
        tasks.append(asyncio.create_task(station(url, f"CP_{i}", stop_at, sent)))
        await asyncio.sleep(1.0 / stations)  # spread the 1 Hz ticks over the second
    await asyncio.sleep(max(0.0, stop_at - seconds - time.monotonic()))
    sub.counting = True
    sent_before = sent[0]
    await asyncio.gather(*tasks)
    sub.counting = False
    return sent[0] - sent_before


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--stations", type=int, default=100)
    parser.add_argument("--seconds", type=float, default=30)
    args = parser.parse_args()

    mosquitto = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
    mqtt_port, ocpp_port = free_port(), free_port()
    workdir = Path(tempfile.mkdtemp())
    (workdir / "m.conf").write_text(f"listener {mqtt_port} 127.0.0.1\nallow_anonymous true\n")
    broker = subprocess.Popen([mosquitto, "-c", str(workdir / "m.conf")], stderr=subprocess.DEVNULL)
    wait_port(mqtt_port)

    mapping = {
        "sensor": {
            KEY.format(cp=f"CP_{i}"): f"bench-values/CP_{i}/power" for i in range(args.stations)
        },
        "actuator": {},
    }
    setup = mqtt.Client(callback_api_version=CallbackAPIVersion.VERSION2)
    setup.connect("127.0.0.1", mqtt_port)
    setup.loop_start()
    setup.publish(
        f"{NAME}/datapoint_map", json.dumps(mapping), qos=1, retain=True
    ).wait_for_publish(10)
    setup.loop_stop()

    env = {
        **os.environ,
        "CONNECTOR_NAME": NAME,
        "MQTT_BROKER_HOST": "127.0.0.1",
        "MQTT_BROKER_PORT": str(mqtt_port),
        "OCPP_HOST": "127.0.0.1",
        "OCPP_PORT": str(ocpp_port),
    }
    connector = subprocess.Popen(
        [sys.executable, "source/connector/main.py"], cwd=ROOT, env=env, stderr=subprocess.DEVNULL
    )
    try:
        wait_port(ocpp_port)
        sub = Subscriber(mqtt_port)
        rss_start = rss_mib(connector.pid)
        cpu_start, wall_start = cpu_seconds(connector.pid), time.monotonic()
        sent = asyncio.run(drive(ocpp_port, args.stations, args.seconds, sub))
        time.sleep(1.0)  # let the last values arrive
        cpu = cpu_seconds(connector.pid) - cpu_start
        wall = time.monotonic() - wall_start
        rss_end = rss_mib(connector.pid)
        latencies = sorted(sub.latencies_ms)
        sub.client.loop_stop()
    finally:
        connector.terminate()
        connector.wait(15)
        broker.terminate()
        broker.wait(10)

    def pct(p: float) -> float:
        return (
            latencies[min(len(latencies) - 1, int(p / 100 * len(latencies)))]
            if latencies
            else float("nan")
        )

    print(f"stations: {args.stations}, seconds measured: {args.seconds:.0f}")
    print(
        f"MeterValues sent in the window: {sent}, "
        f"values received by the subscriber: {len(latencies)}"
    )
    print(
        f"connector CPU: {cpu:.2f} s over {wall:.1f} s wall ({100 * cpu / wall:.1f}% of one core)"
    )
    print(f"connector RSS: {rss_start:.1f} MiB after start, {rss_end:.1f} MiB at end")
    if latencies:
        print(
            f"latency station -> MQTT subscriber: p50 {pct(50):.1f} ms, p99 {pct(99):.1f} ms, "
            f"max {latencies[-1]:.1f} ms, mean {statistics.fmean(latencies):.1f} ms"
        )


if __name__ == "__main__":
    main()
