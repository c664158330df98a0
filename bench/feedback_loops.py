"""Benchmark: the four inputs of issue 9 that used to make the connector run away.

Runs a real Mosquitto and the connector as its own process, with default
settings, and one well-behaved simulated station. Then, in turn:
1. a map with one topic both ways (ChargingLimit as sensor, the limit actuator),
   and one command of 11000 W on it;
2. a map with `<name>/logs` as an actuator topic, and one invalid command;
3. the same limit every 0.2 s for 10 s;
4. a second station sending MeterValues over 399 connector ids x 16 measurands
   x 10 phases x 5 locations (319,200 distinct keys).
Printed: what reached the station, the broker and the log topic, and the
connector's RSS. Counts, not timings, so the shared machine's noise does not
matter; the RSS of the plain connector with one station is the baseline.

    python bench/feedback_loops.py
"""

from __future__ import annotations

import argparse
import asyncio
import json
import threading
import time
from collections import Counter
from typing import Any

import paho.mqtt.client as mqtt
from harness import connector, free_port, mosquitto, rss_mib, subscriber
from ocpp.v16 import call
from ocpp.v16.enums import Location, Measurand, Phase
from paho.mqtt.enums import CallbackAPIVersion
from websockets.asyncio.client import connect

from connector.simulator.core import SimulatorOptions
from connector.simulator.v16 import SimulatedChargePoint

NAME = "bench-loops"
LIMIT = "CP_1__execute_send_charging_profile"


class Counts:
    """Messages and bytes per topic, from a subscriber to everything."""

    def __init__(self, port: int) -> None:
        self.messages: Counter[str] = Counter()
        self.bytes: Counter[str] = Counter()
        self.largest: Counter[str] = Counter()
        self._lock = threading.Lock()
        self.client = subscriber(port, "#", self._on_message)

    def _on_message(self, client: object, userdata: object, message: mqtt.MQTTMessage) -> None:
        with self._lock:
            self.messages[message.topic] += 1
            self.bytes[message.topic] += len(message.payload)
            self.largest[message.topic] = max(self.largest[message.topic], len(message.payload))

    def snapshot(self) -> tuple[Counter[str], Counter[str]]:
        with self._lock:
            return Counter(self.messages), Counter(self.bytes)


class Publisher:
    def __init__(self, port: int) -> None:
        self.client = mqtt.Client(callback_api_version=CallbackAPIVersion.VERSION2)
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()

    def send(self, topic: str, payload: Any, retain: bool = False) -> None:
        data = json.dumps(payload)
        self.client.publish(topic, data, qos=1, retain=retain).wait_for_publish(10)

    def command(self, topic: str, value: Any) -> None:
        self.send(topic, {"value": value, "timestamp": int(time.time() * 1000)})


async def station(url: str, cp_id: str) -> tuple[SimulatedChargePoint, asyncio.Task[None]]:
    ws = await connect(f"{url}/{cp_id}", subprotocols=["ocpp1.6"], max_size=None)  # type: ignore[list-item]
    cp = SimulatedChargePoint(cp_id, ws, SimulatorOptions(meter_interval=0))
    reader = asyncio.create_task(cp.start())
    await cp.boot()
    await cp.send_all_status()
    return cp, reader


def delta(after: Counter[str], before: Counter[str], topic: str) -> int:
    return after[topic] - before[topic]


async def flood_keys(cp: SimulatedChargePoint, connectors: int, seconds: float) -> int:
    """MeterValues with invented keys, one call per connector and measurand."""
    measurands = [m.value for m in Measurand][:16]
    phases = [p.value for p in Phase]
    locations = [loc.value for loc in Location]
    sent = 0
    deadline = time.monotonic() + seconds
    for connector_id in range(1, connectors + 1):
        for measurand in measurands:
            values = [
                {"value": "1", "measurand": measurand, "phase": p, "location": loc}
                for p in phases
                for loc in locations
            ]
            await cp.call(
                call.MeterValues(
                    connector_id=connector_id,
                    meter_value=[{"timestamp": "2026-01-01T00:00:00Z", "sampledValue": values}],
                )
            )
            sent += len(values)
            if time.monotonic() > deadline:
                return sent
    return sent


async def drive(ocpp_port: int, mqtt_port: int, pid: int, args: Any) -> None:
    counts = Counts(mqtt_port)
    pub = Publisher(mqtt_port)
    url = f"ws://127.0.0.1:{ocpp_port}/ocpp"
    cp, reader = await station(url, "CP_1")
    await asyncio.sleep(1)
    rss_one_station = rss_mib(pid)
    logs = f"{NAME}/logs"

    # 1. One topic both ways.
    shared = "home/cp1/limit"
    pub.send(
        f"{NAME}/datapoint_map",
        {"sensor": {"CP_1__ChargingLimit__W": shared}, "actuator": {shared: LIMIT}},
        retain=True,
    )
    await asyncio.sleep(1)
    before, _ = counts.snapshot()
    calls_before = len(cp.calls("SetChargingProfile"))
    pub.command(shared, 11000)
    await asyncio.sleep(args.seconds)
    after, _ = counts.snapshot()
    print(
        f"1. one topic both ways, one command, {args.seconds:.0f} s: SetChargingProfile "
        f"calls {len(cp.calls('SetChargingProfile')) - calls_before}, messages on the "
        f"shared topic {delta(after, before, shared)}"
    )

    # 2. The connector's log topic as an actuator topic.
    pub.send(
        f"{NAME}/datapoint_map",
        {"actuator": {logs: LIMIT, "home/cp1/set": LIMIT}},
        retain=True,
    )
    await asyncio.sleep(1)
    before, before_bytes = counts.snapshot()
    pub.command("home/cp1/set", "not a number")
    await asyncio.sleep(args.seconds / 2)
    after, after_bytes = counts.snapshot()
    print(
        f"2. {logs} as actuator, one invalid command, {args.seconds / 2:.0f} s: "
        f"{delta(after, before, logs)} log messages "
        f"({delta(after_bytes, before_bytes, logs)} bytes)"
    )

    # 3. The same limit again and again.
    calls_before = len(cp.calls("SetChargingProfile"))
    repeats = int(args.seconds / 0.2)
    for _ in range(repeats):
        pub.command("home/cp1/set", 7000)
        await asyncio.sleep(0.2)
    await asyncio.sleep(1)
    print(
        f"3. the same limit {repeats} times: SetChargingProfile calls "
        f"{len(cp.calls('SetChargingProfile')) - calls_before}"
    )

    # 4. One station invents keys.
    flood, flood_reader = await station(url, "CP_FLOOD")
    before, before_bytes = counts.snapshot()
    available = f"{NAME}/available_datapoints"
    started = time.monotonic()
    sampled = await flood_keys(flood, 399, args.flood_seconds)
    flood_time = time.monotonic() - started
    await asyncio.sleep(6)  # the last available_datapoints goes out
    after, after_bytes = counts.snapshot()
    rss_after = rss_mib(pid)
    # The well-behaved station is still served.
    await cp.send_meter_values(1, 60)
    print(
        f"4. {sampled} sampled values with invented keys in {flood_time:.1f} s: "
        f"available_datapoints published {delta(after, before, available)} times, "
        f"{delta(after_bytes, before_bytes, available) / 1e6:.2f} MB in all, the largest "
        f"{counts.largest[available] / 1e6:.2f} MB; {delta(after, before, logs)} log messages"
    )
    print(
        f"   connector RSS: {rss_one_station:.1f} MiB with one station (baseline), "
        f"{rss_after:.1f} MiB after the flood ({rss_after / rss_one_station:.2f}x)"
    )
    for task in (reader, flood_reader):
        task.cancel()
    counts.client.loop_stop()
    pub.client.loop_stop()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--flood-seconds", type=float, default=43.0)
    args = parser.parse_args()
    ocpp_port = free_port()
    with mosquitto() as mqtt_port, connector(NAME, mqtt_port, ocpp_port) as process:
        asyncio.run(drive(ocpp_port, mqtt_port, process.pid, args))


if __name__ == "__main__":
    main()
