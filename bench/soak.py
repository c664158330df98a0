"""Soak: N stations for T minutes against a real Mosquitto, with faults injected.

The connector runs as its own process. Each station sends MeterValues with a
rising energy register; a subscriber with a persistent session counts what
reaches the mapped topics. Faults, all the while:
- Mosquitto is stopped for a few seconds and started again, every minute or so;
- stations drop their connection and come back;
- stations send garbage frames (bad JSON, wrong types, unknown actions, binary).

Printed: MeterValues sent (answered by the connector), values delivered, lost,
the faults injected, and the connector's RSS at the start and at the end.

    python bench/soak.py --stations 200 --minutes 10
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import random
import threading
import time

import paho.mqtt.client as mqtt
from harness import Broker, connector, free_port, publish_retained, rss_mib, subscriber
from websockets.asyncio.client import connect

from connector.simulator.core import SimulatorOptions
from connector.simulator.v16 import SimulatedChargePoint

NAME = "soak"
GARBAGE = [
    "not json",
    "[2,",
    '[2,"g1","Heartbeat",[]]',
    '[2,"g2","FlyToTheMoon",{}]',
    '[2,"g3","BootNotification",{"chargePointVendor":5}]',
    '[9,"g4"]',
    "{}",
    '[3,"nobody-asked",{}]',
    "[" * 3000,
]


class Counter:
    """Subscriber with a persistent session: unique (station, value) pairs delivered."""

    def __init__(self, port: int) -> None:
        self.delivered: set[tuple[str, float]] = set()
        self._lock = threading.Lock()
        self.client = subscriber(port, "soak-values/#", self._on_message, session="soak-counter")

    def _on_message(self, client: object, userdata: object, message: mqtt.MQTTMessage) -> None:
        cp_id = message.topic.rsplit("/", 1)[-1]
        value = json.loads(message.payload)["value"]
        with self._lock:
            self.delivered.add((cp_id, value))

    def count(self) -> int:
        with self._lock:
            return len(self.delivered)


class Tally:
    def __init__(self) -> None:
        self.sent: set[tuple[str, float]] = set()
        self.disconnects = 0
        self.garbage = 0
        self.broker_restarts = 0


async def station(
    url: str, cp_id: str, stop_at: float, interval: float, tally: Tally, rng: random.Random
) -> None:
    energy = 0.0
    while time.monotonic() < stop_at:
        try:
            async with connect(url, subprotocols=["ocpp1.6"], ping_interval=None) as ws:  # type: ignore[list-item]
                cp = SimulatedChargePoint(cp_id, ws, SimulatorOptions(meter_interval=0))
                cp.energy_wh = energy
                reader = asyncio.create_task(cp.start())
                try:
                    await cp.boot()
                    await cp.send_all_status()
                    while time.monotonic() < stop_at:
                        await asyncio.sleep(interval * rng.uniform(0.8, 1.2))
                        if rng.random() < 0.01:
                            tally.disconnects += 1
                            break  # drop the connection, come back
                        if rng.random() < 0.02:
                            tally.garbage += 1
                            await ws.send(rng.choice(GARBAGE))
                        await cp.send_meter_values(1, interval)
                        energy = cp.energy_wh
                        tally.sent.add((cp_id, round(energy, 1)))
                finally:
                    reader.cancel()
        except Exception:
            await asyncio.sleep(1)  # the connection broke mid-call; come back


async def faults(broker: Broker, stop_at: float, tally: Tally) -> None:
    while time.monotonic() < stop_at - 60:
        await asyncio.sleep(60)
        broker.stop()
        await asyncio.sleep(5)
        broker.start()
        tally.broker_restarts += 1


async def drive(ocpp_port: int, broker: Broker, args: argparse.Namespace, tally: Tally) -> None:
    stop_at = time.monotonic() + args.minutes * 60
    rng = random.Random(7)
    tasks = []
    for i in range(args.stations):
        url = f"ws://127.0.0.1:{ocpp_port}/CP_{i}"
        seed = random.Random(rng.random())
        tasks.append(
            asyncio.create_task(station(url, f"CP_{i}", stop_at, args.interval, tally, seed))
        )
        await asyncio.sleep(args.interval / args.stations)
    await asyncio.gather(faults(broker, stop_at, tally), *tasks)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--stations", type=int, default=200)
    parser.add_argument("--minutes", type=float, default=10)
    parser.add_argument("--interval", type=float, default=5.0, help="s between MeterValues")
    args = parser.parse_args()
    # The simulated stations' library logs every answer to a garbage frame.
    logging.getLogger("ocpp").setLevel(logging.CRITICAL)

    broker = Broker(persistent=True)
    broker.start()
    mapping = {
        "sensor": {
            f"CP_{i}__MeterValues__1__Energy.Active.Import.Register__Wh": f"soak-values/CP_{i}"
            for i in range(args.stations)
        },
        "actuator": {},
    }
    publish_retained(broker.port, f"{NAME}/datapoint_map", mapping)
    counter = Counter(broker.port)
    tally = Tally()
    ocpp_port = free_port()
    try:
        with connector(NAME, broker.port, ocpp_port) as process:
            time.sleep(1)
            rss_start = rss_mib(process.pid)
            asyncio.run(drive(ocpp_port, broker, args, tally))
            deadline = time.monotonic() + 60
            while counter.count() < len(tally.sent) and time.monotonic() < deadline:
                time.sleep(0.5)
            rss_end = rss_mib(process.pid)
            alive = process.poll() is None
    finally:
        counter.client.loop_stop()
        broker.stop()

    delivered = tally.sent & counter.delivered
    print(f"stations: {args.stations}, minutes: {args.minutes:g}, interval: {args.interval:g} s")
    print(
        f"faults: {tally.broker_restarts} broker restarts, {tally.disconnects} station "
        f"disconnects, {tally.garbage} garbage frames"
    )
    print(
        f"MeterValues sent: {len(tally.sent)}, delivered: {len(delivered)}, "
        f"lost: {len(tally.sent) - len(delivered)}"
    )
    print(f"connector alive at the end: {alive}")
    print(f"connector RSS: {rss_start:.1f} MiB at the start, {rss_end:.1f} MiB at the end")


if __name__ == "__main__":
    main()
