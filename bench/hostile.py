"""Benchmark: the hostile inputs of issue 17, one at a time, against the connector.

Each input gets a fresh connector process (its own CONNECTOR_NAME) on a real
Mosquitto with default settings, and one well-behaved *bystander* station: it
boots, answers the connector's calls and sends a Heartbeat every 0.2 s, timing
each round trip. The bystander runs in a process of its own, so the work of the
hostile input in this script never shows up in its round trips. The inputs:

 1. an OCPP 2.0.1 MeterValues with a multiplier of 10^7, 1e308 kWh and a
    400-digit integer beside one plain value;
 2. 10 stations' MeterValues every 0.2 s with SEND_RAW_MESSAGE_TO_DB=TRUE while
    Mosquitto (persistent) is down for 6 s;
 3. a BootNotification flood, 50 in flight, from a station that never answers;
 4. 5,000 commands on MQTT for a station that never answers;
 5. one limit for each of --stations stations in one burst, then a restart of
    the connector and all stations reconnecting at once;
 6. 200 OCPP 2.0.1 boots whose customData holds a 60,000-character name;
 7. a forged `offline` of a running instance, and a forged (retained) claim of
    a station;
 8. a retained last transaction id of 2^31 - 1;
 9. a configuration key `Vendor#Key`, a component `a+b` and a value `1e999`;
10. the ids `CP1` and `CP1_`;
11. a retained Reset on a mapped actuator topic across two broker restarts;
12. an AuthorizationKey in a station's configuration.

Printed, one row per input: the bystander's longest and median Heartbeat round
trip while the input ran, the connector's RSS before the input, at its end and
5 s after the hostile station left, and what was lost or what happened. The
connectors' logs stay in the directory printed at the top.

    python bench/hostile.py
    python bench/hostile.py --only 3,5 --stations 3000 --flood-seconds 20
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import platform
import random
import shlex
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any, NamedTuple
from urllib.parse import quote

import paho.mqtt.client as mqtt
from harness import (
    ROOT,
    Broker,
    connector_env,
    free_port,
    percentile,
    publish_retained,
    rss_mib,
    subscriber,
    wait_port,
)
from paho.mqtt.enums import CallbackAPIVersion
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus

CALL, CALLRESULT, CALLERROR = 2, 3, 4
BOOT = {
    "1.6": {"chargePointVendor": "Bench", "chargePointModel": "Hostile"},
    "2.0.1": {"chargingStation": {"model": "m", "vendorName": "v"}, "reason": "PowerUp"},
}
HEARTBEAT_EVERY = 0.2
AFTER_LEFT = 5.0  # s between the hostile station leaving and the last RSS reading
INT32_MAX = 2147483647
SECRET = "0123456789abcdef"
# Spawned, not forked: this process runs paho's threads.
SPAWN = multiprocessing.get_context("spawn")


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def now_ms() -> int:
    return int(time.time() * 1000)


def strict_json(payload: bytes | None) -> bool:
    """Whether a strict reader takes it: no Infinity, no NaN."""

    def refuse(constant: str) -> Any:
        raise ValueError(constant)

    if payload is None:
        return False
    try:
        json.loads(payload, parse_constant=refuse)
    except ValueError:
        return False
    return True


async def wait_until(check: Callable[[], bool], timeout: float, step: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(step)
    return True


def yes(flag: bool) -> str:
    return "yes" if flag else "NO"


def kind(frame: list[Any] | None) -> str:
    """What an answer frame is: CALLRESULT, CALLERROR, or no answer (closed first)."""
    names = {CALLRESULT: "CALLRESULT", CALLERROR: "CALLERROR"}
    return names.get(frame[0], repr(frame[0])) if frame else "no answer"


# ---- stations over raw WebSockets ---------------------------------------------


def plausible_answer(action: str, payload: dict[str, Any]) -> dict[str, Any]:
    if action == "GetConfiguration":
        return {"configurationKey": []}
    if action == "GetVariables":
        return {
            "getVariableResult": [
                {**item, "attributeStatus": "UnknownVariable"}
                for item in payload.get("getVariableData", [])
            ]
        }
    if action == "SetVariables":
        return {
            "setVariableResult": [
                {
                    "component": item.get("component"),
                    "variable": item.get("variable"),
                    "attributeStatus": "Accepted",
                }
                for item in payload.get("setVariableData", [])
            ]
        }
    return {"status": "Accepted"}


class Call(NamedTuple):
    at: float  # wall clock, comparable across processes
    action: str
    payload: Any


class RawStation:
    """An OCPP-J station without the ocpp library: canned answers, its own calls.

    A call's future resolves to the answer frame, or to None when the
    connection closed first."""

    def __init__(
        self,
        ws: ClientConnection,
        answers: dict[str, dict[str, Any]] | None = None,
        silent: bool = False,
        calls: list[Call] | None = None,
    ) -> None:
        self.ws = ws
        self.answers = answers or {}
        self.silent = silent
        self.calls: list[Call] = [] if calls is None else calls
        self.pending: dict[str, asyncio.Future[list[Any] | None]] = {}
        self.sequence = 0
        self.reader = asyncio.create_task(self._read())

    @property
    def open(self) -> bool:
        return not self.reader.done()

    def count(self, action: str) -> int:
        return sum(1 for c in self.calls if c.action == action)

    async def _read(self) -> None:
        try:
            async for raw in self.ws:
                try:
                    frame = json.loads(raw)
                except ValueError:
                    continue
                if not isinstance(frame, list) or len(frame) < 3:
                    continue
                if frame[0] == CALL and len(frame) >= 4:
                    self.calls.append(Call(time.time(), frame[2], frame[3]))
                    if not self.silent:
                        answer = self.answers.get(frame[2]) or plausible_answer(frame[2], frame[3])
                        await self.ws.send(json.dumps([CALLRESULT, frame[1], answer]))
                elif frame[0] in (CALLRESULT, CALLERROR):
                    future = self.pending.pop(frame[1], None)
                    if future is not None and not future.done():
                        future.set_result(frame)
        except ConnectionClosed:
            pass
        finally:
            for future in self.pending.values():
                if not future.done():
                    future.set_result(None)
            self.pending.clear()

    async def send(self, action: str, payload: Any) -> asyncio.Future[list[Any] | None]:
        future: asyncio.Future[list[Any] | None] = asyncio.get_running_loop().create_future()
        if not self.open:
            future.set_result(None)
            return future
        self.sequence += 1
        unique_id = str(self.sequence)
        self.pending[unique_id] = future
        try:
            await self.ws.send(json.dumps([CALL, unique_id, action, payload]))
        except ConnectionClosed:
            self.pending.pop(unique_id, None)
            if not future.done():  # the reader may have resolved it as it ended
                future.set_result(None)
        return future

    async def call(self, action: str, payload: Any, timeout: float = 10.0) -> list[Any] | None:
        return await asyncio.wait_for(await self.send(action, payload), timeout)

    async def close(self) -> None:
        try:
            await asyncio.wait_for(self.ws.close(), 5)
        except (TimeoutError, OSError):
            pass
        self.reader.cancel()


async def open_station(port: int, cp_id: str, version: str = "1.6", **kwargs: Any) -> RawStation:
    ws = await connect(
        f"ws://127.0.0.1:{port}/{quote(cp_id, safe='')}",
        subprotocols=[f"ocpp{version}"],  # type: ignore[list-item]
        ping_interval=None,
        open_timeout=10,
        max_size=None,
    )
    return RawStation(ws, **kwargs)


async def booted(
    port: int, cp_id: str, version: str = "1.6", boot: Any = None, **kwargs: Any
) -> RawStation:
    station = await open_station(port, cp_id, version, **kwargs)
    answer = await station.call("BootNotification", boot or BOOT[version], 30)
    if answer is None or answer[0] != CALLRESULT:
        await station.close()
        raise RuntimeError(f"{cp_id}: BootNotification got {answer}")
    return station


# ---- the bystander, in a process of its own -----------------------------------


def bystander_main(url: str, pipe: Connection) -> None:
    asyncio.run(_bystander(url, pipe))


async def _bystander(url: str, pipe: Connection) -> None:
    """Heartbeats until told to stop; then sends (sent at, round trip) of each.

    Reconnects when the connector goes away (input 5 restarts it), and says
    ("ready", time) once booted on each connection. A heartbeat still
    unanswered at the stop counts with the time it has waited so far."""
    samples: list[tuple[float, float]] = []
    while not pipe.poll():
        try:
            async with connect(
                url,
                subprotocols=["ocpp1.6"],  # type: ignore[list-item]
                ping_interval=None,
                open_timeout=10,
            ) as ws:
                station = RawStation(ws)
                if await station.call("BootNotification", BOOT["1.6"], 30) is None:
                    continue
                ready = False
                while not pipe.poll():
                    sent = time.time()
                    answer = await station.send("Heartbeat", {})
                    while not answer.done() and not pipe.poll():
                        await asyncio.wait({answer}, timeout=0.02)
                    if answer.done() and answer.result() is None:
                        break  # the connection closed: no round trip to count
                    samples.append((sent, time.time() - sent))
                    if not ready:
                        pipe.send(("ready", time.time()))
                        ready = True
                    await asyncio.sleep(HEARTBEAT_EVERY)
        except (OSError, TimeoutError, InvalidHandshake, ConnectionClosed):
            pass
        except Exception as error:  # the measurement must outlive a fault of this script
            print(f"bystander: {error!r}", file=sys.stderr)
        if not pipe.poll():
            await asyncio.sleep(0.3)
    pipe.recv()
    pipe.send(samples)


class Bystander:
    def __init__(self, ocpp_port: int, cp_id: str = "BYSTANDER") -> None:
        self._pipe, child = SPAWN.Pipe()
        url = f"ws://127.0.0.1:{ocpp_port}/{cp_id}"
        self.process = SPAWN.Process(target=bystander_main, args=(url, child), daemon=True)
        self.process.start()
        self.samples: list[tuple[float, float]] | None = None

    def _ready(self, after: float, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        try:
            while self._pipe.poll(max(0.0, deadline - time.monotonic())):
                message = self._pipe.recv()
                if message[0] == "ready" and message[1] >= after:
                    return
        except (OSError, EOFError):
            raise RuntimeError("the bystander's process ended") from None
        raise TimeoutError("the bystander did not boot")

    async def ready(self, timeout: float = 30, after: float = 0.0) -> None:
        await asyncio.to_thread(self._ready, after, timeout)

    def stop(self) -> list[tuple[float, float]]:
        if self.samples is not None:
            return self.samples
        self.samples = []
        try:
            self._pipe.send("stop")
            deadline = time.monotonic() + 15
            while self._pipe.poll(max(0.0, deadline - time.monotonic())):
                message = self._pipe.recv()
                if isinstance(message, list):
                    self.samples = message
                    break
        except (OSError, EOFError):
            pass
        finally:
            self.process.join(5)
            if self.process.is_alive():
                self.process.kill()
                self.process.join(5)
        return self.samples


# ---- the connector and MQTT ---------------------------------------------------


class Connector:
    """The connector as its own process, as deployed; its log in `logs`."""

    def __init__(
        self, name: str, mqtt_port: int, logs: Path, ocpp_port: int | None = None, **env: str
    ) -> None:
        self.name = name
        self.mqtt_port = mqtt_port
        self.ocpp_port = ocpp_port or free_port()
        self.env = env
        instance = env.get("CONNECTOR_INSTANCE")
        self.log = logs / (f"{name}@{instance}.log" if instance else f"{name}.log")
        self.process: subprocess.Popen[bytes] | None = None
        self.stopping = False

    def start(self) -> None:
        env = {**connector_env(self.name, self.mqtt_port, self.ocpp_port), **self.env}
        with open(self.log, "a") as log:
            self.process = subprocess.Popen(
                [sys.executable, "source/connector/main.py"],
                cwd=ROOT,
                env=env,
                stdout=log,
                stderr=log,
            )
        self.stopping = False
        deadline = time.monotonic() + 30
        while True:
            try:
                wait_port(self.ocpp_port, 0.5)
                return
            except RuntimeError:
                code = self.process.poll()
                if code is not None:
                    raise RuntimeError(
                        f"the connector exited with {code}; see {self.log}"
                    ) from None
                if time.monotonic() > deadline:
                    raise

    def rss(self) -> float:
        return rss_mib(self.process.pid) if self.process is not None else float("nan")

    def stop(self) -> tuple[float, int | None]:
        """SIGTERM; the seconds until it exited, and its exit code (None: killed after 15 s)."""
        if self.process is None:
            return float("nan"), None
        self.stopping = True
        process, self.process = self.process, None
        started = time.monotonic()
        process.terminate()
        try:
            code: int | None = process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)
            code = None
        return time.monotonic() - started, code

    def died(self) -> int | None:
        """Its exit code when it ended without being asked to."""
        if self.process is None or self.stopping:
            return None
        return self.process.poll()

    def errors(self) -> list[str]:
        """The ERROR and CRITICAL lines and tracebacks in its log: none is expected."""
        try:
            lines = self.log.read_text(errors="replace").splitlines()
        except OSError:
            return []
        marks = (" ERROR ", " CRITICAL ", "Traceback")
        return [line for line in lines if any(mark in line for mark in marks)]


class Message(NamedTuple):
    at: float
    topic: str
    payload: bytes
    retain: bool


class Recorder:
    """Every message under a topic filter, from a subscriber of its own (QoS 1)."""

    def __init__(self, port: int, topic: str, session: str | None = None) -> None:
        self.messages: list[Message] = []
        self.last_at = time.monotonic()
        self._lock = threading.Lock()
        self._subscribed = threading.Event()
        self.client = subscriber(port, topic, self._on_message, session)
        self.client.on_subscribe = lambda *_: self._subscribed.set()

    def _on_message(self, client: object, userdata: object, message: mqtt.MQTTMessage) -> None:
        with self._lock:
            self.messages.append(
                Message(time.time(), message.topic, message.payload, bool(message.retain))
            )
            self.last_at = time.monotonic()

    async def subscribed(self, timeout: float = 5) -> None:
        await asyncio.to_thread(self._subscribed.wait, timeout)

    def of(self, topic: str | None = None) -> list[Message]:
        with self._lock:
            return [m for m in self.messages if topic is None or m.topic == topic]

    def values(self, topic: str | None = None, since: float = 0.0) -> list[Any]:
        """The `value` of each BEMCom value payload, received at `since` or later."""
        found = []
        for message in self.of(topic):
            if message.at < since:
                continue
            try:
                found.append(json.loads(message.payload)["value"])
            except (ValueError, KeyError, TypeError):
                continue
        return found

    async def quiet(self, seconds: float, limit: float) -> None:
        """Until nothing has arrived for `seconds`, `limit` s at most."""
        deadline = time.monotonic() + limit
        # Polls a time paho's thread sets; 0.1 s is far below the quiet asked for.
        while time.monotonic() - self.last_at < seconds and time.monotonic() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(0.1)

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


async def retained(port: int, topic: str, timeout: float = 5) -> bytes | None:
    """The retained message on `topic`, read by a fresh subscriber."""
    recorder = Recorder(port, topic)
    try:
        await wait_until(lambda: bool(recorder.of()), timeout)
        found = recorder.of()
        return found[0].payload if found else None
    finally:
        recorder.close()


class Publisher:
    def __init__(self, port: int) -> None:
        self.client = mqtt.Client(callback_api_version=CallbackAPIVersion.VERSION2)
        self.client.max_inflight_messages_set(1000)
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()

    def send(self, topic: str, payload: str | bytes, retain: bool = False) -> mqtt.MQTTMessageInfo:
        return self.client.publish(topic, payload, qos=1, retain=retain)

    async def sent(self, info: mqtt.MQTTMessageInfo, timeout: float = 60) -> bool:
        try:
            await asyncio.to_thread(info.wait_for_publish, timeout)
        except (RuntimeError, ValueError):
            return False
        return info.is_published()

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


# ---- one input: its connector, its bystander, its row ---------------------------


@dataclass
class Row:
    number: int
    label: str = ""
    stall_max: float = float("nan")
    stall_p50: float = float("nan")
    rss_before: float = float("nan")
    rss_end: float = float("nan")
    rss_after: float = float("nan")
    what: str = ""


@dataclass
class Scene:
    number: int
    connector: Connector
    bystander: Bystander
    rss_before: float
    started: float = field(default_factory=time.time)
    ended: float = 0.0
    rss_end: float = float("nan")
    left_at: float = 0.0
    rss_after: float = float("nan")

    @property
    def port(self) -> int:
        return self.connector.ocpp_port

    def begin(self) -> None:
        self.started = time.time()

    def end(self) -> None:
        self.ended = time.time()
        self.rss_end = self.connector.rss()

    def left(self) -> None:
        self.left_at = time.monotonic()

    async def after_left(self) -> None:
        await asyncio.sleep(max(0.0, self.left_at + AFTER_LEFT - time.monotonic()))
        self.rss_after = self.connector.rss()

    def stalls(self, start: float, end: float) -> list[float]:
        """Round trips (ms) of the heartbeats that overlap [start, end], however short."""
        samples = self.bystander.stop()
        return sorted(1000 * rtt for sent, rtt in samples if sent <= end and sent + rtt >= start)

    def row(self, what: str, phases: dict[str, tuple[float, float]] | None = None) -> Row:
        stalls = self.stalls(self.started, self.ended or time.time())
        if phases:
            longest = {phase: self.stalls(*window)[-1:] for phase, window in phases.items()}
            what += "; longest round trip: " + ", ".join(
                f"{phase} {cell(ms[0]) if ms else '-'} ms" for phase, ms in longest.items()
            )
        code = self.connector.died()
        if code is not None:
            what += f"; CONNECTOR EXITED with code {code}"
        errors = self.connector.errors()
        if errors:
            what += (
                f"; the connector logged {len(errors)} ERROR line(s), the first: "
                f"{errors[0].split(' ', 2)[-1][:100]!r} ({self.connector.log})"
            )
        return Row(
            self.number,
            stall_max=stalls[-1] if stalls else float("nan"),
            stall_p50=percentile(stalls, 50),
            rss_before=self.rss_before,
            rss_end=self.rss_end,
            rss_after=self.rss_after,
            what=what,
        )


@dataclass
class Context:
    args: argparse.Namespace
    broker: Broker
    logs: Path
    run: str = field(default_factory=lambda: uuid.uuid4().hex[:6])
    _persistent: Broker | None = None

    def name(self, number: int) -> str:
        return f"hostile-{self.run}-{number}"

    def persistent(self) -> Broker:
        """A Mosquitto that keeps sessions and retained messages across its restarts."""
        if self._persistent is None:
            self._persistent = Broker(persistent=True)
            self._persistent.start()
        return self._persistent

    def close(self) -> None:
        for broker in (self.broker, self._persistent):
            if broker is not None:
                broker.stop()


@asynccontextmanager
async def scene(
    ctx: Context, number: int, name: str | None = None, broker: Broker | None = None, **env: str
) -> AsyncIterator[Scene]:
    connector = Connector(name or ctx.name(number), (broker or ctx.broker).port, ctx.logs, **env)
    bystander: Bystander | None = None
    try:
        await asyncio.to_thread(connector.start)
        bystander = Bystander(connector.ocpp_port)
        await bystander.ready(30)
        await asyncio.sleep(1)  # the bystander's setup calls are answered
        yield Scene(number, connector, bystander, rss_before=connector.rss())
    finally:
        if bystander is not None:
            bystander.stop()
        connector.stop()


# ---- the inputs -----------------------------------------------------------------


async def multiplier(ctx: Context) -> Row:
    name, cp = ctx.name(1), "CP_MULT"
    power, energy = f"{name}-values/power", f"{name}-values/energy"
    publish_retained(
        ctx.broker.port,
        f"{name}/datapoint_map",
        {
            "sensor": {
                f"{cp}__MeterValues__1__Power.Active.Import__W": power,
                f"{cp}__MeterValues__1__Energy.Active.Import.Register__Wh": energy,
            },
            "actuator": {},
        },
    )
    values = Recorder(ctx.broker.port, f"{name}-values/#")
    try:
        async with scene(ctx, 1) as s:
            station = await booted(s.port, cp, "2.0.1")
            sampled = [
                {"value": 13, "unitOfMeasure": {"multiplier": 10_000_000}},
                {"value": 1e308, "unitOfMeasure": {"unit": "kWh"}},
                {"value": int("9" * 400)},
                {"value": 7, "measurand": "Power.Active.Import", "unitOfMeasure": {"unit": "W"}},
            ]
            payload = {
                "evseId": 1,
                "meterValue": [{"timestamp": now_iso(), "sampledValue": sampled}],
            }
            s.begin()
            started = time.monotonic()
            answer = await station.call("MeterValues", payload, 30)
            answered_ms = 1000 * (time.monotonic() - started)
            await wait_until(lambda: 7 in values.values(power), 5)
            await asyncio.sleep(0.5)  # time for an energy value that should not come
            s.end()
            await station.close()
            s.left()
            await s.after_left()
            return s.row(
                f"frame answered {kind(answer)} in {answered_ms:.0f} ms; 7 W published: "
                f"{yes(7 in values.values(power))}; the other 3 (13 x 10^10000000, 1e308 kWh, "
                f"400 digits) are no float: energy topic got {values.values(energy)}"
            )
    finally:
        values.close()


async def raw_messages_restart(ctx: Context) -> Row:
    broker = ctx.persistent()
    name = ctx.name(2)
    ids = [f"RAW_{i}" for i in range(10)]
    publish_retained(
        broker.port,
        f"{name}/datapoint_map",
        {
            "sensor": {
                f"{cp}__MeterValues__1__Energy.Active.Import.Register__Wh": f"{name}-values/{cp}"
                for cp in ids
            },
            "actuator": {},
        },
    )
    # A persistent session at QoS 1: what the broker holds for it while it is
    # down is delivered after, so a loss is the connector's.
    counter = Recorder(broker.port, f"{name}-values/#", session=f"{name}-counter")
    sent: dict[str, set[int]] = {cp: set() for cp in ids}
    unanswered = [0]
    try:
        async with scene(ctx, 2, broker=broker, SEND_RAW_MESSAGE_TO_DB="TRUE") as s:
            await counter.subscribed()
            stations = [await booted(s.port, cp) for cp in ids]
            stop = asyncio.Event()

            async def meter(cp: str, station: RawStation) -> None:
                energy = 1000
                while not stop.is_set():
                    energy += 1
                    sent[cp].add(energy)
                    value = {"value": str(energy), "unit": "Wh"}
                    frame = {
                        "connectorId": 1,
                        "meterValue": [{"timestamp": now_iso(), "sampledValue": [value]}],
                    }
                    try:
                        if await station.call("MeterValues", frame, 10) is None:
                            unanswered[0] += 1
                    except TimeoutError:
                        unanswered[0] += 1
                    await asyncio.sleep(0.2)

            tasks = [
                asyncio.create_task(meter(cp, st)) for cp, st in zip(ids, stations, strict=True)
            ]
            s.begin()
            await asyncio.sleep(4)
            await asyncio.to_thread(broker.stop)
            await asyncio.sleep(6)
            await asyncio.to_thread(broker.start)
            await asyncio.sleep(4)
            stop.set()
            await asyncio.wait_for(asyncio.gather(*tasks), 15)
            s.end()
            for station in stations:
                await station.close()
            s.left()
            await counter.quiet(3, 60)
            await s.after_left()
            received: dict[str, set[int]] = {cp: set() for cp in ids}
            for message in counter.of():
                cp = message.topic.rsplit("/", 1)[-1]
                try:
                    received[cp].add(int(json.loads(message.payload)["value"]))
                except (KeyError, ValueError, TypeError):
                    continue
            total = sum(len(v) for v in sent.values())
            lost = {cp: len(sent[cp] - received[cp]) for cp in ids}
            worst = max(ids, key=lambda cp: lost[cp])
            return s.row(
                f"lost {sum(lost.values())} of {total} values (worst station {lost[worst]} of "
                f"{len(sent[worst])}); {unanswered[0]} MeterValues unanswered; broker down 6 s"
            )
    finally:
        counter.close()


async def boot_flood(ctx: Context) -> Row:
    seconds = ctx.args.flood_seconds
    async with scene(ctx, 3) as s:
        station = await open_station(s.port, "CP_FLOOD", silent=True)
        in_flight = asyncio.Semaphore(50)
        answered: Counter[str] = Counter()

        def done(future: asyncio.Future[list[Any] | None]) -> None:
            in_flight.release()
            answered[kind(future.result())] += 1

        sent = 0
        s.begin()
        deadline = time.monotonic() + seconds
        while station.open and time.monotonic() < deadline:
            try:
                await asyncio.wait_for(in_flight.acquire(), max(0.01, deadline - time.monotonic()))
            except TimeoutError:
                break
            future = await station.send("BootNotification", BOOT["1.6"])
            future.add_done_callback(done)
            sent += 1
        s.end()
        closed_by_connector = not station.open
        calls = len(station.calls)
        await station.close()
        s.left()
        await s.after_left()
        alive = s.connector.died() is None
        exit_s, code = await asyncio.to_thread(s.connector.stop)
        row = s.row(
            f"{sent} BootNotifications in {seconds:g} s, {answered['CALLRESULT']} answered "
            f"({answered['CALLERROR']} CALLERROR); calls it got: {calls}; closed by the connector: "
            f"{'yes' if closed_by_connector else 'no'}; SIGTERM -> exit in {exit_s:.2f} s "
            f"(code {code}){'' if exit_s < 5 else ' -- NOT within 5 s'}"
        )
        if not alive:
            row.what += "; connector had died before SIGTERM"
        return row


async def silent_commands(ctx: Context) -> Row:
    name = ctx.name(4)
    publisher = Publisher(ctx.broker.port)
    try:
        async with scene(ctx, 4, MQTT_DIRECT_TOPICS="TRUE") as s:
            cp = "CP_SILENT"
            station = await booted(s.port, cp, silent=True)
            await asyncio.sleep(1)
            s.begin()
            started = time.monotonic()
            last = None
            for i in range(5000):
                if i % 2:
                    topic = f"{name}/direct/{cp}/execute_send_charging_profile/set"
                    last = publisher.send(topic, str(1000 + i))
                else:
                    last = publisher.send(f"{name}/direct/{cp}/execute_trigger_message/set", "4")
            delivered = last is not None and await publisher.sent(last, 60)
            published_s = time.monotonic() - started
            await asyncio.sleep(5)
            s.end()
            calls = Counter(c.action for c in station.calls)
            still_open = station.open
            await station.close()
            s.left()
            await s.after_left()
            shown = ", ".join(f"{n} {action}" for action, n in sorted(calls.items()))
            return s.row(
                f"5000 commands published in {published_s:.1f} s (broker took all: "
                f"{yes(delivered)}); the silent station got {shown or 'no calls'} within 5 s "
                "(its unanswered setup call holds the rest, OCPP_RESPONSE_TIMEOUT 30 s); "
                f"its connection open: {yes(still_open)}"
            )
    finally:
        publisher.close()


def fleet_main(url: str, count: int, pipe: Connection) -> None:
    asyncio.run(_fleet(url, count, pipe))


async def _fleet(url: str, count: int, pipe: Connection) -> None:
    """`count` 1.6 stations; joins them, then does what the pipe asks:
    ("first", t): each station's first SetChargingProfile at or after t;
    ("rejoin", _): all reconnect at once (a refused handshake is tried again);
    ("stop", _): close all."""
    ids = [f"CP_{i}" for i in range(count)]
    calls: dict[str, list[Call]] = {cp: [] for cp in ids}
    stations: dict[str, RawStation] = {}
    refused: Counter[str] = Counter()

    async def join(cp: str, deadline: float) -> None:
        while time.time() < deadline:
            try:
                ws = await connect(
                    f"{url}/{cp}",
                    subprotocols=["ocpp1.6"],  # type: ignore[list-item]
                    ping_interval=None,
                    open_timeout=max(1.0, deadline - time.time()),
                )
            except InvalidStatus as error:
                refused[str(error.response.status_code)] += 1
                await asyncio.sleep(random.uniform(0.2, 1.0))
                continue
            except (OSError, TimeoutError, InvalidHandshake, ConnectionClosed) as error:
                refused[type(error).__name__] += 1
                await asyncio.sleep(random.uniform(0.2, 1.0))
                continue
            station = RawStation(ws, calls=calls[cp])
            try:
                answer = await station.call("BootNotification", BOOT["1.6"], 60)
            except TimeoutError:
                answer = None
            if answer is not None:
                stations[cp] = station
                return
            await station.close()

    async def join_all() -> dict[str, Any]:
        refused.clear()
        started = time.time()
        await asyncio.gather(*(join(cp, started + 90) for cp in ids))
        return {"joined": len(stations), "seconds": time.time() - started, "refused": refused}

    pipe.send(await join_all())
    while True:
        command, argument = await asyncio.to_thread(pipe.recv)
        if command == "first":
            first: dict[str, float | None] = {}
            for cp in ids:
                times = [c.at for c in calls[cp] if c.action == "SetChargingProfile"]
                first[cp] = min((t for t in times if t >= argument), default=None)
            pipe.send(first)
        elif command == "rejoin":
            await asyncio.gather(*(st.close() for st in stations.values()))
            stations.clear()
            pipe.send(await join_all())
        else:
            await asyncio.gather(*(st.close() for st in stations.values()))
            pipe.send("bye")
            return


class Fleet:
    """The stations of input 5, in a process of their own."""

    def __init__(self, ocpp_port: int, count: int) -> None:
        self._pipe, child = SPAWN.Pipe()
        url = f"ws://127.0.0.1:{ocpp_port}"
        self.process = SPAWN.Process(target=fleet_main, args=(url, count, child), daemon=True)
        self.process.start()

    def _receive(self, timeout: float) -> Any:
        if not self._pipe.poll(timeout):
            raise TimeoutError("the fleet did not answer")
        return self._pipe.recv()

    async def receive(self, timeout: float) -> Any:
        return await asyncio.to_thread(self._receive, timeout)

    async def ask(self, command: str, argument: Any, timeout: float) -> Any:
        self._pipe.send((command, argument))
        return await self.receive(timeout)

    async def first_profiles(self, since: float, count: int, limit: float) -> list[float]:
        """Seconds from `since` to each station's first SetChargingProfile, polled
        until every station has one or `limit` s from `since` have passed."""
        while True:
            first = await self.ask("first", since, 60)
            arrived = sorted(at - since for at in first.values() if at is not None)
            if len(arrived) >= count or time.time() > since + limit:
                return [t for t in arrived if t <= limit]
            await asyncio.sleep(0.5)

    async def stop(self) -> None:
        try:
            if self.process.is_alive():
                await self.ask("stop", None, 30)
        except (TimeoutError, OSError, EOFError):
            pass
        finally:
            await asyncio.to_thread(self.process.join, 5)
            if self.process.is_alive():
                self.process.kill()


def spread(seconds: list[float]) -> str:
    if not seconds:
        return "-"
    return f"p50 {percentile(seconds, 50):.1f} s, max {seconds[-1]:.1f} s"


def refusals(joined: dict[str, Any]) -> str:
    refused = joined["refused"]
    if not refused:
        return "no handshake refused"
    return "handshakes refused and retried: " + ", ".join(
        f"{n} x {reason}" for reason, n in sorted(refused.items())
    )


async def burst_and_storm(ctx: Context) -> Row:
    count = ctx.args.stations
    name = ctx.name(5)
    publisher = Publisher(ctx.broker.port)
    kept = Recorder(ctx.broker.port, f"{name}/state/charging_limits/#")
    fleet: Fleet | None = None
    try:
        async with scene(ctx, 5, MQTT_DIRECT_TOPICS="TRUE") as s:
            fleet = Fleet(s.port, count)
            joined = await fleet.receive(150)
            await asyncio.sleep(3)  # every station's GetConfiguration answered
            s.begin()
            published = time.time()
            for i in range(count):
                topic = f"{name}/direct/CP_{i}/execute_send_charging_profile/set"
                publisher.send(topic, "7000")
            burst = await fleet.first_profiles(published, count, 60)
            await wait_until(lambda: len({m.topic for m in kept.of() if m.payload}) >= count, 10)
            kept_topics = len({m.topic for m in kept.of() if m.payload})

            burst_end = time.time()
            exit_s, _ = await asyncio.to_thread(s.connector.stop)
            await asyncio.to_thread(s.connector.start)
            await s.bystander.ready(30, after=burst_end)
            storm = time.time()
            rejoined = await fleet.ask("rejoin", None, 180)
            again = await fleet.first_profiles(storm, count, 60)
            s.end()
            await fleet.stop()
            s.left()
            await s.after_left()
            return s.row(
                f"burst: {len(burst)}/{count} SetChargingProfile within 60 s ({spread(burst)}); "
                f"kept on the broker: {kept_topics}; restart (SIGTERM exit {exit_s:.1f} s); "
                f"storm: {rejoined['joined']}/{count} reconnected in {rejoined['seconds']:.1f} s "
                f"({refusals(rejoined)}); limits applied again: {len(again)}/{count} "
                f"({spread(again)} after the storm began); first join: {joined['joined']}/{count} "
                f"in {joined['seconds']:.1f} s",
                phases={"burst": (published, burst_end), "storm": (storm, s.ended)},
            )
    finally:
        if fleet is not None:
            await fleet.stop()
        kept.close()
        publisher.close()


async def long_names(ctx: Context) -> Row:
    name = ctx.name(6)
    documents = Recorder(ctx.broker.port, f"{name}/available_datapoints")
    long_name = "n" * 60_000
    boot = {**BOOT["2.0.1"], "customData": {"vendorId": "x", long_name: 1}}
    try:
        async with scene(ctx, 6) as s:
            stations: list[RawStation] = []
            failed: list[str] = []
            gate = asyncio.Semaphore(10)

            async def one(i: int) -> None:
                async with gate:
                    try:
                        stations.append(await booted(s.port, f"LONG_{i}", "2.0.1", boot=boot))
                    except (OSError, TimeoutError, InvalidHandshake, RuntimeError) as error:
                        failed.append(f"{type(error).__name__}: {error}"[:80])

            s.begin()
            started = time.monotonic()
            await asyncio.gather(*(one(i) for i in range(200)))
            boots_s = time.monotonic() - started
            await documents.quiet(6, 30)
            s.end()
            for station in stations:
                await station.close()
            s.left()
            await s.after_left()
            document = await retained(ctx.broker.port, f"{name}/available_datapoints")
            size = len(document) if document else 0
            listed = document is not None and long_name[:400].encode() in document
            largest = max((len(m.payload) for m in documents.of()), default=0)
            return s.row(
                f"{len(stations)}/200 boots answered in {boots_s:.1f} s"
                f"{' (' + failed[0] + ')' if failed else ''}; available_datapoints "
                f"{size} bytes at the end (largest {largest}, sent {len(documents.of())} times), "
                f"parses: {yes(strict_json(document))}, holds the long name: "
                f"{'YES' if listed else 'no'}"
            )
    finally:
        documents.close()


async def forged_presence(ctx: Context) -> Row:
    name, cp = ctx.name(7), "CP_7"
    port = ctx.broker.port
    other = Connector(name, port, ctx.logs, CONNECTOR_INSTANCE="0", MQTT_DIRECT_TOPICS="TRUE")
    publisher = Publisher(port)
    connected = Recorder(port, f"{name}/direct/{quote(cp, safe='')}/connected")
    try:
        await asyncio.to_thread(other.start)
        async with scene(ctx, 7, CONNECTOR_INSTANCE="1", MQTT_DIRECT_TOPICS="TRUE") as s:
            station = await booted(s.port, cp)
            await wait_until(lambda: connected.values()[-1:] == [True], 10)
            await asyncio.sleep(2)
            s.begin()
            mark = time.time()
            publisher.send(f"{name}/instances/1", "offline")
            await asyncio.sleep(15)
            after_offline = connected.values(since=mark)
            stayed = station.open and False not in after_offline
            triggers = station.count("TriggerMessage")
            publisher.send(f"{name}/direct/{cp}/execute_trigger_message/set", "4")
            reached = await wait_until(lambda: station.count("TriggerMessage") > triggers, 10)
            claim = json.dumps({"instance": 7, "connection": "forged"})
            publisher.send(f"{name}/owners/{cp}", claim, retain=True)
            await asyncio.sleep(5)
            still_open = station.open
            s.end()
            await station.close()
            s.left()
            await s.after_left()
            return s.row(
                f"after a forged offline of instance 1, 15 s: connected stayed true: "
                f"{yes(stayed)} (values since: {after_offline}), trigger reached it: "
                f"{yes(reached)}; after a forged retained claim of instance 7, 5 s: "
                f"connection open: {yes(still_open)}"
            )
    finally:
        connected.close()
        publisher.close()
        other.stop()


async def retained_transaction_id(ctx: Context) -> Row:
    name = ctx.name(8)
    publish_retained(ctx.broker.port, f"{name}/state/last_transaction_id", INT32_MAX)
    async with scene(ctx, 8) as s:
        station = await booted(s.port, "CP_TX")
        s.begin()
        start = {"connectorId": 1, "idTag": "TAG1", "meterStart": 0, "timestamp": now_iso()}
        answer = await station.call("StartTransaction", start, 10)
        s.end()
        await station.close()
        s.left()
        await s.after_left()
        if answer is None or answer[0] != CALLRESULT:
            return s.row(f"StartTransaction got {str(answer)[:120]}")
        tx = answer[2].get("transactionId")
        fits = isinstance(tx, int) and tx <= INT32_MAX
        return s.row(
            f"StartTransaction answered CALLRESULT, transactionId {tx} <= 2^31-1: {yes(fits)}"
        )


async def chosen_names(ctx: Context) -> Row:
    name = ctx.name(9)
    port = ctx.broker.port
    publisher = Publisher(port)
    direct = Recorder(port, f"{name}/direct/CP_9/Configuration/#")
    try:
        async with scene(ctx, 9, MQTT_DIRECT_TOPICS="TRUE") as s:
            s.begin()
            # Kept while the station is away, and sent once it has connected.
            await publisher.sent(
                publisher.send(f"{name}/direct/CP_9/execute_send_charging_profile/set", "7000")
            )
            await asyncio.sleep(1)
            vendor_key = {"key": "Vendor#Key", "readonly": False, "value": "x"}
            station = await booted(
                s.port, "CP_9", answers={"GetConfiguration": {"configurationKey": [vendor_key]}}
            )
            profile = await wait_until(lambda: station.count("SetChargingProfile") > 0, 15)
            v2 = await booted(s.port, "CP_9B", "2.0.1")
            report = {
                "requestId": 1,
                "generatedAt": now_iso(),
                "seqNo": 0,
                "reportData": [
                    {
                        "component": {"name": "a+b"},
                        "variable": {"name": "v"},
                        "variableAttribute": [{"value": "1e999"}],
                    }
                ],
            }
            answer = await v2.call("NotifyReport", report, 10)

            async def listed() -> bytes | None:
                return await retained(port, f"{name}/available_datapoints", 2)

            document = await listed()
            deadline = time.monotonic() + 10
            while (document is None or b"a+b" not in document) and time.monotonic() < deadline:
                await asyncio.sleep(0.5)
                document = await listed()
            s.end()
            await station.close()
            await v2.close()
            s.left()
            await s.after_left()
            topics = sorted({m.topic.split("/Configuration/", 1)[1] for m in direct.of()})
            return s.row(
                f"Vendor#Key: SetChargingProfile arrived: {yes(profile)} (direct topics "
                f"…/Configuration/{', '.join(topics) or '-'}); NotifyReport with a+b and 1e999: "
                f"{kind(answer)}; available_datapoints lists a+b: "
                f"{yes(document is not None and b'a+b' in document)}, is strict JSON: "
                f"{yes(strict_json(document))}"
            )
    finally:
        direct.close()
        publisher.close()


async def station_ids(ctx: Context) -> Row:
    async with scene(ctx, 10) as s:
        s.begin()
        first = await booted(s.port, "CP1")
        try:
            second = await open_station(s.port, "CP1_")
            status = "101 (accepted)"
            await second.close()
        except InvalidStatus as error:
            status = f"HTTP {error.response.status_code}"
        await asyncio.sleep(1)
        still_open = first.open
        s.end()
        await first.close()
        s.left()
        await s.after_left()
        return s.row(f"CP1 accepted; CP1_ got {status}; CP1 still connected: {yes(still_open)}")


async def retained_command(ctx: Context) -> Row:
    broker = ctx.persistent()
    name, cp = ctx.name(11), "CP_11"
    topic = f"{name}-cmd/reset"
    publish_retained(
        broker.port,
        f"{name}/datapoint_map",
        {"sensor": {}, "actuator": {topic: f"{cp}__execute_reset"}},
    )
    # Left on the topic before this connector ran, as an earlier session would.
    publish_retained(broker.port, topic, {"value": "Soft", "timestamp": now_ms()})
    async with scene(ctx, 11, broker=broker, OCPP_CONFIG="all") as s:
        station = await booted(s.port, cp)
        await asyncio.sleep(2)
        s.begin()
        after_restarts = []
        for _ in range(2):
            await asyncio.to_thread(broker.stop)
            await asyncio.sleep(1)
            await asyncio.to_thread(broker.start)
            await asyncio.sleep(6)  # the connector is back and has subscribed again
            after_restarts.append(station.count("Reset"))
        # A live command on the same topic still works, so the map is in force.
        publisher = Publisher(broker.port)
        try:
            await publisher.sent(
                publisher.send(topic, json.dumps({"value": "Soft", "timestamp": now_ms()}))
            )
        finally:
            publisher.close()
        live = await wait_until(lambda: station.count("Reset") > after_restarts[-1], 10)
        s.end()
        await station.close()
        s.left()
        await s.after_left()
        return s.row(
            f"Reset calls from the retained command: {after_restarts[-1]} "
            f"(after restart 1: {after_restarts[0]}, after restart 2: {after_restarts[1]}); "
            f"a live Reset on the same topic arrived: {yes(live)}"
        )


async def configuration_secret(ctx: Context) -> Row:
    name = ctx.name(12)
    everything = Recorder(ctx.broker.port, f"{name}/#")
    try:
        async with scene(ctx, 12, SEND_RAW_MESSAGE_TO_DB="TRUE", MQTT_DIRECT_TOPICS="TRUE") as s:
            await everything.subscribed()
            configuration = {
                "configurationKey": [
                    {"key": "AuthorizationKey", "readonly": False, "value": SECRET},
                    {"key": "HeartbeatInterval", "readonly": False, "value": "300"},
                ]
            }
            s.begin()
            station = await booted(s.port, "CP_12", answers={"GetConfiguration": configuration})
            asked = await wait_until(lambda: station.count("GetConfiguration") > 0, 10)
            await asyncio.sleep(5)
            s.end()
            await station.close()
            s.left()
            await s.after_left()
            messages = everything.of()
            leaks = sorted(
                {m.topic for m in messages if SECRET.encode() in m.payload or SECRET in m.topic}
            )
            raw = sum(1 for m in messages if m.topic == f"{name}/raw_message_to_db")
            return s.row(
                f"GetConfiguration answered with the key: {yes(asked)}; {len(messages)} messages "
                f"under {name}/# ({raw} raw); secret published: "
                f"{'YES on ' + ', '.join(leaks) if leaks else 'no'}"
            )
    finally:
        everything.close()


# ---- running them --------------------------------------------------------------

Input = Callable[[Context], Awaitable[Row]]
INPUTS: dict[int, tuple[str, Input, float]] = {
    1: ("2.x multiplier 10^7, huge values", multiplier, 90),
    2: ("raw messages, broker down 6 s", raw_messages_restart, 180),
    3: ("boot flood, 50 in flight", boot_flood, 120),
    4: ("5,000 commands, silent station", silent_commands, 150),
    5: ("limit burst, reconnect storm", burst_and_storm, 900),
    6: ("200 boots, 60,000-char name", long_names, 180),
    7: ("forged offline and claim", forged_presence, 120),
    8: ("retained transaction id 2^31-1", retained_transaction_id, 90),
    9: ("Vendor#Key, a+b, 1e999", chosen_names, 120),
    10: ("ids CP1 and CP1_", station_ids, 90),
    11: ("retained Reset, 2 broker restarts", retained_command, 120),
    12: ("AuthorizationKey in config", configuration_secret, 90),
}


async def run_input(ctx: Context, number: int) -> Row:
    label, function, limit = INPUTS[number]
    if number == 3:
        limit += ctx.args.flood_seconds
    try:
        row = await asyncio.wait_for(function(ctx), limit)
    except Exception as error:
        timed_out = isinstance(error, TimeoutError) and not str(error)
        detail = f"not done within {limit:g} s" if timed_out else str(error)
        what = f"FAILED: {type(error).__name__}" + (f": {detail}" if detail else "")
        row = Row(number, what=what[:300])
    row.label = label
    return row


def cell(value: float, digits: int = 0) -> str:
    return "-" if value != value else f"{value:.{digits}f}"


def print_row(row: Row) -> None:
    print(
        f"{row.number:>2} {row.label:<34} {cell(row.stall_max):>7} {cell(row.stall_p50):>5} "
        f"{cell(row.rss_before, 1):>7} {cell(row.rss_end, 1):>6} {cell(row.rss_after, 1):>6}  "
        f"{row.what}",
        flush=True,
    )


def machine() -> str:
    mosquitto = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
    try:
        version = subprocess.run(
            [mosquitto, "-h"], capture_output=True, text=True, timeout=5
        ).stdout.split("\n", 1)[0]
    except (OSError, subprocess.TimeoutExpired):
        version = "mosquitto ?"
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    return (
        f"{os.cpu_count()} cores, {platform.system()} {platform.release()}, "
        f"Python {platform.python_version()}, {version}, load average {load}"
    )


async def run_all(ctx: Context, numbers: list[int]) -> list[Row]:
    rows = []
    for number in numbers:
        row = await run_input(ctx, number)
        print_row(row)
        rows.append(row)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--only", default="", help="inputs to run, e.g. 1,3,5; default: all")
    parser.add_argument("--stations", type=int, default=1000, help="stations of input 5")
    parser.add_argument("--flood-seconds", type=float, default=20.0, help="input 3's flood")
    args = parser.parse_args()
    try:
        numbers = sorted({int(n) for n in args.only.split(",") if n.strip()} or INPUTS)
    except ValueError:
        parser.error(f"--only takes numbers separated by commas, not {args.only!r}")
    unknown = [n for n in numbers if n not in INPUTS]
    if unknown:
        parser.error(f"no input {unknown[0]}; inputs are 1-{len(INPUTS)}")

    print(f"command: {shlex.join(['python', *sys.argv])}")
    print(f"machine: {machine()}")
    logs = Path(tempfile.mkdtemp(prefix="hostile-"))
    print(f"connector logs: {logs}")
    print(
        f"{'#':>2} {'input':<34} {'stall':>7} {'p50':>5} {'RSS':>7} {'end':>6} {'+5 s':>6}  "
        "what was lost / what happened"
    )
    print(f"{'':>2} {'':<34} {'ms':>7} {'ms':>5} {'MiB':>7} {'MiB':>6} {'MiB':>6}")
    started = time.monotonic()
    broker = Broker()
    broker.start()
    ctx = Context(args, broker, logs)
    try:
        asyncio.run(run_all(ctx, numbers))
    finally:
        ctx.close()
    print(
        f"stall: the bystander's longest and median Heartbeat round trip while the input ran; "
        f"RSS: the connector's before the input, at its end, {AFTER_LEFT:g} s after the "
        f"hostile station left. Took {time.monotonic() - started:.0f} s."
    )


if __name__ == "__main__":
    main()
