"""Benchmark: how long a kill -9 of one of three instances takes to heal.

Three connector instances behind HAProxy (deploy/haproxy.cfg) on a real
Mosquitto; N simulated stations connect through HAProxy, each gets a limit
from MQTT, then the instance holding the most stations is killed with
SIGKILL. Printed: from the kill until every one of its stations is connected
to another instance with its limit in force again (the station received the
SetChargingProfile), as median and max over --runs runs.

    python bench/instances.py --stations 300 --runs 3
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "source"))

from harness import Broker  # noqa: E402

from connector.tests.helpers import Probe  # noqa: E402
from connector.tests.test_instances import (  # noqa: E402
    LIMIT,
    Site,
    Station,
    holders,
    ports_open,
)


async def one_run(broker: Any, stations: int) -> float:
    """`broker`: anything with the broker's `port`."""
    name = f"bench-inst-{uuid.uuid4().hex[:6]}"
    site = Site(broker, name)
    probe = Probe(broker.port, name)
    ids = [f"CP_{i}" for i in range(stations)]
    site.start_all()
    running: dict[str, Station] = {}
    try:
        probe.map(actuators=[LIMIT.format(cp=cp) for cp in ids])
        await ports_open(site)
        running = {cp: Station(site.url(cp), cp) for cp in ids}
        for station in running.values():
            await asyncio.wait_for(station.connected.wait(), 60)
        for cp in ids:
            probe.command(probe.actuator_topic(LIMIT.format(cp=cp)), 6000)
        deadline = time.monotonic() + 60
        while not all(s.sim.limit_w(1) == 6000 for s in running.values()):
            if time.monotonic() > deadline:
                raise RuntimeError("limits not in force before the kill")
            await asyncio.sleep(0.05)
        owners = await holders(probe, name, ids)
        counts: dict[int, int] = {}
        for instance in owners.values():
            counts[instance] = counts.get(instance, 0) + 1
        victim = max(counts, key=lambda n: counts[n])
        moved = [cp for cp, n in owners.items() if n == victim]
        connections = {cp: len(running[cp].sims) for cp in moved}
        killed = time.monotonic()
        site.kill(victim)
        while not all(
            len(running[cp].sims) > connections[cp] and running[cp].sim.limit_w(1) == 6000
            for cp in moved
        ):
            if time.monotonic() - killed > 120:
                raise RuntimeError("not healed within 120 s")
            await asyncio.sleep(0.02)
        healed = time.monotonic() - killed
        print(f"  killed instance {victim} holding {len(moved)} stations: healed in {healed:.2f} s")
        return healed
    finally:
        for station in running.values():
            await station.close()
        probe.close()
        site.stop()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--stations", type=int, default=300)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    broker = Broker()
    broker.start()
    try:
        times = [asyncio.run(one_run(broker, args.stations)) for _ in range(args.runs)]
    finally:
        broker.stop()
    print(
        json.dumps(
            {
                "stations": args.stations,
                "runs": args.runs,
                "heal_median_s": round(statistics.median(times), 2),
                "heal_max_s": round(max(times), 2),
            }
        )
    )


if __name__ == "__main__":
    main()
