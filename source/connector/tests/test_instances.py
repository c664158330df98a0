"""README "Several instances" end to end: three instances behind HAProxy act as one connector.

Real Mosquitto, real HAProxy (deploy/haproxy.cfg as it is, addresses from the
environment), three connector processes, and simulated stations that
reconnect through HAProxy when their connection ends, as real stations do.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake

from connector.simulator.core import SimulatorOptions
from connector.simulator.v16 import SimulatedChargePoint
from connector.tests.helpers import Mosquitto, Probe, eventually, free_port
from connector.tests.test_mqtt_reliability import energy_key, received_values, send_steadily

pytestmark = pytest.mark.broker

ROOT = Path(__file__).resolve().parents[3]
HAPROXY = shutil.which("haproxy") or "/usr/sbin/haproxy"
INSTANCES = (0, 1, 2)
LIMIT = "{cp}__execute_send_charging_profile"


class Site:
    """Three instances, HAProxy in front, all on loopback."""

    def __init__(
        self, mosquitto: Mosquitto, name: str, extra: dict[str, str] | None = None
    ) -> None:
        """`extra`: more of every instance's environment."""
        self.mosquitto = mosquitto
        self.name = name
        self.extra = extra or {}
        self.ports = {n: free_port() for n in INSTANCES}
        self.front = free_port()
        self.processes: dict[int, subprocess.Popen[bytes]] = {}
        self.haproxy: subprocess.Popen[bytes] | None = None

    def env(self, instance: int) -> dict[str, str]:
        return {
            **os.environ,
            "CONNECTOR_NAME": self.name,
            "CONNECTOR_INSTANCE": str(instance),
            "MQTT_BROKER_HOST": "127.0.0.1",
            "MQTT_BROKER_PORT": str(self.mosquitto.port),
            "OCPP_HOST": "127.0.0.1",
            "OCPP_PORT": str(self.ports[instance]),
            "OCPP_CONFIG": "all",
            "OCPP_BOOT_WAIT": "1",
            "OCPP_RESPONSE_TIMEOUT": "5",
            # Every station comes from HAProxy's address (README, Several instances).
            "OCPP_HANDSHAKE_SHARE_PER_ADDRESS": "100",
            "HTTP_PORT": "0",  # several on one machine: each would want 8080
            **self.extra,
        }

    def start(self, instance: int) -> None:
        # Each instance's log, to read after a failure.
        log = open(f"{tempfile.gettempdir()}/{self.name}-instance-{instance}.log", "ab")
        self.processes[instance] = subprocess.Popen(
            [sys.executable, "source/connector/main.py"],
            cwd=ROOT,
            env=self.env(instance),
            stderr=log,
        )

    def start_all(self) -> None:
        for instance in INSTANCES:
            self.start(instance)
        for instance in INSTANCES:
            self._listening(instance)
        env = {
            **os.environ,
            "HAPROXY_BIND": f"127.0.0.1:{self.front}",
            **{f"CONNECTOR_{n}": f"127.0.0.1:{self.ports[n]}" for n in INSTANCES},
        }
        self.haproxy = subprocess.Popen(
            [HAPROXY, "-db", "-f", str(ROOT / "deploy/haproxy.cfg")],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=open(f"{tempfile.gettempdir()}/{self.name}-haproxy.log", "ab"),
        )

    def _listening(self, instance: int, tries: int = 3) -> None:
        """Wait until the instance listens. A free port can be taken between our
        look and its bind (an outgoing connection's local port): then it exits,
        and starts again on another port."""
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with (
                contextlib.suppress(OSError),
                socket.create_connection(("127.0.0.1", self.ports[instance]), timeout=1),
            ):
                return
            if self.processes[instance].poll() is not None and tries > 0:
                self.ports[instance] = free_port()
                self.start(instance)
                return self._listening(instance, tries - 1)
            time.sleep(0.05)
        raise AssertionError(f"instance {instance} does not listen")

    def kill(self, instance: int) -> None:
        self.processes[instance].send_signal(signal.SIGKILL)
        self.processes[instance].wait(10)

    def stop(self) -> None:
        for process in self.processes.values():
            if process.poll() is None:
                process.terminate()
        for process in self.processes.values():
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(15)
        if self.haproxy is not None:
            self.haproxy.terminate()
            self.haproxy.wait(10)

    def url(self, cp_id: str, instance: int | None = None) -> str:
        port = self.front if instance is None else self.ports[instance]
        return f"ws://127.0.0.1:{port}/ocpp/{cp_id}"


@pytest.fixture
def site(mosquitto: Mosquitto, name: str) -> Iterator[Site]:
    if not os.path.exists(HAPROXY):
        pytest.fail("HAProxy is not installed: `make test` installs it from Debian")
    running = Site(mosquitto, name)
    running.start_all()
    yield running
    running.stop()


async def ports_open(site: Site) -> None:
    async def is_open(port: int) -> bool:
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            return False
        writer.close()
        return True

    for port in [*site.ports.values(), site.front]:
        for _ in range(300):
            if await is_open(port):
                break
            await asyncio.sleep(0.05)
        else:
            raise AssertionError(f"port {port} did not open")
    # HAProxy's checks found them all (until then, it hashes over fewer).
    log = Path(f"{tempfile.gettempdir()}/{site.name}-haproxy.log")

    def all_up() -> bool:
        text = log.read_text()
        # Every instance listens before HAProxy starts, so its checks find them
        # up; a server it saw down is back once it says so.
        return "DOWN" not in text or "3 active and 0 backup servers online" in text

    await asyncio.sleep(0.5)
    await eventually(all_up, 15)


class Station:
    """A simulated station that keeps reconnecting (through HAProxy, or straight
    to one instance), as a real one does; `sims` holds each connection's simulator."""

    def __init__(self, url: str, cp_id: str) -> None:
        self.url = url
        self.cp_id = cp_id
        self.sims: list[SimulatedChargePoint] = []
        self.connected = asyncio.Event()
        self.running = True
        self._reader: asyncio.Task[None] | None = None
        self.task = asyncio.create_task(self._run())

    @property
    def sim(self) -> SimulatedChargePoint:
        return self.sims[-1]

    async def _run(self) -> None:
        while self.running:
            try:
                async with connect(self.url, subprotocols=["ocpp1.6"], open_timeout=3) as ws:  # type: ignore[list-item]
                    sim = SimulatedChargePoint(self.cp_id, ws, SimulatorOptions(meter_interval=0))
                    self.sims.append(sim)
                    self._reader = reader = asyncio.create_task(sim.start())
                    await sim.boot()
                    await sim.send_all_status()
                    self.connected.set()
                    await reader
            except (OSError, ConnectionClosed, InvalidHandshake, TimeoutError):
                pass  # refused (HAProxy has no server up yet), or closed: again
            self.connected.clear()
            await asyncio.sleep(0.3)

    async def close(self) -> None:
        self.running = False
        self.task.cancel()
        if self._reader is not None:
            self._reader.cancel()
        with contextlib.suppress(BaseException):
            await self.task


@contextlib.asynccontextmanager
async def stations(site: Site, ids: list[str]) -> AsyncIterator[dict[str, Station]]:
    running = {cp: Station(site.url(cp), cp) for cp in ids}
    try:
        for station in running.values():
            await asyncio.wait_for(station.connected.wait(), 20)
        yield running
    finally:
        for station in running.values():
            await station.close()


def texts(probe: Probe, topic: str) -> list[str]:
    """Plain-text payloads (presence, status), oldest first."""
    with probe._lock:
        return [p.decode() for t, p, _ in probe.messages if t == topic]


async def text_becomes(probe: Probe, topic: str, text: str, timeout: float = 15) -> None:
    await eventually(lambda: texts(probe, topic)[-1:] == [text], timeout=timeout)


def set_profile_calls(station: Station) -> int:
    return sum(len(sim.calls("SetChargingProfile")) for sim in station.sims)


@pytest.mark.within(180)
async def test_one_connector_from_three_instances(site: Site, probe: Probe, name: str) -> None:
    """Presence, the union of datapoints, commands exactly once, unique
    transaction ids, and a kill -9 that heals."""
    ids = [f"CP_{i}" for i in range(9)]

    probe.map(
        sensors=[f"{cp}__connected" for cp in ids],
        actuators=[LIMIT.format(cp=cp) for cp in ids],
    )
    await ports_open(site)
    async with stations(site, ids) as running:
        # Presence.
        for n in INSTANCES:
            await text_becomes(probe, f"{name}/instances/{n}", "online")
        assert texts(probe, f"{name}/status")[-1] == "online"
        # Logs name their instance.
        emitters = {m["emitter"] for m in probe.received(f"{name}/logs")}
        assert {e.rsplit("@", 1)[-1] for e in emitters} == {"0", "1", "2"}, emitters
        # The stations are spread, and each is held by exactly one instance.
        owners = await holders(probe, name, ids)
        assert len(set(owners.values())) > 1, owners
        # One datapoint list with every station's keys, from every instance.
        listed = await probe.wait_for(
            f"{name}/available_datapoints",
            lambda m: all(f"{cp}__BootNotification__chargePointModel" in m["sensor"] for cp in ids),
        )
        assert all(LIMIT.format(cp=cp) in listed["actuator"] for cp in ids)
        # Commands reach each station exactly once.
        await asyncio.sleep(1.5)  # set-up calls done
        before = {cp: set_profile_calls(s) for cp, s in running.items()}
        for cp in ids:
            probe.command(probe.actuator_topic(LIMIT.format(cp=cp)), 6000)
        await eventually(
            lambda: all(s.sim.limit_w(1) == 6000 for s in running.values()), timeout=15
        )
        await asyncio.sleep(1.0)
        after = {cp: set_profile_calls(s) - before[cp] for cp, s in running.items()}
        assert after == dict.fromkeys(ids, 1), after
        # Transaction ids are unique across instances.
        started = [await s.sim.start_transaction(1) for s in running.values()]
        assert len(set(started)) == len(started)
        assert len({i % 64 for i in started}) > 1

        # kill -9 of the instance holding CP_0: its stations come back through
        # HAProxy elsewhere, get their limit again, and stay connected.
        victim = owners["CP_0"]
        moved = [cp for cp, n in owners.items() if n == victim]
        site.kill(victim)
        await text_becomes(probe, f"{name}/instances/{victim}", "offline")
        for cp in moved:

            def limited_again(moved_to: Any = running[cp]) -> bool:
                return len(moved_to.sims) > 1 and moved_to.sim.limit_w(1) == 6000

            await eventually(limited_again, timeout=30)
        await asyncio.sleep(DEAD_GRACE_AND_MARGIN)
        for cp in ids:
            last = probe.received(probe.value_topic(f"{cp}__connected"))[-1]
            assert last["value"] is True, cp
        new_owners = await holders(probe, name, ids)
        assert victim not in new_owners.values()
        # The status stays online: the survivors answered the victim's will.
        assert texts(probe, f"{name}/status")[-1] == "online"
        # The datapoint list kept every key.
        listed = probe.received(f"{name}/available_datapoints")[-1]
        assert all(f"{cp}__connected" in listed["sensor"] for cp in ids)


DEAD_GRACE_AND_MARGIN = 11.0


async def holders(probe: Probe, name: str, ids: list[str]) -> dict[str, int]:
    """The instance of each station's latest claim, once every station has one."""
    found: dict[str, int] = {}

    def collect() -> bool:
        for cp in ids:
            claims = probe.received(f"{name}/owners/{cp}")
            if claims and claims[-1]["instance"] is not None:
                found[cp] = claims[-1]["instance"]
        return len(found) == len(ids)

    await eventually(collect, timeout=15)
    return dict(found)


@pytest.mark.within(120)
async def test_a_newer_connection_on_another_instance_takes_over(
    site: Site, probe: Probe, name: str
) -> None:
    probe.map(sensors=["CP_T__connected"], actuators=[LIMIT.format(cp="CP_T")])
    await ports_open(site)
    await text_becomes(probe, f"{name}/instances/2", "online")
    first = Station(site.url("CP_T", 0), "CP_T")
    await asyncio.wait_for(first.connected.wait(), 15)
    first.running = False  # it must not reconnect: the point is the takeover
    second = Station(site.url("CP_T", 1), "CP_T")
    try:
        await asyncio.wait_for(second.connected.wait(), 15)
        # The older connection is closed within 2 s.
        await asyncio.wait_for(first.task, 2.5)
        owners = await holders(probe, name, ["CP_T"])
        assert owners == {"CP_T": 1}
        # connected never went false.
        assert all(m["value"] is True for m in probe.received(probe.value_topic("CP_T__connected")))
        # A command now reaches the new connection only.
        probe.command(probe.actuator_topic(LIMIT.format(cp="CP_T")), 5000)
        await eventually(lambda: second.sim.limit_w(1) == 5000)
        assert not first.sim.calls("SetChargingProfile")[-1:] or first.sim.limit_w(1) != 5000
    finally:
        await first.close()
        await second.close()


@pytest.mark.within(120)
async def test_a_station_of_a_dead_instance_that_does_not_return_is_disconnected(
    site: Site, probe: Probe
) -> None:
    probe.map(sensors=["CP_D__connected"])
    await ports_open(site)
    lonely = Station(site.url("CP_D", 2), "CP_D")
    await asyncio.wait_for(lonely.connected.wait(), 15)
    await lonely.close()  # will not come back
    # Its connection ended cleanly (a release): connected false at once.
    assert await probe.value("CP_D__connected", lambda v: v is False) is False
    probe.clear()
    again = Station(site.url("CP_D", 2), "CP_D")
    await asyncio.wait_for(again.connected.wait(), 15)
    again.running = False
    assert await probe.value("CP_D__connected", lambda v: v is True) is True
    site.kill(2)
    # Within 30 s of the kill, connected=false, from a surviving instance.
    started = asyncio.get_running_loop().time()
    await eventually(
        lambda: any(
            m["value"] is False for m in probe.received(probe.value_topic("CP_D__connected"))
        ),
        timeout=30,
    )
    assert asyncio.get_running_loop().time() - started < 30
    await again.close()


@pytest.mark.within(150)
async def test_workers_share_the_port_restart_and_stop_gracefully(
    mosquitto: Mosquitto, probe: Probe, name: str
) -> None:
    """OCPP_WORKERS=2: two instances on one port; a killed worker is started
    again; SIGTERM stops them all, the last one says offline, exit code 0."""
    port, http_port = free_port(), free_port()
    env = {
        **os.environ,
        "CONNECTOR_NAME": name,
        "MQTT_BROKER_HOST": "127.0.0.1",
        "MQTT_BROKER_PORT": str(mosquitto.port),
        "OCPP_HOST": "127.0.0.1",
        "OCPP_PORT": str(port),
        "OCPP_WORKERS": "2",
        "OCPP_BOOT_WAIT": "1",
        "HTTP_PORT": str(http_port),
        "HTTP_HOST": "127.0.0.1",
    }
    supervisor = start_main(env, f"{tempfile.gettempdir()}/{name}-workers.log")
    try:
        for n in (0, 1):
            await text_becomes(probe, f"{name}/instances/{n}", "online", timeout=20)
        url = f"ws://127.0.0.1:{port}/ocpp"
        ids = [f"CP_W{i}" for i in range(8)]
        running = {cp: Station(f"{url}/{cp}", cp) for cp in ids}
        try:
            for station in running.values():
                await asyncio.wait_for(station.connected.wait(), 20)
            owners = await holders(probe, name, ids)
            assert set(owners.values()) <= {0, 1}
            # One HTTP server shows both workers (README "Operations").
            await every_worker_shown(http_port, ids)
            # A worker killed is started again, as the same instance.
            pid = worker_pid(supervisor.pid, 1)
            os.kill(pid, signal.SIGKILL)
            await text_becomes(probe, f"{name}/instances/1", "offline", timeout=15)
            await text_becomes(probe, f"{name}/instances/1", "online", timeout=20)
            assert worker_pid(supervisor.pid, 1) != pid
            for station in running.values():
                await asyncio.wait_for(station.connected.wait(), 20)
        finally:
            for station in running.values():
                station.running = False
            supervisor.send_signal(signal.SIGTERM)
            code = await asyncio.get_running_loop().run_in_executor(None, supervisor.wait, 30)
            for station in running.values():
                await station.close()
        assert code == 0
        await text_becomes(probe, f"{name}/status", "offline", timeout=10)
        for n in (0, 1):
            assert texts(probe, f"{name}/instances/{n}")[-1] == "offline"
    finally:
        if supervisor.poll() is None:
            supervisor.kill()


async def every_worker_shown(port: int, ids: list[str]) -> None:
    async with aiohttp.ClientSession() as session:
        for _ in range(100):
            async with session.get(f"http://127.0.0.1:{port}/readyz") as response:
                if response.status == 200:
                    break
            await asyncio.sleep(0.2)
        assert response.status == 200
        async with session.get(f"http://127.0.0.1:{port}/metrics") as response:
            text = await response.text()
        connected = {
            sample.labels["worker"]: sample.value
            for family in text_string_to_metric_families(text)
            if family.name == "ocpp_stations_connected"
            for sample in family.samples
            if sample.labels["version"] == "1.6"
        }
        assert set(connected) == {"0", "1"} and sum(connected.values()) == len(ids)
        async with session.get(f"http://127.0.0.1:{port}/status.json?size=5") as response:
            stations = (await response.json())["stations"]
        assert stations["connected"] == len(ids) and stations["pages"] == 2
        assert [item["id"] for item in stations["items"]] == sorted(ids)[:5]


def start_main(env: dict[str, str], log_file: str) -> subprocess.Popen[bytes]:
    """The connector's entry point as its own process, its stderr to log_file."""
    with open(log_file, "ab") as stderr:
        return subprocess.Popen(
            [sys.executable, "source/connector/main.py"], cwd=ROOT, env=env, stderr=stderr
        )


def worker_pid(supervisor: int, instance: int) -> int:
    """The pid of the supervisor's child that runs the instance."""
    for child in Path(f"/proc/{supervisor}/task/{supervisor}/children").read_text().split():
        environ = Path(f"/proc/{child}/environ").read_bytes().split(b"\0")
        if f"CONNECTOR_INSTANCE={instance}".encode() in environ:
            return int(child)
    raise AssertionError(f"no worker runs instance {instance}")


@pytest.mark.within(150)
async def test_a_broker_restart_with_three_instances_loses_no_value(
    tmp_path: Path, name: str
) -> None:
    """README "Reliability" with several instances: values sent while Mosquitto is
    down for 5 s all arrive, in order, from whichever instance holds each station."""
    broker = Mosquitto(
        tmp_path, f"allow_anonymous true\npersistence true\npersistence_location {tmp_path}/\n"
    )
    broker.start()
    site = Site(broker, name)
    site.start_all()
    ids = [f"CP_{i}" for i in range(6)]

    try:
        probe = Probe(broker.port, name, session=f"restart-probe-{name}")
        try:
            probe.map(sensors=[energy_key(cp) for cp in ids])
            await ports_open(site)
            async with stations(site, ids) as running:
                owners = await holders(probe, name, ids)
                assert len(set(owners.values())) > 1
                await asyncio.sleep(1.5)  # set-up done
                sent: dict[str, list[float]] = {cp: [] for cp in ids}
                stop = asyncio.Event()
                senders = [
                    asyncio.create_task(send_steadily(s.sim, sent[cp], stop))
                    for cp, s in running.items()
                ]
                await asyncio.sleep(1)
                broker.stop()
                await asyncio.sleep(5)
                broker.start()
                await asyncio.sleep(2)
                stop.set()
                await asyncio.gather(*senders)

                def complete() -> bool:
                    return all(received_values(probe, energy_key(cp)) == sent[cp] for cp in ids)

                await eventually(complete, timeout=40)
                assert all(len(values) > 15 for values in sent.values())
        finally:
            probe.close()
    finally:
        site.stop()
        broker.stop()
