"""Benchmark: the connector against a bare passthrough, same load, same run.

N stations send MeterValues (4 sampled values) once a second through a real
Mosquitto, first to bench/passthrough.py, then to the connector (as deployed,
its own process, default settings). Each station's energy value is mapped, so
both publish one value per MeterValues (--mapped-values 4 maps all four on the
connector; the latency is then still measured on the energy value). The load comes from separate
processes that send pre-built frames over raw WebSockets and answer the
connector's calls, so the generator costs far less than what it measures.

Printed side by side, with the connector/passthrough ratio:
- MeterValues sent in the window, and values the MQTT subscriber received;
- CPU per MeterValues (the target process's user+system time / frames);
- RSS per connected station ((RSS with N stations - RSS before) / N);
- latency from the sample's timestamp to the subscriber, p50/p99;
- the station's round trip (frame sent -> CALLRESULT), p50/p99;
- for the connector: a limit published on MQTT -> the station receives
  SetChargingProfile, p50/p99, for 100 stations during the window;
- the load generator's own CPU per MeterValues, to show it costs less than
  what it measures.
With --runs K the targets take turns K times, and each figure is the median.

    python bench/fast_path.py --stations 1500 --seconds 20 --runs 3
    python bench/fast_path.py --stations 1500 --seconds 20 --runs 3 --ocpp 2.0.1

--workers N runs the connector with OCPP_WORKERS=N (CPU and RSS are summed
over its processes). --ocpp 2.0.1 (or 2.1) runs the same load as OCPP 2.x stations: the same four
readings in 2.x's MeterValues (numbers, unitOfMeasure), mapped to the same keys.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from datetime import UTC, datetime
from typing import Any

import paho.mqtt.client as mqtt
from harness import (
    ROOT,
    Broker,
    connector_env,
    cpu_seconds,
    free_port,
    percentile,
    publish_retained,
    rss_mib,
    subscriber,
    wait_port,
)
from paho.mqtt.enums import CallbackAPIVersion
from websockets.asyncio.client import ClientConnection, connect

NAME = "bench-fast"
VALUES = "bench-fast-values"
COMMANDS = "bench-fast-cmd"
OTHERS_TOPIC = "bench-fast-others"
ENERGY = "{cp}__MeterValues__1__Energy.Active.Import.Register__Wh"
# The other three sampled values, mapped with --mapped-values 4.
OTHERS = (
    "{cp}__MeterValues__1__Power.Active.Import__W",
    "{cp}__MeterValues__1__Current.Import__L1__A",
    "{cp}__MeterValues__1__Voltage__L1-N__V",
)
LIMIT = "{cp}__execute_send_charging_profile"
COMMANDED_STATIONS = 100
METER = (
    '[2,"{id}","MeterValues",{{"connectorId":1,"meterValue":[{{"timestamp":"{ts}",'
    '"sampledValue":[{{"value":"{wh}","unit":"Wh"}},'
    '{{"value":"7200","measurand":"Power.Active.Import","unit":"W"}},'
    '{{"value":"10.4","measurand":"Current.Import","phase":"L1","unit":"A"}},'
    '{{"value":"230.1","measurand":"Voltage","phase":"L1-N","unit":"V"}}]}}]}}]'
)
BOOT = '[2,"b","BootNotification",{"chargePointVendor":"Bench","chargePointModel":"Fast"}]'
METER_V2 = (
    '[2,"{id}","MeterValues",{{"evseId":1,"meterValue":[{{"timestamp":"{ts}",'
    '"sampledValue":[{{"value":{wh},"unitOfMeasure":{{"unit":"Wh"}}}},'
    '{{"value":7200,"measurand":"Power.Active.Import","unitOfMeasure":{{"unit":"W"}}}},'
    '{{"value":10.4,"measurand":"Current.Import","phase":"L1","unitOfMeasure":{{"unit":"A"}}}},'
    '{{"value":230.1,"measurand":"Voltage","phase":"L1-N","unitOfMeasure":{{"unit":"V"}}}}]}}]}}]'
)
BOOT_V2 = (
    '[2,"b","BootNotification",{"chargingStation":{"vendorName":"Bench","model":"Fast"},'
    '"reason":"PowerUp"}]'
)
# The targets that are a connector: this checkout's, and another's (--baseline).
CONNECTORS = ("connector", "baseline")
BASELINE_ROOT: str | None = None
# Set in each load process from --ocpp.
FRAMES = {"1.6": (BOOT, METER), "2.0.1": (BOOT_V2, METER_V2), "2.1": (BOOT_V2, METER_V2)}


# ---- load generator (its own processes) -------------------------------------


class LoadStation:
    """A station that needs no ocpp library: pre-built frames, canned answers."""

    def __init__(
        self, ws: ClientConnection, cp_id: str, window: tuple[float, float], meter: str = METER
    ) -> None:
        self.meter = meter
        self.ws = ws
        self.cp_id = cp_id
        self.window = window
        self.pending: dict[str, tuple[float, asyncio.Future[None]]] = {}
        self.rtts: list[float] = []
        self.sent_in_window = 0
        self.profiles: list[float] = []  # wall time each SetChargingProfile arrived
        self.seq = 0
        self.wh = 1000

    async def read(self) -> None:
        async for raw in self.ws:
            frame = json.loads(raw)
            if frame[0] == 3 or frame[0] == 4:
                entry = self.pending.pop(frame[1], None)
                if entry is not None:
                    sent, future = entry
                    if self.window[0] <= sent <= self.window[1]:
                        self.rtts.append(time.time() - sent)
                    if not future.done():
                        future.set_result(None)
            elif frame[0] == 2:
                action = frame[2]
                if action == "GetConfiguration":
                    answer: dict[str, Any] = {"configurationKey": [], "unknownKey": []}
                elif action == "GetVariables":
                    answer = {
                        "getVariableResult": [
                            {**item, "attributeStatus": "UnknownVariable"}
                            for item in frame[3]["getVariableData"]
                        ]
                    }
                else:
                    answer = {"status": "Accepted"}
                    if action == "SetChargingProfile":
                        self.profiles.append(time.time())
                await self.ws.send(json.dumps([3, frame[1], answer]))

    async def call(self, unique_id: str, frame: str) -> asyncio.Future[None]:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        sent = time.time()
        self.pending[unique_id] = (sent, future)
        await self.ws.send(frame)
        return future

    async def tick(self) -> None:
        self.seq += 1
        self.wh += 2
        unique_id = f"m{self.seq}"
        # One reading of the clock for the sample's timestamp and the window,
        # so the subscriber's count (by timestamp) matches this one.
        stamp = datetime.now(UTC)
        if self.window[0] <= int(stamp.timestamp() * 1000) / 1000 <= self.window[1]:
            self.sent_in_window += 1
        ts = stamp.isoformat(timespec="milliseconds").replace("+00:00", "Z")
        await self.call(unique_id, self.meter.format(id=unique_id, ts=ts, wh=self.wh))


async def _load(
    url: str, ids: list[str], connect_by: float, window: tuple[float, float], version: str
) -> dict[str, Any]:
    boot, meter = FRAMES[version]
    stations: list[LoadStation] = []
    readers: list[asyncio.Task[None]] = []
    spacing = max(0.0, (connect_by - time.time() - 2) / max(1, len(ids)))
    for cp_id in ids:
        ws = await connect(
            f"{url}/{cp_id}",
            subprotocols=[f"ocpp{version}"],  # type: ignore[list-item]
            ping_interval=None,
        )
        station = LoadStation(ws, cp_id, window, meter)
        readers.append(asyncio.create_task(station.read()))
        await asyncio.wait_for(await station.call("b", boot), 60)
        stations.append(station)
        await asyncio.sleep(spacing)

    async def ticking(station: LoadStation, offset: float) -> None:
        next_at = max(time.time(), connect_by) + offset
        while next_at < window[1]:
            await asyncio.sleep(max(0.0, next_at - time.time()))
            await station.tick()
            next_at += 1.0

    count = len(stations)
    await asyncio.gather(*(ticking(s, i / count) for i, s in enumerate(stations)))
    await asyncio.sleep(2)  # the last answers
    for reader in readers:
        reader.cancel()
    for station in stations:
        await station.ws.close()
    return {
        "sent": sum(s.sent_in_window for s in stations),
        "rtts": [r for s in stations for r in s.rtts],
        "profiles": {s.cp_id: s.profiles for s in stations if s.profiles},
        "unanswered": sum(
            1 for s in stations for sent, _ in s.pending.values() if sent <= window[1]
        ),
    }


def load_process(
    url: str,
    ids: list[str],
    connect_by: float,
    window: tuple[float, float],
    version: str,
    out: Any,
) -> None:
    out.put(asyncio.run(_load(url, ids, connect_by, window, version)))


# ---- measuring --------------------------------------------------------------


class Subscriber:
    def __init__(self, port: int, window: tuple[float, float]) -> None:
        self.window = window
        self.latencies: list[float] = []
        self.received = 0
        self._lock = threading.Lock()
        self.client = subscriber(port, f"{VALUES}/#", self._on_message)

    def _on_message(self, client: object, userdata: object, message: mqtt.MQTTMessage) -> None:
        now = time.time()
        if message.retain:
            return
        sample = json.loads(message.payload)["timestamp"] / 1000
        if self.window[0] <= sample <= self.window[1]:
            with self._lock:
                self.received += 1
                self.latencies.append(now - sample)


def start_target(
    kind: str,
    ocpp_port: int,
    mqtt_port: int,
    name: str,
    workers: int = 1,
    extra: dict[str, str] | None = None,
) -> subprocess.Popen[bytes]:
    """`extra`: more of the connector's environment (bench/forwarding.py)."""
    if kind == "passthrough":
        command = [
            sys.executable,
            "bench/passthrough.py",
            "--ocpp-port",
            str(ocpp_port),
            "--mqtt-port",
            str(mqtt_port),
            "--topic",
            VALUES,
        ]
        env = dict(os.environ)
    else:
        command = [sys.executable, "source/connector/main.py"]
        env = {
            **connector_env(name, mqtt_port, ocpp_port),
            "OCPP_WORKERS": str(workers),
            **(extra or {}),
        }
    # Its log, to look at after a run that went wrong.
    log_file = open(f"{tempfile.gettempdir()}/bench-fast-{kind}.log", "w")
    # `baseline`: the connector of another checkout (--baseline), as deployed.
    cwd = BASELINE_ROOT if kind == "baseline" and BASELINE_ROOT else ROOT
    process = subprocess.Popen(command, cwd=cwd, env=env, stderr=log_file)
    wait_port(ocpp_port, 30)
    return process


def run_target(
    kind: str, mqtt_port: int, args: Any, extra: dict[str, str] | None = None
) -> dict[str, Any]:
    ocpp_port = free_port()
    ids = [f"CP_{i}" for i in range(args.stations)]
    # A name of its own per run: no limits kept on the broker by an earlier run.
    name = f"{NAME}-{uuid.uuid4().hex[:6]}"
    if kind in CONNECTORS:
        publish_retained(
            mqtt_port,
            f"{name}/datapoint_map",
            {
                "sensor": {
                    **{ENERGY.format(cp=cp): f"{VALUES}/{cp}" for cp in ids},
                    **{
                        key.format(cp=cp): f"{OTHERS_TOPIC}/{cp}/{index}"
                        for cp in ids
                        for index, key in enumerate(OTHERS[: args.mapped_values - 1])
                    },
                },
                "actuator": {f"{COMMANDS}/{cp}": LIMIT.format(cp=cp) for cp in ids},
            },
        )
    process = start_target(kind, ocpp_port, mqtt_port, name, args.workers, extra)
    time.sleep(1)
    rss_before = rss_mib(process.pid)
    connect_by = time.time() + args.ramp
    window = (connect_by + args.warmup, connect_by + args.warmup + args.seconds)
    sub = Subscriber(mqtt_port, window)
    out: Any = multiprocessing.Queue()
    slices = [ids[i :: args.load_processes] for i in range(args.load_processes)]
    loaders = [
        multiprocessing.Process(
            target=load_process,
            args=(f"ws://127.0.0.1:{ocpp_port}/ocpp", part, connect_by, window, args.ocpp, out),
        )
        for part in slices
    ]
    for loader in loaders:
        loader.start()
    time.sleep(max(0.0, window[0] - time.time()))
    rss_connected = rss_mib(process.pid)
    cpu_start = cpu_seconds(process.pid)
    load_cpu_start = sum(cpu_seconds(loader.pid) for loader in loaders if loader.pid)
    commanded: dict[str, float] = {}
    if kind in CONNECTORS:
        publisher = mqtt.Client(callback_api_version=CallbackAPIVersion.VERSION2)
        publisher.connect("127.0.0.1", mqtt_port)
        publisher.loop_start()
        time.sleep(min(5.0, args.seconds / 4))
        step = ids[:: max(1, len(ids) // COMMANDED_STATIONS)][:COMMANDED_STATIONS]
        for cp in step:
            commanded[cp] = time.time()
            message = json.dumps({"value": 7000, "timestamp": int(time.time() * 1000)})
            publisher.publish(f"{COMMANDS}/{cp}", message, qos=1)
            time.sleep(0.05)
        publisher.loop_stop()
    time.sleep(max(0.0, window[1] - time.time()))
    cpu = cpu_seconds(process.pid) - cpu_start
    load_cpu = sum(cpu_seconds(loader.pid) for loader in loaders if loader.pid) - load_cpu_start
    results = [out.get(timeout=120) for _ in loaders]
    for loader in loaders:
        loader.join(30)
    time.sleep(1)
    sub.client.loop_stop()
    process.terminate()
    process.wait(30)
    sent = sum(r["sent"] for r in results)
    profiles: dict[str, list[float]] = {}
    for r in results:
        profiles.update(r["profiles"])
    command_latencies = sorted(
        min(t for t in profiles[cp] if t >= at) - at
        for cp, at in commanded.items()
        if any(t >= at for t in profiles.get(cp, []))
    )
    latency, rtt = sorted(sub.latencies), sorted(t for r in results for t in r["rtts"])
    summary = {
        "sent": sent,
        "received": sub.received,
        "unanswered": sum(r["unanswered"] for r in results),
        "cpu_ms": 1000 * cpu / max(1, sent),
        "cpu_share": cpu / args.seconds,
        "load_cpu_ms": 1000 * load_cpu / max(1, sent),
        "rss_kb": 1024 * (rss_connected - rss_before) / args.stations,
        "rss_before": rss_before,
        "rss_connected": rss_connected,
        "latency_p50": 1000 * percentile(latency, 50),
        "latency_p99": 1000 * percentile(latency, 99),
        "rtt_p50": 1000 * percentile(rtt, 50),
        "rtt_p99": 1000 * percentile(rtt, 99),
    }
    if commanded:
        summary |= {
            "command_p50": 1000 * percentile(command_latencies, 50),
            "command_p99": 1000 * percentile(command_latencies, 99),
            "commands_arrived": len(command_latencies),
            "commands_sent": len(commanded),
        }
    return summary


ROWS = [
    ("MeterValues sent in the window", "sent", "{:.0f}", False),
    ("values received by the subscriber", "received", "{:.0f}", False),
    ("frames unanswered", "unanswered", "{:.0f}", False),
    ("CPU per MeterValues (ms)", "cpu_ms", "{:.3f}", True),
    ("CPU (share of one core)", "cpu_share", "{:.0%}", True),
    ("RSS per station (KB)", "rss_kb", "{:.1f}", True),
    ("sample -> subscriber p50 (ms)", "latency_p50", "{:.0f}", True),
    ("sample -> subscriber p99 (ms)", "latency_p99", "{:.0f}", True),
    ("station round trip p50 (ms)", "rtt_p50", "{:.0f}", True),
    ("station round trip p99 (ms)", "rtt_p99", "{:.0f}", True),
    ("load generator CPU per MeterValues (ms)", "load_cpu_ms", "{:.3f}", False),
]


def report(args: Any, runs: dict[str, list[dict[str, Any]]]) -> None:
    """Each figure is the median over the runs of that target."""
    medians = {
        kind: {key: statistics.median(run[key] for run in results) for key in results[0]}
        for kind, results in runs.items()
    }
    p, c = medians.get("passthrough"), medians.get("connector")
    print(
        f"stations (OCPP {args.ocpp}): {args.stations} x 1 Hz, {args.seconds:.0f} s measured, "
        f"median of {args.runs} run(s) per target"
    )
    print(f"{'':42} {'passthrough':>14} {'connector':>14} {'ratio':>7}")
    for label, key, fmt, ratio in ROWS:
        pv = p[key] if p else None
        cv = c[key] if c else None
        cells = [fmt.format(v) if v is not None else "-" for v in (pv, cv)]
        r = f"{cv / pv:.2f}" if ratio and pv and cv is not None else ""
        print(f"{label:42} {cells[0]:>14} {cells[1]:>14} {r:>7}")
    if c is not None and "command_p50" in c:
        print(
            f"limit published -> SetChargingProfile at the station: "
            f"p50 {c['command_p50']:.0f} ms, p99 {c['command_p99']:.0f} ms "
            f"({c['commands_arrived']:.0f} of {c['commands_sent']:.0f} arrived)"
        )
    b = medians.get("baseline")
    if b is not None:
        print(f"against --baseline {args.baseline}, in the same run:")
        print(f"{'':42} {'baseline':>14} {'connector':>14} {'ratio':>7}")
        for label, key, fmt, ratio in ROWS:
            if not ratio:
                continue
            bv, cv = b[key], c[key] if c else None
            cells = [fmt.format(bv), fmt.format(cv) if cv is not None else "-"]
            r = f"{cv / bv:.2f}" if bv and cv is not None else ""
            print(f"{label:42} {cells[0]:>14} {cells[1]:>14} {r:>7}")
    for kind, m in medians.items():
        print(
            f"{kind} RSS: {m['rss_before']:.1f} MiB before, "
            f"{m['rss_connected']:.1f} MiB with stations"
        )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--stations", type=int, default=1500)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--ramp", type=float, default=0.0, help="s to connect; default N/100")
    parser.add_argument("--warmup", type=float, default=5.0)
    parser.add_argument("--load-processes", type=int, default=2)
    parser.add_argument("--targets", default="passthrough,connector")
    parser.add_argument("--runs", type=int, default=1, help="runs per target, alternating")
    parser.add_argument(
        "--mapped-values",
        type=int,
        choices=[1, 4],
        default=1,
        help="sampled values the connector publishes per MeterValues (the passthrough: 1)",
    )
    parser.add_argument("--workers", type=int, default=1, help="OCPP_WORKERS of the connector")
    parser.add_argument("--ocpp", choices=sorted(FRAMES), default="1.6", help="stations' version")
    parser.add_argument(
        "--baseline",
        help="another checkout (an earlier version): its connector runs as target `baseline`, "
        "in turn with the others, e.g. --targets passthrough,baseline,connector",
    )
    args = parser.parse_args()
    global BASELINE_ROOT
    BASELINE_ROOT = args.baseline
    if not args.ramp:
        args.ramp = max(5.0, args.stations / 100)
    broker = Broker()
    broker.start()
    runs: dict[str, list[dict[str, Any]]] = {}
    try:
        for _ in range(args.runs):
            for kind in args.targets.split(","):
                runs.setdefault(kind, []).append(run_target(kind, broker.port, args))
    finally:
        broker.stop()
    report(args, runs)


if __name__ == "__main__":
    main()
