"""Benchmark: the fast path with forwarding on (README "Keeping a station's own backend").

N stations (1,000 by default) send MeterValues once a second through the
connector, as deployed, on a real Mosquitto: bench/fast_path.py's load and
measures. The connector runs in turn, in the same run:
- `off`: no OCPP_UPSTREAM_URL;
- `on`: every station forwarded to its own backend, both hops: each
  MeterValues goes on to the backend, and the backend's answer back to the
  station. The backend is its own process: raw WebSockets, canned answers.
Printed side by side with the on/off ratio: the connector's CPU per
MeterValues, values on MQTT, the stations' round trips (through the
backend when on), RSS per station (with its backend connection when on);
and the frames the backend got. With --runs K each figure is the median.

    python bench/forwarding.py --stations 1000 --seconds 20 --runs 3
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import statistics
from datetime import UTC, datetime
from typing import Any

from fast_path import FRAMES, ROWS, run_target
from harness import Broker, cpu_seconds, free_port, wait_port
from websockets.asyncio.server import ServerConnection, serve


def _answer(frame: list[Any]) -> dict[str, Any]:
    action = frame[2]
    now = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    if action == "BootNotification":
        return {"status": "Accepted", "currentTime": now, "interval": 300}
    if action == "Heartbeat":
        return {"currentTime": now}
    return {}


async def _backend(port: int, counter: Any) -> None:
    async def station(ws: ServerConnection) -> None:
        async for raw in ws:
            frame = json.loads(raw)
            if frame[0] != 2:
                continue
            counter.value += 1
            await ws.send(json.dumps([3, frame[1], _answer(frame)], separators=(",", ":")))

    async with serve(
        station,
        "127.0.0.1",
        port,
        subprotocols=["ocpp1.6", "ocpp2.0.1", "ocpp2.1"],  # type: ignore[list-item]
        ping_interval=None,
        compression=None,
        backlog=4096,
    ):
        await asyncio.Future()


def backend_process(port: int, counter: Any) -> None:
    asyncio.run(_backend(port, counter))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--stations", type=int, default=1000)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--ramp", type=float, default=0.0, help="s to connect; default N/100")
    parser.add_argument("--warmup", type=float, default=5.0)
    parser.add_argument("--load-processes", type=int, default=2)
    parser.add_argument("--runs", type=int, default=1, help="runs of each, alternating")
    parser.add_argument("--ocpp", choices=sorted(FRAMES), default="1.6", help="stations' version")
    args = parser.parse_args()
    args.mapped_values, args.workers = 1, 1
    if not args.ramp:
        args.ramp = max(5.0, args.stations / 100)
    broker = Broker()
    broker.start()
    port = free_port()
    counter: Any = multiprocessing.Value("q", 0, lock=False)
    backend = multiprocessing.Process(target=backend_process, args=(port, counter), daemon=True)
    backend.start()
    wait_port(port, 30)
    url = f"ws://127.0.0.1:{port}/ocpp/{{cp}}"
    runs: dict[str, list[dict[str, Any]]] = {}
    backend_frames: list[int] = []
    backend_cpu: list[float] = []
    try:
        for _ in range(args.runs):
            runs.setdefault("off", []).append(run_target("connector", broker.port, args))
            before, cpu_before = counter.value, cpu_seconds(backend.pid)
            on = run_target("connector", broker.port, args, {"OCPP_UPSTREAM_URL": url})
            frames = counter.value - before
            backend_frames.append(frames)
            backend_cpu.append(1000 * (cpu_seconds(backend.pid) - cpu_before) / max(1, frames))
            runs.setdefault("on", []).append(on)
    finally:
        backend.terminate()
        broker.stop()
    medians = {
        kind: {key: statistics.median(run[key] for run in results) for key in results[0]}
        for kind, results in runs.items()
    }
    off, on = medians["off"], medians["on"]
    print(
        f"stations (OCPP {args.ocpp}): {args.stations} x 1 Hz, {args.seconds:.0f} s measured, "
        f"median of {args.runs} run(s) each; forwarding on: every station to its backend"
    )
    print(f"{'':42} {'off':>14} {'on':>14} {'ratio':>7}")
    for label, key, fmt, ratio in ROWS:
        cells = [fmt.format(off[key]), fmt.format(on[key])]
        r = f"{on[key] / off[key]:.2f}" if ratio and off[key] else ""
        print(f"{label:42} {cells[0]:>14} {cells[1]:>14} {r:>7}")
    print(
        f"frames the backend got while on (whole run, boots included): "
        f"{statistics.median(backend_frames):.0f}; its CPU per frame "
        f"{statistics.median(backend_cpu):.3f} ms"
    )
    for kind, m in medians.items():
        before, connected = m["rss_before"], m["rss_connected"]
        print(f"{kind}: RSS {before:.1f} MiB before, {connected:.1f} MiB with stations")


if __name__ == "__main__":
    main()
