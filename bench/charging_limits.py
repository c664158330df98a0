"""Benchmark: an energy manager sets a new power limit on N stations at once.

Runs a real Mosquitto and the connector as its own process. N simulated
stations connect; then, R times, a limit is published on every station's
mapped actuator topic in one burst. Printed: the time from the publish to the
`ChargingLimit` datapoint on MQTT (the station accepted it), the profiles the
stations received, and the connector's CPU and RSS.

    python bench/charging_limits.py --stations 200 --rounds 5
"""

from __future__ import annotations

import argparse
import asyncio
import json
import threading
import time
from typing import Any

import paho.mqtt.client as mqtt
from harness import (
    connector,
    cpu_seconds,
    free_port,
    mosquitto,
    percentile,
    publish_retained,
    rss_mib,
    subscriber,
)
from paho.mqtt.enums import CallbackAPIVersion
from websockets.asyncio.client import connect

from connector.simulator.core import SimulatorOptions
from connector.simulator.v16 import SimulatedChargePoint

NAME = "bench-limits"


class Watcher:
    """Receives the ChargingLimit values and notes when each arrived."""

    def __init__(self, port: int, stations: int) -> None:
        self.arrived: dict[tuple[str, float], float] = {}
        self._lock = threading.Lock()
        self.client = subscriber(port, "bench-limits-values/#", self._on_message)

    def _on_message(self, client: object, userdata: object, message: mqtt.MQTTMessage) -> None:
        now = time.monotonic()
        cp_id = message.topic.rsplit("/", 1)[-1]
        value = json.loads(message.payload)["value"]
        with self._lock:
            self.arrived.setdefault((cp_id, value), now)

    def count(self, value: float) -> int:
        with self._lock:
            return sum(1 for (_, v) in self.arrived if v == value)


async def run_stations(url: str, stations: int, ready: asyncio.Event, done: asyncio.Event) -> int:
    connected = [0]
    calls = [0]

    async def one(cp_id: str) -> None:
        async with connect(f"{url}/{cp_id}", subprotocols=["ocpp1.6"], ping_interval=None) as ws:  # type: ignore[list-item]
            cp = SimulatedChargePoint(cp_id, ws, SimulatorOptions(meter_interval=0))
            reader = asyncio.create_task(cp.start())
            await cp.boot()
            await cp.send_all_status()
            connected[0] += 1
            if connected[0] == stations:
                ready.set()
            await done.wait()
            calls[0] += len(cp.calls("SetChargingProfile"))
            reader.cancel()

    tasks = [asyncio.create_task(one(f"CP_{i}")) for i in range(stations)]
    await asyncio.gather(*tasks)
    return calls[0]


async def drive(
    ocpp_port: int, mqtt_port: int, args: Any, watcher: Watcher, pid: int
) -> dict[str, Any]:
    ready, done = asyncio.Event(), asyncio.Event()
    stations = asyncio.create_task(
        run_stations(f"ws://127.0.0.1:{ocpp_port}", args.stations, ready, done)
    )
    await asyncio.wait_for(ready.wait(), 120)
    await asyncio.sleep(2)  # every station learned (GetConfiguration)
    publisher = mqtt.Client(callback_api_version=CallbackAPIVersion.VERSION2)
    publisher.connect("127.0.0.1", mqtt_port)
    publisher.loop_start()
    latencies: list[float] = []
    cpu_start, wall_start = cpu_seconds(pid), time.monotonic()
    for round_ in range(args.rounds):
        value = 4000 + 100 * round_
        started = time.monotonic()
        for i in range(args.stations):
            message = json.dumps({"value": value, "timestamp": int(time.time() * 1000)})
            publisher.publish(f"bench-limits-cmd/CP_{i}", message, qos=1)
        deadline = started + 60
        # Polls a count fed by paho's thread; 10 ms is far below the figures measured.
        while watcher.count(value) < args.stations and time.monotonic() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(0.01)
        latencies += [t - started for (_, v), t in watcher.arrived.items() if v == value]
    cpu = cpu_seconds(pid) - cpu_start
    wall = time.monotonic() - wall_start
    publisher.loop_stop()
    done.set()
    calls = await stations
    return {"latencies": sorted(latencies), "calls": calls, "cpu": cpu, "wall": wall}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--stations", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    mapping = {
        "sensor": {
            f"CP_{i}__ChargingLimit__1__W": f"bench-limits-values/CP_{i}"
            for i in range(args.stations)
        },
        "actuator": {
            f"bench-limits-cmd/CP_{i}": f"CP_{i}__execute_send_charging_profile__1"
            for i in range(args.stations)
        },
    }
    ocpp_port = free_port()
    with mosquitto() as mqtt_port:
        publish_retained(mqtt_port, f"{NAME}/datapoint_map", mapping)
        with connector(NAME, mqtt_port, ocpp_port) as process:
            watcher = Watcher(mqtt_port, args.stations)
            rss_start = rss_mib(process.pid)
            result = asyncio.run(drive(ocpp_port, mqtt_port, args, watcher, process.pid))
            rss_end = rss_mib(process.pid)
            watcher.client.loop_stop()

    latencies = result["latencies"]
    expected = args.stations * args.rounds
    print(f"stations: {args.stations}, rounds: {args.rounds}")
    print(f"limits in force (ChargingLimit on MQTT): {len(latencies)} of {expected}")
    print(f"SetChargingProfile calls received by the stations: {result['calls']}")
    print(
        "publish -> ChargingLimit on MQTT, per station: "
        f"p50 {1000 * percentile(latencies, 50):.0f} ms, "
        f"p99 {1000 * percentile(latencies, 99):.0f} ms, "
        f"max {1000 * (latencies[-1] if latencies else float('nan')):.0f} ms"
    )
    print(
        f"connector CPU during the rounds: {result['cpu']:.2f} s over {result['wall']:.1f} s "
        f"wall, {1000 * result['cpu'] / max(1, len(latencies)):.2f} ms per limit"
    )
    print(f"connector RSS: {rss_start:.1f} MiB after start, {rss_end:.1f} MiB at end")


if __name__ == "__main__":
    main()
