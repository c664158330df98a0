"""Issue 17 end to end: no frame, MQTT message or broker blip may freeze the
connector, mislead it or lose data.

Each test repeats one input of the issue against a running connector, over real
WebSockets and a real Mosquitto, and each failed on 0.8.0. Hostile frames go
over a plain WebSocket (RawStation): the ocpp library's client validates what
it sends. Every wait is bounded; no test asserts a timing.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from ocpp.v16 import call
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from connector.bridge import Bridge
from connector.core.transaction_ids import INT32_MAX
from connector.settings import parse_ocpp_config
from connector.simulator.core import SimulatorOptions
from connector.tests.helpers import (
    WAIT,
    Mosquitto,
    Probe,
    StartConnector,
    StartStation,
    connector_settings,
    eventually,
    free_port,
    run,
    running_connector,
    simulated_station,
    station_url,
)

pytestmark = pytest.mark.broker

ROOT = Path(__file__).resolve().parents[3]
QUIET = SimulatorOptions(meter_interval=0)
BOOT_16 = {"chargePointVendor": "V", "chargePointModel": "M"}
BOOT_2 = {"chargingStation": {"vendorName": "V", "model": "M"}, "reason": "PowerUp"}


def now_iso() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def strict_loads(payload: bytes | str) -> Any:
    """json.loads as a strict reader (BEMCom's API, JavaScript) reads: no NaN, no Infinity."""

    def refuse(name: str) -> Any:
        raise ValueError(f"{name} is not JSON")

    return json.loads(payload, parse_constant=refuse)


class RawStation:
    """A station speaking raw OCPP-J frames, hostile ones included. It answers the
    connector's calls with `answers[action]` (or a plain Accepted), unless silent."""

    def __init__(
        self,
        ws: ClientConnection,
        answers: dict[str, dict[str, Any]] | None = None,
        silent: bool = False,
    ) -> None:
        self.ws = ws
        self.answers = {"GetConfiguration": {"configurationKey": []}, **(answers or {})}
        self.silent = silent
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self._waiting: dict[str, asyncio.Future[list[Any]]] = {}
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        with contextlib.suppress(ConnectionClosed):
            async for text in self.ws:
                frame = json.loads(text)
                if frame[0] == 2:
                    self.calls.append((frame[2], frame[3]))
                    if not self.silent:
                        answer = self.answers.get(frame[2], {"status": "Accepted"})
                        await self.ws.send(json.dumps([3, frame[1], answer]))
                elif frame[1] in self._waiting:
                    self._waiting.pop(frame[1]).set_result(frame)

    def called(self, action: str) -> list[dict[str, Any]]:
        return [payload for name, payload in self.calls if name == action]

    async def send(self, text: str, unique_id: str) -> list[Any]:
        """Send a frame and return the answer with its message id."""
        future: asyncio.Future[list[Any]] = asyncio.get_running_loop().create_future()
        self._waiting[unique_id] = future
        await self.ws.send(text)
        return await asyncio.wait_for(future, WAIT)

    async def call(self, action: str, payload: dict[str, Any]) -> list[Any]:
        unique_id = uuid.uuid4().hex[:20]
        return await self.send(json.dumps([2, unique_id, action, payload]), unique_id)

    def close(self) -> None:
        self._reader.cancel()


@contextlib.asynccontextmanager
async def raw_station(
    bridge: Bridge,
    cp_id: str,
    version: str = "1.6",
    boot: bool = True,
    **options: Any,
) -> AsyncIterator[RawStation]:
    async with connect(station_url(bridge, cp_id), subprotocols=[f"ocpp{version}"]) as ws:  # type: ignore[list-item]
        station = RawStation(ws, **options)
        try:
            if boot:
                answer = await station.call(
                    "BootNotification", BOOT_16 if version == "1.6" else BOOT_2
                )
                assert answer[0] == 3, answer
            yield station
        finally:
            station.close()


# ---- 1. numbers that cost unbounded time, or lose the frame's other values ----


async def test_extreme_numbers_are_skipped_and_the_frames_other_values_kept(
    probe: Probe,
    caplog: pytest.LogCaptureFixture,
    start_connector: StartConnector,
    start_station: StartStation,
) -> None:
    power = "CP2__MeterValues__1__Power.Active.Import__W"
    probe.map(sensors=[power])

    caplog.set_level(logging.WARNING)
    async with (
        start_connector() as bridge,
        raw_station(bridge, "CP2", "2.0.1") as station,
        start_station(bridge, "BY", QUIET) as bystander,
    ):
        answer = await station.call(
            "MeterValues",
            {
                "evseId": 1,
                "meterValue": [
                    {
                        "timestamp": now_iso(),
                        "sampledValue": [
                            # Legal: the schema bounds no multiplier. 10^7 as an
                            # integer power blocked the event loop for seconds.
                            {"value": 13, "unitOfMeasure": {"multiplier": 10**7}},
                            {"value": 1e308, "unitOfMeasure": {"unit": "kWh"}},
                            {"value": 10**400},
                            {
                                "value": 7,
                                "measurand": "Power.Active.Import",
                                "unitOfMeasure": {"unit": "W"},
                            },
                        ],
                    }
                ],
            },
        )
        assert answer[0] == 3, answer  # a CALLRESULT, not an InternalError
        assert await probe.value(power) == 7
        # Another station is served as ever.
        await asyncio.wait_for(bystander.call(call.Heartbeat()), WAIT)
    skipped = [r.getMessage() for r in caplog.records if "skipped a sampled value" in r.msg]
    assert len(skipped) == 3
    assert all(len(message) < 300 for message in skipped)  # never 400 digits


# ---- 3. one station cannot exhaust memory or hold the shutdown --------------------


async def test_a_boot_flood_is_read_slowly_and_costs_bounded_tasks(
    mosquitto: Mosquitto, name: str, caplog: pytest.LogCaptureFixture
) -> None:
    """BootNotifications with 50 in flight from a station that never answers our
    calls: each boot used to start a setup task, 380,000 of them in a minute."""
    rate = 20.0
    seconds = 3.0

    caplog.set_level(logging.WARNING)
    settings = connector_settings(name, mosquitto.port, ocpp_max_frames_per_second=rate)
    async with running_connector(settings) as bridge:
        # The baseline once the MQTT faces' own tasks (heartbeat, ...) have started.
        await asyncio.sleep(0.5)
        before = len(asyncio.all_tasks())
        most = before
        answered = 0
        async with raw_station(bridge, "FLOOD", silent=True, boot=False) as station:
            frame = json.dumps(BOOT_16)
            deadline = time.monotonic() + seconds
            pending: set[asyncio.Task[list[Any]]] = set()
            while time.monotonic() < deadline:
                while len(pending) < 50:
                    unique_id = uuid.uuid4().hex[:20]
                    text = f'[2,"{unique_id}","BootNotification",{frame}]'
                    pending.add(asyncio.create_task(station.send(text, unique_id)))
                done, pending = await asyncio.wait(pending, timeout=0.1)
                answered += sum(1 for task in done if not task.exception())
                most = max(most, len(asyncio.all_tasks()))
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        # Read at the rate, after a burst of two seconds' worth.
        assert answered <= rate * (seconds + 2) + 20, answered
        # A few tasks for the station (its setup, one waiting), not one per boot.
        assert most - before < 60, (before, most)
        await eventually(lambda: "FLOOD" not in bridge.central.stations)  # type: ignore[union-attr]
        await eventually(lambda: len(asyncio.all_tasks()) <= before + 2)
    assert "OCPP_MAX_FRAMES_PER_SECOND" in caplog.text


def test_sigterm_ends_the_connector_while_a_station_floods(mosquitto: Mosquitto, name: str) -> None:
    """SIGTERM under a boot flood, in the process as deployed: the closing handshake
    of a station that never answers must not hold the shutdown (README "Reliability")."""
    port = free_port()
    env = {
        **os.environ,
        "HTTP_PORT": "0",
        "CONNECTOR_NAME": name,
        "MQTT_BROKER_HOST": "127.0.0.1",
        "MQTT_BROKER_PORT": str(mosquitto.port),
        "OCPP_HOST": "127.0.0.1",
        "OCPP_PORT": str(port),
    }
    process = subprocess.Popen(
        [sys.executable, "source/connector/main.py"],
        cwd=ROOT,
        env=env,
        stderr=subprocess.DEVNULL,
    )

    async def flood() -> float:
        deadline = time.monotonic() + 20
        while True:
            try:
                ws = await connect(f"ws://127.0.0.1:{port}/FLOOD", subprotocols=["ocpp1.6"])  # type: ignore[list-item]
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.1)
        frame = json.dumps(BOOT_16)
        for n in range(300):  # never reads: its buffers fill, as a stuck station's do
            await ws.send(f'[2,"{n}","BootNotification",{frame}]')
        started = time.monotonic()
        process.send_signal(signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            await asyncio.to_thread(process.wait, 15)
        ws.transport.abort()
        return time.monotonic() - started

    try:
        took = run(flood())
        assert process.returncode == 0
        assert took < 5.5, took  # README "Reliability": at most 5 s, whatever the station does
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(10)


@pytest.mark.within(90)
async def test_commands_to_a_silent_station_are_bounded(
    mosquitto: Mosquitto, probe: Probe, name: str, caplog: pytest.LogCaptureFixture
) -> None:
    """5,000 commands for a station that never answers each became a task."""

    caplog.set_level(logging.INFO)
    settings = connector_settings(
        name, mosquitto.port, mqtt_direct_topics=True, ocpp_config=parse_ocpp_config("all")
    )
    async with running_connector(settings) as bridge:
        async with raw_station(bridge, "MUTE", silent=True):
            before = len(asyncio.all_tasks())
            direct = f"{name}/direct/MUTE"
            for n in range(600):
                probe.client.publish(f"{direct}/execute_trigger_message/set", "4")
                probe.client.publish(f"{direct}/execute_get_configuration/set", f"Key{n}")
                probe.client.publish(f"{direct}/execute_send_charging_profile/set", str(1000 + n))
            probe.publish(f"{direct}/execute_trigger_message/set", b"3")
            await probe.wait_for_log("commands are waiting for the station already")
            await eventually(lambda: (bridge.charging.store.get("MUTE", 0) or (0,))[0] == 1599)
            # One task per waiting command (at most 32), not one per command.
            assert len(asyncio.all_tasks()) - before < 45


# ---- 4. commands and kept state at scale on a broker that drops beyond its queue ----


@pytest.fixture
def tight(tmp_path: Path) -> Any:
    """Mosquitto's per-client queue, shrunk so that 150 stations do what 3,000 do
    on its defaults (20 in flight, 1,000 queued): it drops QoS 1 beyond it."""
    broker = Mosquitto(
        tmp_path,
        "allow_anonymous true\npersistence false\nmax_inflight_messages 2\n"
        "max_queued_messages 10\n",
    )
    broker.start()
    yield broker
    broker.stop()


@pytest.mark.within(150)
async def test_a_burst_of_commands_and_kept_limits_reach_every_station(
    tight: Mosquitto, name: str, start_station: StartStation
) -> None:
    cp_ids = [f"CP{n}" for n in range(150)]

    probe = Probe(tight.port, name)
    settings = connector_settings(name, tight.port, mqtt_direct_topics=True)
    try:
        async with running_connector(settings) as bridge:
            async with contextlib.AsyncExitStack() as stack:
                stations = [
                    await stack.enter_async_context(start_station(bridge, cp, QUIET))
                    for cp in cp_ids
                ]
                for n, cp in enumerate(cp_ids):  # all at once
                    topic = f"{name}/direct/{cp}/execute_send_charging_profile/set"
                    probe.client.publish(topic, str(4000 + n), qos=1)
                await eventually(lambda: all(s.calls("SetChargingProfile") for s in stations), 30)
        # A restarted connector reads every kept limit back through the same
        # queue, and applies each again.
        async with running_connector(settings) as bridge:
            store = bridge.charging.store
            await eventually(lambda: all(store.of_station(cp) for cp in cp_ids), 20)
            async with contextlib.AsyncExitStack() as stack:
                stations = [
                    await stack.enter_async_context(start_station(bridge, cp, QUIET))
                    for cp in cp_ids
                ]
                await eventually(lambda: all(s.calls("SetChargingProfile") for s in stations), 30)
                limits = {s.id: s.limit_w(0) for s in stations}
                assert limits == {cp: 4000 + n for n, cp in enumerate(cp_ids)}
    finally:
        probe.close()


# ---- 5. names a station chose have a byte budget ---------------------------------


async def test_a_name_of_60000_characters_never_becomes_a_key(
    mosquitto: Mosquitto, probe: Probe, name: str
) -> None:
    long_field = "k" * 60_000

    settings = connector_settings(name, mosquitto.port, mqtt_direct_topics=True)
    async with running_connector(settings) as bridge:
        for n in range(3):
            async with raw_station(bridge, f"LONG{n}", "2.0.1", boot=False) as station:
                boot = {**BOOT_2, "customData": {"vendorId": "x", long_field: 1}}
                assert (await station.call("BootNotification", boot))[0] == 3
        await probe.wait_for_log("LONG2: dropped a key of 600", "characters (more than 400)")
        document = await probe.wait_for(
            f"{name}/available_datapoints",
            lambda listed: "LONG2__BootNotification__chargingStation.model" in listed["sensor"],
        )
    assert all(len(key) < 400 for key in document["sensor"])
    assert len(json.dumps(document)) < 20_000


# ---- 7. one message must not orphan a live instance's stations ---------------------


@pytest.mark.within(90)
async def test_a_forged_offline_or_claim_takes_no_station_from_a_live_instance(
    mosquitto: Mosquitto, probe: Probe, name: str, start_station: StartStation
) -> None:
    from connector.mqtt import cluster

    settings = connector_settings(name, mosquitto.port, mqtt_direct_topics=True)
    async with (
        running_connector(replace(settings, connector_instance=0)) as zero,
        running_connector(replace(settings, connector_instance=1)) as one,
    ):
        assert zero.cluster is not None and one.cluster is not None
        await eventually(lambda: zero.cluster.live == {0, 1} == one.cluster.live)  # type: ignore[union-attr]
        async with start_station(one, "CP1", QUIET) as station:
            await eventually(lambda: one.cluster.owns("CP1"))  # type: ignore[union-attr]
            probe.clear()
            # What the broker sends when instance 1's presence connection blips.
            probe.publish(f"{name}/instances/1", b"offline")
            await asyncio.sleep(cluster.DEAD_GRACE + 2)
            connected = probe.received(f"{name}/direct/CP1/connected")
            assert all(message["value"] is True for message in connected), connected
            assert one.cluster.owns("CP1")
            probe.command(f"{name}/direct/CP1/execute_trigger_message/set", 3)
            await eventually(lambda: station.calls("TriggerMessage") != [])
            # Forged claims: of an instance that does not run, and of one that does.
            for forged in (7, 0):
                claim = {"instance": forged, "connection": f"forged{forged}"}
                probe.publish(f"{name}/owners/CP1", claim)
                await asyncio.sleep(cluster.CLAIM_CONFIRM + 1)
                assert "CP1" in one.central.stations  # type: ignore[union-attr]
                await eventually(lambda: one.cluster.owns("CP1"))  # type: ignore[union-attr]
            await asyncio.wait_for(station.call(call.Heartbeat()), WAIT)


# ---- 8. retained state is validated -------------------------------------------------


async def test_a_forged_last_transaction_id_is_ignored(
    mosquitto: Mosquitto, probe: Probe, name: str
) -> None:
    probe.publish(f"{name}/state/last_transaction_id", INT32_MAX, retain=True)
    probe.publish(f"{name}/state/boot_records/CP2", {"ocpp": "9.9"}, retain=True)

    try:
        async with (
            running_connector(connector_settings(name, mosquitto.port)) as bridge,
            simulated_station(bridge, "CP1", QUIET) as station,
        ):
            transaction_id = await station.start_transaction(1)
            assert 0 < transaction_id < INT32_MAX
            await probe.wait_for_log("ignored state/last_transaction_id")
            await probe.wait_for_log("CP2: ignored an invalid boot record")
    finally:
        probe.publish(f"{name}/state/last_transaction_id", b"", retain=True)
        probe.publish(f"{name}/state/boot_records/CP2", b"", retain=True)


# ---- 9, 12. a station's names never break MQTT; only strict JSON goes out ------------


async def test_names_with_wildcards_and_a_number_no_float_holds(
    mosquitto: Mosquitto, probe: Probe, name: str, start_station: StartStation
) -> None:
    settings = connector_settings(name, mosquitto.port, mqtt_direct_topics=True)
    async with running_connector(settings) as bridge:
        # A kept limit, then a station whose configuration has a key with '#'.
        probe.command(f"{name}/direct/CP1/execute_send_charging_profile/set", 7000)
        await probe.wait_for_log("CP1: not connected; the limit")
        options = SimulatorOptions(meter_interval=0, extra_config={"Vendor#Key": "1"})
        async with start_station(bridge, "CP1", options) as station:
            await eventually(lambda: station.limit_w(0) == 7000)
            await probe.wait_for(f"{name}/direct/CP1/Configuration/Vendor%23Key")
        async with raw_station(bridge, "CP2", "2.0.1") as station2:
            report = {
                "requestId": 1,
                "generatedAt": now_iso(),
                "seqNo": 0,
                "reportData": [
                    {
                        "component": {"name": "a+b"},
                        "variable": {"name": "v/w"},
                        "variableAttribute": [{"value": "1e999"}],
                    }
                ],
            }
            assert (await station2.call("NotifyReport", report))[0] == 3
            message = await probe.wait_for(f"{name}/direct/CP2/Variable/a%2Bb/v%2Fw")
            assert message["value"] == "1e999"  # as sent: no float holds it
        key = "CP2__Variable__a+b__v/w"
        await probe.wait_for(f"{name}/available_datapoints", lambda d: key in d["sensor"])
    for _, payload, _ in probe.messages:
        try:
            json.loads(payload)
        except ValueError:
            continue  # not JSON at all (`online` on <name>/status)
        strict_loads(payload)  # Infinity, NaN: what a strict reader refuses


# ---- 10. ids that make keys ambiguous ----------------------------------------------------


async def test_an_id_ending_in_underscore_is_refused(
    start_connector: StartConnector, start_station: StartStation
) -> None:
    async with start_connector() as bridge:
        async with start_station(bridge, "CP1", QUIET):
            with pytest.raises(InvalidStatus) as refused:
                async with connect(station_url(bridge, "CP1_"), subprotocols=["ocpp1.6"]):  # type: ignore[list-item]
                    pass
            assert refused.value.response.status_code == 400


# ---- 11. a retained command is no command ------------------------------------------------


@pytest.mark.within(90)
async def test_a_retained_command_on_a_mapped_topic_never_runs(
    mosquitto: Mosquitto, probe: Probe, name: str
) -> None:
    key = "CP1__execute_reset"
    probe.map(actuators=[key])
    probe.publish(
        probe.actuator_topic(key),
        {"value": "Soft", "timestamp": int(time.time() * 1000)},
        retain=True,
    )

    try:
        settings = connector_settings(name, mosquitto.port, ocpp_config=("execute_reset",))
        for _ in range(2):  # a restart of the connector hears it again, retained
            async with running_connector(settings) as bridge:
                async with simulated_station(bridge, "CP1", QUIET) as station:
                    await probe.wait_for_log("ignored a retained message on actuator topic")
                    probe.clear()
                    await asyncio.sleep(0.5)
                    assert station.calls("Reset") == []
        # A command, sent as commands are, still works.
        async with running_connector(settings) as bridge:
            async with simulated_station(bridge, "CP1", QUIET) as station:
                probe.command(probe.actuator_topic(key), "Soft")
                await eventually(lambda: len(station.calls("Reset")) == 1)
    finally:
        probe.publish(probe.actuator_topic(key), b"", retain=True)


async def test_a_command_heard_before_the_ocpp_server_runs_is_no_traceback(
    mosquitto: Mosquitto, name: str, caplog: pytest.LogCaptureFixture
) -> None:
    """The MQTT side starts first: commands that arrive before the OCPP server runs
    used to hit an assert. A publisher sends them all through the start."""
    caplog.set_level(logging.WARNING)
    probe = Probe(mosquitto.port, name)
    stop = asyncio.Event()

    async def hammer() -> None:
        while not stop.is_set():
            probe.client.publish(f"{name}/direct/CP1/execute_trigger_message/set", "4")
            probe.client.publish(f"{name}/direct/CP1/execute_send_charging_profile/set", "5000")
            await asyncio.sleep(0.001)

    try:
        task = asyncio.create_task(hammer())
        await asyncio.sleep(0.2)
        settings = connector_settings(name, mosquitto.port, mqtt_direct_topics=True)
        async with running_connector(settings):
            await asyncio.sleep(0.2)
        stop.set()
        await task
    finally:
        probe.close()
    assert "not connected" in caplog.text
    assert "failed to handle a message" not in caplog.text
    assert "AssertionError" not in caplog.text


# ---- 13. secrets ---------------------------------------------------------------------


async def test_a_stations_authorization_key_is_never_published_or_logged(
    mosquitto: Mosquitto,
    probe: Probe,
    name: str,
    caplog: pytest.LogCaptureFixture,
    start_station: StartStation,
) -> None:
    secret = "0123456789abcdef"

    caplog.set_level(logging.DEBUG)
    settings = connector_settings(
        name,
        mosquitto.port,
        mqtt_direct_topics=True,
        send_raw_message_to_db=True,
        ocpp_config=("execute_change_configuration",),
    )
    options = SimulatorOptions(meter_interval=0, extra_config={"AuthorizationKey": secret})
    async with running_connector(settings) as bridge:
        async with start_station(bridge, "CP1", options):
            await probe.wait_for(f"{name}/direct/CP1/Configuration/HeartbeatInterval")
            await probe.wait_for(
                f"{name}/raw_message_to_db", lambda m: "configurationKey" in json.dumps(m)
            )
            # An invalid command that carries a secret: the ERROR does not.
            probe.command(
                f"{name}/direct/CP1/execute_change_configuration/set",
                f"AuthorizationKey={secret}" + "x" * 600,
            )
            await probe.wait_for_log("invalid command")
            await asyncio.sleep(0.5)
    # The simulated station runs in this process: its own log lines (the ocpp
    # library logs each frame it sends) reach the log topic too. Not ours.
    leaks = [
        (topic, payload[:300])
        for topic, payload, _ in probe.messages
        if secret.encode() in payload
        and not topic.endswith("/set")  # the command the test sent
        and not (topic.endswith("/logs") and json.loads(payload)["emitter"] == "ocpp")
    ]
    assert leaks == []
    # The connector's own records (the simulated station logs what it sends).
    ours = [
        r.getMessage()
        for r in caplog.records
        if r.name.startswith(("connector", "websockets.server"))
    ]
    assert ours and not any(secret in message for message in ours)
    assert b"Configuration/AuthorizationKey" not in b"".join(
        topic.encode() for topic, _, _ in probe.messages
    )


# ---- handshakes count, and no address holds them all -----------------------------------


async def test_handshakes_in_progress_count_and_one_address_holds_few(
    mosquitto: Mosquitto, name: str, start_station: StartStation
) -> None:
    settings = connector_settings(
        name, mosquitto.port, ocpp_max_connections=5, ocpp_handshake_share_per_address=60
    )
    async with running_connector(settings) as bridge:
        assert bridge.central is not None
        # Clients that connect and never send a request, from another address
        # than the stations' (loopback has them all).
        idle = [
            socket.create_connection(
                ("127.0.0.1", bridge.central.port), source_address=("127.0.0.2", 0)
            )
            for _ in range(4)
        ]
        try:
            # The fourth from the same address is refused at once.
            idle[3].settimeout(WAIT)
            answer = await asyncio.to_thread(idle[3].recv, 100)
            assert answer.startswith(b"HTTP/1.1 503"), answer
            # Three idle ones and two stations fill the five places: the next is refused.
            async with (
                start_station(bridge, "CP1", QUIET),
                start_station(bridge, "CP2", QUIET),
            ):
                with pytest.raises(InvalidStatus) as refused:
                    async with start_station(bridge, "CP3", QUIET):
                        pass
                assert refused.value.response.status_code == 503
        finally:
            for sock in idle:
                sock.close()
        async with start_station(bridge, "CP3", QUIET) as station:
            await asyncio.wait_for(station.call(call.Heartbeat()), WAIT)


async def test_no_station_authentication_on_an_open_address_is_a_warning(
    mosquitto: Mosquitto,
    name: str,
    caplog: pytest.LogCaptureFixture,
    start_connector: StartConnector,
) -> None:
    caplog.set_level(logging.WARNING)
    async with start_connector():
        assert "stations are not authenticated" not in caplog.text  # loopback
    settings = connector_settings(name, mosquitto.port, ocpp_host="0.0.0.0")
    async with running_connector(settings):
        assert "any client that reaches 0.0.0.0" in caplog.text


# ---- deploy/mosquitto.acl keeps everyone but the connector out of its state ---------


@pytest.fixture
def with_acl(tmp_path: Path) -> Any:
    """Mosquitto with deploy/mosquitto.acl as it is, and its two users."""
    passwd = tmp_path / "passwd"
    passwd.touch()
    for user in ("connector", "bemcom"):
        subprocess.run(
            ["mosquitto_passwd", "-b", str(passwd), user, f"{user}-Secret-1"],
            check=True,
            capture_output=True,
            timeout=30,
        )
    broker = Mosquitto(
        tmp_path,
        f"allow_anonymous false\npassword_file {passwd}\npersistence false\n"
        f"acl_file {ROOT / 'deploy' / 'mosquitto.acl'}\n",
    )
    broker.start()
    yield broker
    broker.stop()


async def test_the_acl_example_lets_only_the_connector_write_its_state(
    with_acl: Mosquitto, start_station: StartStation
) -> None:
    name = "ocpp-connector"  # as the example names it

    bemcom = Probe(with_acl.port, name, username="bemcom", password="bemcom-Secret-1")
    watcher = Probe(with_acl.port, name, username="connector", password="connector-Secret-1")
    settings = connector_settings(
        name,
        with_acl.port,
        mqtt_direct_topics=True,
        mqtt_broker_username="connector",
        mqtt_broker_password="connector-Secret-1",
    )
    try:
        async with running_connector(settings) as bridge:
            async with start_station(bridge, "CP1", QUIET) as station:
                # bemcom reads what the connector publishes ...
                await bemcom.wait_for(f"{name}/direct/CP1/connected")
                # ... commands, as it may ...
                bemcom.command(f"{name}/direct/CP1/execute_trigger_message/set", 3)
                await eventually(lambda: station.calls("TriggerMessage") != [])
                # ... but cannot write the connector's state, claims or presence.
                for topic in (
                    f"{name}/state/last_transaction_id",
                    f"{name}/owners/CP1",
                    f"{name}/instances/1",
                    f"{name}/status",
                ):
                    bemcom.client.publish(topic, b"forged", qos=0)
                bemcom.publish(f"{name}/direct/CP1/execute_trigger_message/set", b"3")
                await eventually(lambda: len(station.calls("TriggerMessage")) == 2)
                forged = [t for t, p, _ in watcher.messages if p == b"forged"]
                assert forged == []
    finally:
        bemcom.close()
        watcher.close()


async def test_a_publish_the_broker_refuses_is_never_counted_as_delivered(
    with_acl: Mosquitto, caplog: pytest.LogCaptureFixture
) -> None:
    """paho 2.2.0 ignores a PUBREC's reason code and went on with PUBREL: a QoS 2
    message the broker refused counted as delivered."""
    from connector.mqtt.mqtt_link import MqttLink, MqttOptions

    caplog.set_level(logging.ERROR)
    loop = asyncio.get_running_loop()
    options = MqttOptions(username="connector", password="connector-Secret-1")
    link = MqttLink(
        "127.0.0.1", with_acl.port, "refused", loop, lambda: None, lambda *_: None, options
    )
    link.start()
    try:
        await eventually(link.connected.is_set)
        for qos in (1, 2):
            assert link.publish("not-ours/x", b"1", qos=qos) is True  # taken, for now
        await eventually(lambda: link.unacked == 0)
        assert link.dropped == 2
    finally:
        link.stop()
    assert caplog.text.count("the broker refused the message on 'not-ours/x'") == 2
