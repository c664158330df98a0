"""Benchmark: site budgets at scale (README "Sharing a supply").

A real Mosquitto, the connector as its own process, and N simulated 1.6
stations in G groups (N/G each), a session running on every one. Each round
publishes a new limit for every group at once; every connector's share
changes by more than 1 A. Printed: from the publish to each accepted profile
(p50, p99), from the publish to the last accepted profile of each group
(p50, p99, max; the target is p99 <= 2 s), whether every changed profile was
accepted, and the connector's CPU per group rebalance; then the CPU of the
pure allocation for one group.

    python bench/site_budgets.py --stations 1000 --groups 10 --rounds 4
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time
from typing import Any

import paho.mqtt.client as mqtt
from harness import connector, cpu_seconds, free_port, mosquitto, percentile, publish_retained
from paho.mqtt.enums import CallbackAPIVersion
from websockets.asyncio.client import connect
from websockets.typing import Subprotocol

# harness put source/ on the path.
from connector.core.allocation import Charging, allocate
from connector.core.groups import parse_groups
from connector.simulator.core import SimulatorOptions
from connector.simulator.v16 import SimulatedChargePoint

NAME = "bench-groups"
STEP = 69.0  # 0.1 A on three phases at 230 V


def share(group_limit: float, members: int) -> float:
    """What each of `members` sessions gets: equal, rounded down to 0.1 A."""
    return (group_limit / members // STEP) * STEP


class Accepted:
    """Every profile a station accepted: (cp id, limit in force, when)."""

    def __init__(self) -> None:
        self.events: list[tuple[str, float | None, float]] = []

    def __call__(self, station: Any) -> None:
        self.events.append((station.id, station.limit_w(1), time.monotonic()))


async def run_stations(
    url: str, ids: list[str], accepted: Accepted, ready: asyncio.Event, done: asyncio.Event
) -> None:
    connected = [0]

    async def one(cp_id: str) -> None:
        options = SimulatorOptions(meter_interval=0, voltage=230.0, on_profile=accepted)
        async with connect(
            f"{url}/{cp_id}", subprotocols=[Subprotocol("ocpp1.6")], ping_interval=None
        ) as ws:
            cp = SimulatedChargePoint(cp_id, ws, options)
            reader = asyncio.create_task(cp.start())
            await cp.boot()
            await cp.send_all_status()
            await asyncio.sleep(1)  # learned, and its default profile in
            await cp.start_transaction(1)
            connected[0] += 1
            if connected[0] == len(ids):
                ready.set()
            await done.wait()
            reader.cancel()

    await asyncio.gather(*(one(cp_id) for cp_id in ids))


async def drive(args: Any, ocpp_port: int, mqtt_port: int, pid: int) -> dict[str, Any]:
    per_group = args.stations // args.groups
    ids = [f"CP_{i}" for i in range(args.stations)]
    accepted = Accepted()
    ready, done = asyncio.Event(), asyncio.Event()
    stations = asyncio.create_task(
        run_stations(f"ws://127.0.0.1:{ocpp_port}/ocpp", ids, accepted, ready, done)
    )
    await asyncio.wait_for(ready.wait(), 300)
    initial = share(per_group * 7360.0, per_group)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        latest = {cp: w for cp, w, _ in accepted.events}
        if sum(1 for w in latest.values() if w == initial) == len(ids):
            break
        await asyncio.sleep(0.2)
    publisher = mqtt.Client(callback_api_version=CallbackAPIVersion.VERSION2)
    publisher.connect("127.0.0.1", mqtt_port)
    publisher.loop_start()
    per_profile: list[float] = []
    per_group_last: list[float] = []
    complete = 0
    cpu_start = cpu_seconds(pid)
    for round_ in range(args.rounds):
        each = (5000.0, 7000.0)[round_ % 2]
        value = each * per_group
        expected = share(value, per_group)
        mark = len(accepted.events)
        started = time.monotonic()
        for group in range(args.groups):
            message = json.dumps({"value": value, "timestamp": int(time.time() * 1000)})
            publisher.publish(f"{NAME}-cmd/g{group}", message, qos=1)
        deadline = started + 30
        while time.monotonic() < deadline:
            latest = {cp: w for cp, w, _ in accepted.events[mark:]}
            if len(latest) == len(ids) and all(w == expected for w in latest.values()):
                break
            await asyncio.sleep(0.05)
        arrived = {cp: t for cp, w, t in accepted.events[mark:] if w == expected}
        complete += len(arrived) == len(ids)
        per_profile += [t - started for t in arrived.values()]
        for group in range(args.groups):
            members = ids[group * per_group : (group + 1) * per_group]
            times = [arrived[cp] - started for cp in members if cp in arrived]
            if len(times) == len(members):
                per_group_last.append(max(times))
        await asyncio.sleep(1.5)  # the next limit is a new rebalance, not coalesced
    cpu = cpu_seconds(pid) - cpu_start
    publisher.loop_stop()
    done.set()
    await stations
    return {
        "per_profile": sorted(per_profile),
        "per_group_last": sorted(per_group_last),
        "complete": complete,
        "cpu": cpu,
    }


def pure_allocation_cpu(members: int, repeats: int = 200) -> float:
    """Median seconds of CPU for one group's allocation."""
    doc = {"g": {"max_w": members * 7360.0, "members": [f"CP_{i}" for i in range(members)]}}
    groups = parse_groups(json.dumps(doc))
    charging = {"g": [Charging((f"CP_{i}", 1), 3, float(i)) for i in range(members)]}
    times = []
    for _ in range(repeats):
        start = time.process_time()
        allocate(groups, {"g": members * 5000.0}, charging)
        times.append(time.process_time() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--stations", type=int, default=1000)
    parser.add_argument("--groups", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=4)
    args = parser.parse_args()
    per_group = args.stations // args.groups
    groups = {
        f"g{g}": {
            "max_w": per_group * 7360.0,
            "members": [f"CP_{i}" for i in range(g * per_group, (g + 1) * per_group)],
        }
        for g in range(args.groups)
    }
    mapping = {
        "sensor": {},
        "actuator": {
            f"{NAME}-cmd/g{g}": f"@g{g}__execute_set_group_limit" for g in range(args.groups)
        },
    }
    ocpp_port = free_port()
    with mosquitto() as mqtt_port:
        publish_retained(mqtt_port, f"{NAME}/datapoint_map", mapping)
        extra = {"OCPP_GROUPS": json.dumps(groups), "OCPP_VOLTAGE": "230"}
        with connector(NAME, mqtt_port, ocpp_port, extra) as process:
            result = asyncio.run(drive(args, ocpp_port, mqtt_port, process.pid))
    profiles, lasts = result["per_profile"], result["per_group_last"]
    rebalances = args.groups * args.rounds
    print(
        f"stations: {args.stations} in {args.groups} groups, sessions on all, "
        f"{args.rounds} rounds of a new limit for every group"
    )
    print(f"rounds with every changed profile accepted: {result['complete']} of {args.rounds}")
    print(
        f"publish -> each accepted profile: p50 {1000 * percentile(profiles, 50):.0f} ms, "
        f"p99 {1000 * percentile(profiles, 99):.0f} ms ({len(profiles)} profiles)"
    )
    if lasts:
        print(
            f"publish -> a group's last accepted profile: p50 {1000 * percentile(lasts, 50):.0f} "
            f"ms, p99 {1000 * percentile(lasts, 99):.0f} ms, max {1000 * lasts[-1]:.0f} ms "
            f"({len(lasts)} of {rebalances} group rebalances complete)"
        )
    print(
        f"connector CPU during the rounds: {result['cpu']:.2f} s, "
        f"{1000 * result['cpu'] / rebalances:.0f} ms per group rebalance "
        f"({per_group} profiles each, sent and answered)"
    )
    pure = pure_allocation_cpu(per_group)
    print(f"the allocation alone, {per_group} connectors: {1e6 * pure:.0f} us (median of 200)")


if __name__ == "__main__":
    main()
