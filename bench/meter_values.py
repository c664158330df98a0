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
import statistics
import threading
import time

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
from websockets.asyncio.client import connect

from connector.simulator.core import SimulatorOptions
from connector.simulator.v16 import SimulatedChargePoint

NAME = "bench"
KEY = "{cp}__MeterValues__1__Power.Active.Import__W"


class Subscriber:
    def __init__(self, port: int) -> None:
        self.latencies_ms: list[float] = []
        self.counting = False
        self._lock = threading.Lock()
        self.client = subscriber(port, "bench-values/#", self._on_message)

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

    mapping = {
        "sensor": {
            KEY.format(cp=f"CP_{i}"): f"bench-values/CP_{i}/power" for i in range(args.stations)
        },
        "actuator": {},
    }
    ocpp_port = free_port()
    with mosquitto() as mqtt_port:
        publish_retained(mqtt_port, f"{NAME}/datapoint_map", mapping)
        with connector(NAME, mqtt_port, ocpp_port) as process:
            sub = Subscriber(mqtt_port)
            rss_start = rss_mib(process.pid)
            cpu_start, wall_start = cpu_seconds(process.pid), time.monotonic()
            sent = asyncio.run(drive(ocpp_port, args.stations, args.seconds, sub))
            time.sleep(1.0)  # let the last values arrive
            cpu = cpu_seconds(process.pid) - cpu_start
            wall = time.monotonic() - wall_start
            rss_end = rss_mib(process.pid)
            latencies = sorted(sub.latencies_ms)
            sub.client.loop_stop()

    def pct(p: float) -> float:
        return percentile(latencies, p)

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
