"""Benchmark: the operator's HTTP server with many stations (README "Operations").

The connector, as deployed (its own process, HTTP on), with N stations
connected over raw WebSockets (each booted, with a status and meter values on
one connector) and a real Mosquitto. Then it times, with stations idle:
- `/status.json` for the first page, a middle page and a search (100 stations
  a page: what the status page asks every 2 s), the same request again and
  again (the server answers it from its cache of a second) and each request
  another one (computed anew);
- `/metrics` (what Prometheus scrapes);
- for comparison in the same run, `/healthz` (the server's own floor);
and prints the medians and p95 of R requests each, the response sizes, and
the connector's CPU per request.

    python bench/status_page.py --stations 3000 --requests 50
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time
import urllib.request
from typing import Any

from harness import Broker, connector, cpu_seconds, free_port, percentile
from websockets.asyncio.client import ClientConnection, connect

BOOT = '[2,"b","BootNotification",{"chargePointVendor":"Bench","chargePointModel":"Page"}]'
STATUS = '[2,"s","StatusNotification",{"connectorId":1,"errorCode":"NoError","status":"Charging"}]'
METER = (
    '[2,"m","MeterValues",{"connectorId":1,"meterValue":[{"timestamp":"2026-11-29T12:00:00Z",'
    '"sampledValue":[{"value":"1000","unit":"Wh"},'
    '{"value":"7200","measurand":"Power.Active.Import","unit":"W"}]}]}]'
)


async def station(url: str) -> ClientConnection:
    ws = await connect(url, subprotocols=["ocpp1.6"], ping_interval=None)  # type: ignore[list-item]
    for frame in (BOOT, STATUS, METER):
        await ws.send(frame)
        while True:
            answer = json.loads(await ws.recv())
            if answer[0] == 2:  # the connector's own calls
                await ws.send(json.dumps([3, answer[1], {"configurationKey": []}]))
            elif answer[1] == json.loads(frame)[1]:
                break
    return ws


async def answer_calls(ws: ClientConnection) -> None:
    async for raw in ws:
        frame = json.loads(raw)
        if frame[0] == 2:
            await ws.send(json.dumps([3, frame[1], {"status": "Accepted"}]))


def timed(port: int, path: str, count: int) -> tuple[list[float], int]:
    """`{n}` in the path: each request is another one (the server's cache of a
    second does not answer it)."""
    times, size = [], 0
    for n in range(count):
        started = time.perf_counter()
        url = f"http://127.0.0.1:{port}{path.format(n=n)}"
        with urllib.request.urlopen(url, timeout=30) as response:
            size = len(response.read())
        times.append(time.perf_counter() - started)
    return times, size


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--stations", type=int, default=3000)
    parser.add_argument("--requests", type=int, default=50)
    args = parser.parse_args()
    broker = Broker()
    broker.start()
    ocpp, http = free_port(), free_port()
    extra = {"HTTP_PORT": str(http), "HTTP_HOST": "127.0.0.1", "OCPP_BOOT_WAIT": "60"}
    try:
        with connector("bench-page", broker.port, ocpp, extra) as process:
            url = f"ws://127.0.0.1:{ocpp}/ocpp"
            sockets: list[ClientConnection] = []
            for start in range(0, args.stations, 100):
                batch = range(start, min(start + 100, args.stations))
                sockets += await asyncio.gather(*(station(f"{url}/CP_{i:05d}") for i in batch))
            readers = [asyncio.create_task(answer_calls(ws)) for ws in sockets]
            await asyncio.sleep(3)
            middle = max(1, args.stations // 200)
            rows: list[tuple[str, Any, int, float]] = []
            for label, path in (
                ("/healthz", "/healthz"),
                ("/status.json page 1", "/status.json?page=1"),
                (f"/status.json page {middle}", f"/status.json?page={middle}"),
                ("/status.json search 'CP_012'", "/status.json?q=CP_012"),
                ("/status.json, each asked anew", "/status.json?page=2&size={n}"),
                ("/status.json search, each anew", "/status.json?q=CP_0{n}"),
                ("/metrics", "/metrics"),
            ):
                before = cpu_seconds(process.pid)
                times, size = await asyncio.to_thread(timed, http, path, args.requests)
                cpu = (cpu_seconds(process.pid) - before) / args.requests
                rows.append((label, sorted(times), size, cpu))
            for reader in readers:
                reader.cancel()
            for ws in sockets:
                await ws.close()
    finally:
        broker.stop()
    print(f"{args.stations} stations connected; {args.requests} requests each, one at a time")
    print(f"{'':32} {'median':>9} {'p95':>9} {'bytes':>9} {'CPU/req':>9}")
    for label, times, size, cpu in rows:
        print(
            f"{label:32} {1000 * statistics.median(times):>7.1f}ms "
            f"{1000 * percentile(times, 95):>7.1f}ms {size:>9} {1000 * cpu:>7.1f}ms"
        )


if __name__ == "__main__":
    asyncio.run(main())
