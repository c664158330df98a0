"""README "Reliability": graceful shutdown of the real process, and mass reconnects."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from ocpp.v16 import call
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from connector.simulator.core import SimulatorOptions
from connector.simulator.v16 import SimulatedChargePoint
from connector.tests.helpers import (
    Mosquitto,
    Probe,
    StartConnector,
    eventually,
    free_port,
    run,
    station_url,
)

pytestmark = pytest.mark.broker

ROOT = Path(__file__).resolve().parents[3]
QUIET = SimulatorOptions(meter_interval=0)


async def wait_for_port(port: int, seconds: float = 15) -> None:
    deadline = asyncio.get_running_loop().time() + seconds
    while True:
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.close()
            return
        except OSError:
            if asyncio.get_running_loop().time() > deadline:
                raise
            await asyncio.sleep(0.1)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_shutdown_closes_stations_reports_them_and_exits_0(
    mosquitto: Mosquitto, probe: Probe, name: str, signum: int
) -> None:
    cp_ids = [f"CP_{i}" for i in range(5)]
    ocpp_port = free_port()
    env = {
        **os.environ,
        "HTTP_PORT": "0",
        "CONNECTOR_NAME": name,
        "MQTT_BROKER_HOST": "127.0.0.1",
        "MQTT_BROKER_PORT": str(mosquitto.port),
        "OCPP_HOST": "127.0.0.1",
        "OCPP_PORT": str(ocpp_port),
    }
    probe.map(sensors=[f"{cp}__connected" for cp in cp_ids])
    process = subprocess.Popen(
        [sys.executable, "source/connector/main.py"], cwd=ROOT, env=env, stderr=subprocess.PIPE
    )

    async def scenario() -> list[int | None]:
        await wait_for_port(ocpp_port)
        async with contextlib.AsyncExitStack() as stack:
            sockets = []
            for cp_id in cp_ids:
                ws = await stack.enter_async_context(
                    connect(f"ws://127.0.0.1:{ocpp_port}/{cp_id}", subprotocols=["ocpp1.6"])  # type: ignore[list-item]
                )
                sockets.append(ws)
            for cp_id in cp_ids:
                assert await probe.value(f"{cp_id}__connected") is True
            process.send_signal(signum)
            codes: list[int | None] = []
            for ws in sockets:
                with contextlib.suppress(ConnectionClosed):
                    while True:
                        await asyncio.wait_for(ws.recv(), 10)
                codes.append(ws.close_code)
            for cp_id in cp_ids:
                assert await probe.value(f"{cp_id}__connected", lambda v: v is False) is False
            return codes

    try:
        codes = run(scenario())
        assert process.wait(15) == 0
    finally:
        if process.poll() is None:
            process.kill()
    assert codes == [1001] * len(cp_ids)


async def boot(url: str, cp_id: str) -> tuple[Any, SimulatedChargePoint, asyncio.Task[None]]:
    ws = await connect(url, subprotocols=["ocpp1.6"])  # type: ignore[list-item]
    station = SimulatedChargePoint(cp_id, ws, QUIET)
    reader = asyncio.create_task(station.start())
    await station.boot()
    return ws, station, reader


@pytest.mark.within(120)
async def test_200_stations_reconnecting_at_once(
    probe: Probe, start_connector: StartConnector
) -> None:
    """Half drop and come back, half connect again while the old connection is
    still open: one session per id, and `connected` ends true for all; after
    they leave, it ends false for all."""
    cp_ids = [f"CP_{i}" for i in range(200)]

    def last_connected(cp_id: str) -> Any:
        values = probe.received(probe.value_topic(f"{cp_id}__connected"))
        return values[-1]["value"] if values else None

    probe.map(sensors=[f"{cp}__connected" for cp in cp_ids])
    async with start_connector() as bridge:
        assert bridge.central is not None
        urls = {cp: station_url(bridge, cp) for cp in cp_ids}
        first = await asyncio.gather(*(boot(urls[cp], cp) for cp in cp_ids))
        await eventually(lambda: len(bridge.central.stations) == 200)  # type: ignore[union-attr]

        async def reconnect(index: int) -> tuple[Any, SimulatedChargePoint, asyncio.Task[None]]:
            ws, _, reader = first[index]
            if index % 2 == 0:
                await ws.close()  # dropped, then back
                reader.cancel()
            return await boot(urls[cp_ids[index]], cp_ids[index])

        second = await asyncio.gather(*(reconnect(i) for i in range(200)))
        await eventually(lambda: all(last_connected(cp) is True for cp in cp_ids), 20)
        await asyncio.sleep(1)  # late reports of the old connections would show now
        assert len(bridge.central.stations) == 200
        assert all(last_connected(cp) is True for cp in cp_ids)
        # Every registered session is the newest connection, and it serves.
        await asyncio.gather(*(station.call(call.Heartbeat()) for _, station, _ in second))
        for ws, _, reader in first[1::2]:
            assert ws.close_code == 1000  # replaced by the new connection
            reader.cancel()

        for ws, _, reader in second:
            await ws.close()
            reader.cancel()
        await eventually(lambda: all(last_connected(cp) is False for cp in cp_ids), 20)
        assert bridge.central.stations == {}
