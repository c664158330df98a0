"""README "Operations": the HTTP server over real sockets, with real stations and a real Mosquitto.

The Prometheus exposition is read with the official client's parser.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import os
import socket
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families
from websockets.asyncio.client import connect

from connector.operations import status as page_status
from connector.simulator.core import SimulatorOptions
from connector.stations.station import MAX_CONNECTORS
from connector.tests.helpers import (
    Mosquitto,
    Probe,
    StartConnector,
    StartStation,
    eventually,
    free_port,
    station_url,
)

# Real Mosquitto (the Docker build runs only the tests without it).
pytestmark = pytest.mark.broker


async def get(port: int, path: str, auth: tuple[str, str] | None = None) -> tuple[int, str]:
    headers = {}
    if auth is not None:
        token = base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()
        headers["Authorization"] = f"Basic {token}"
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"http://127.0.0.1:{port}{path}", headers=headers) as response,
    ):
        return response.status, await response.text()


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """(sample name, sorted labels) -> value, as the official client parses them."""
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


async def metric(port: int, name: str, **labels: str) -> float:
    _, text = await get(port, "/metrics")
    return samples(text).get((name, tuple(sorted(labels.items()))), 0.0)


async def test_metrics_follow_a_station(
    start_connector: StartConnector, start_station: StartStation, probe: Probe
) -> None:
    port = free_port()
    probe.map(actuators=["CPM__execute_trigger_message"])
    async with start_connector(http_port=port, http_host="127.0.0.1") as bridge:
        assert await metric(port, "ocpp_stations_connected", version="1.6") == 0
        async with start_station(bridge, "CPM", options=SimulatorOptions(meter_interval=0)) as cp:
            assert await metric(port, "ocpp_stations_connected", version="1.6") == 1
            labels = {"version": "1.6", "action": "MeterValues"}
            before = await metric(port, "ocpp_frames_received_total", **labels, outcome="result")
            await cp.send_meter_values(1)
            after = await metric(port, "ocpp_frames_received_total", **labels, outcome="result")
            assert after == before + 1
            # A call that breaks the schema is answered with an error.
            ws = cp._connection
            await ws.send('[2,"bad","MeterValues",{"connectorId":"one"}]')
            await asyncio.sleep(0.3)
            assert await metric(port, "ocpp_frames_received_total", **labels, outcome="error") == 1
            await ws.send("not a frame")
            await asyncio.sleep(0.3)
            assert await metric(port, "ocpp_frames_refused_total", version="1.6") == 1
            # A call of ours: its outcome and round trip.
            probe.command(probe.actuator_topic("CPM__execute_trigger_message"), "Heartbeat")
            await eventually(lambda: bool(cp.calls("TriggerMessage")))
            await asyncio.sleep(0.3)
            trigger = {"version": "1.6", "action": "TriggerMessage"}
            assert await metric(port, "ocpp_calls_sent_total", **trigger, outcome="Accepted") == 1
            assert await metric(port, "ocpp_call_round_trip_seconds_count", **trigger) == 1
        await eventually(lambda: not bridge.central or not bridge.central.stations)
        assert await metric(port, "ocpp_stations_connected", version="1.6") == 0
        _, text = await get(port, "/metrics")
        found = samples(text)
        assert found[("mqtt_connected", ())] == 1
        assert found[("mqtt_publishes_total", ())] > 0
        assert found[("process_resident_memory_bytes", ())] > 0


async def test_labels_stay_bounded(start_connector: StartConnector) -> None:
    """A station that invents actions adds no series: they count as `other`."""
    port = free_port()
    async with start_connector(http_port=port, http_host="127.0.0.1") as bridge:
        async with connect(station_url(bridge, "CPX"), subprotocols=["ocpp1.6"]) as ws:  # type: ignore[list-item]
            for n in range(50):
                await ws.send(json.dumps([2, f"m{n}", f"Invented{n}", {}]))
                await ws.recv()
        _, text = await get(port, "/metrics")
    frames = [k for k in samples(text) if k[0] == "ocpp_frames_received_total"]
    assert frames == [
        (
            "ocpp_frames_received_total",
            (("action", "other"), ("outcome", "error"), ("version", "1.6")),
        )
    ]
    assert "Invented" not in text


@asynccontextmanager
async def own_broker(tmp_path: Path) -> AsyncIterator[Mosquitto]:
    broker = Mosquitto(tmp_path)
    broker.start()
    try:
        yield broker
    finally:
        broker.stop()


@pytest.mark.within(60)
async def test_health_and_readiness_through_a_broker_stop(
    start_connector: StartConnector, tmp_path: Path
) -> None:
    port = free_port()
    async with (
        own_broker(tmp_path) as broker,
        start_connector(http_port=port, http_host="127.0.0.1", mqtt_broker_port=broker.port),
    ):
        assert await get(port, "/healthz") == (200, "ok\n")
        assert (await get(port, "/readyz"))[0] == 200
        broker.stop()
        for _ in range(100):
            status, text = await get(port, "/readyz")
            if status == 503:
                break
            await asyncio.sleep(0.1)
        assert (status, text) == (503, "not ready: the MQTT broker is not connected\n")
        assert await get(port, "/healthz") == (200, "ok\n")
        broker.start()
        for _ in range(200):
            if (await get(port, "/readyz"))[0] == 200:
                break
            await asyncio.sleep(0.1)
        assert (await get(port, "/readyz"))[0] == 200


async def test_basic_auth(start_connector: StartConnector) -> None:
    port = free_port()
    auth = ("operator", "s3cret")
    async with start_connector(http_port=port, http_host="127.0.0.1", http_basic_auth=auth):
        for path in ("/", "/metrics", "/status.json", "/readyz", "/page.js"):
            assert (await get(port, path))[0] == 401, path
            assert (await get(port, path, ("operator", "wrong")))[0] == 401, path
            assert (await get(port, path, auth))[0] == 200, path
        # The probe of Docker or Kubernetes has no password.
        assert await get(port, "/healthz") == (200, "ok\n")
        token = base64.b64encode(b"operator:s3cret").decode()
        async with (
            aiohttp.ClientSession() as session,
            session.get(
                f"http://127.0.0.1:{port}/metrics", headers={"Authorization": f"Basic {token}"}
            ) as response,
        ):
            assert response.status == 200


async def test_nothing_writes(start_connector: StartConnector) -> None:
    port = free_port()
    async with start_connector(http_port=port, http_host="127.0.0.1"):
        async with aiohttp.ClientSession() as session:
            for method in ("POST", "PUT", "DELETE", "PATCH"):
                for path in ("/", "/metrics", "/status.json"):
                    async with session.request(
                        method, f"http://127.0.0.1:{port}{path}", data=b"x"
                    ) as response:
                        assert response.status == 405, (method, path)
            async with session.get(f"http://127.0.0.1:{port}/etc/passwd") as response:
                assert response.status == 404
            async with session.get(f"http://127.0.0.1:{port}/") as response:
                policy = response.headers["Content-Security-Policy"]
                assert "default-src 'self'" in policy
                assert "<form" not in await response.text()


async def test_a_busy_port(
    start_connector: StartConnector,
    start_station: StartStation,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Stations come first: an ERROR, and the connector runs on without HTTP."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        async with start_connector(http_port=port, http_host="127.0.0.1") as bridge:
            assert bridge.http is None
            errors = [r for r in caplog.records if r.levelno == logging.ERROR]
            assert any(f"HTTP_PORT {port}" in r.getMessage() for r in errors)
            async with start_station(bridge, "CPB") as station:
                await station.send_meter_values(1)


async def test_status_json(start_connector: StartConnector, start_station: StartStation) -> None:
    port = free_port()
    async with start_connector(http_port=port, http_host="127.0.0.1") as bridge:
        async with start_station(bridge, "CPS") as station:
            await station.send_meter_values(1)
            await asyncio.sleep(0.3)
            _, text = await get(port, "/status.json")
            data = json.loads(text)
            entry = data["stations"]["items"][0]
            assert entry["id"] == "CPS" and entry["connected"] and entry["ocpp"] == "1.6"
            assert (entry["vendor"], entry["model"], entry["firmware"]) == (
                "FZI",
                "Simulated",
                "1.0.0",
            )
            connector = entry["connectors"][0]
            assert connector["id"] == 1 and connector["status"] == "Available"
            assert connector["energy_wh"] > 0 and connector["power_w"] is not None
        await eventually(lambda: not bridge.central or not bridge.central.stations)
        for _ in range(50):  # the answer is the same for a second
            _, text = await get(port, "/status.json")
            entry = json.loads(text)["stations"]["items"][0]
            if not entry["connected"]:
                break
            await asyncio.sleep(0.1)
        assert not entry["connected"] and entry["connectors"][0]["id"] == 1
        assert (await get(port, "/status.json?page=x"))[0] == 400


def presence(n: int) -> dict[str, page_status.Presence]:
    return {f"CP_{i:04d}": page_status.Presence("1.6", i % 2 == 0, i, (1,)) for i in range(n)}


@pytest.mark.parametrize(
    ("count", "number", "size", "search", "expected"),
    [
        (0, 1, 100, "", {"total": 0, "pages": 1, "page": 1, "ids": []}),
        (250, 1, 100, "", {"total": 250, "pages": 3, "page": 1, "first": "CP_0000"}),
        (250, 3, 100, "", {"pages": 3, "page": 3, "first": "CP_0200", "count": 50}),
        (250, 9, 100, "", {"page": 3}),  # beyond the last: the last
        (250, -4, 100, "", {"page": 1}),
        (250, 1, 100_000, "", {"size": 500, "count": 250}),  # a bound on the page
        (250, 1, 0, "", {"size": 1, "count": 1}),
        (3000, 1, 100, "cp_01", {"matching": 100, "first": "CP_0100"}),  # any case
        (3000, 1, 100, "nothing", {"matching": 0, "ids": []}),
    ],
)
def test_status_pages(
    count: int, number: int, size: int, search: str, expected: dict[str, Any]
) -> None:
    result = page_status.page(presence(count), lambda key: None, number, size, search)
    ids = [item["id"] for item in result["items"]]
    for key, value in expected.items():
        if key == "ids":
            assert ids == value
        elif key == "first":
            assert ids[0] == value
        elif key == "count":
            assert len(ids) == value
        else:
            assert result[key] == value, key


ROOT = Path(__file__).resolve().parents[3]


def healthcheck_command() -> list[str]:
    """The Dockerfile's HEALTHCHECK, in the exec form Docker runs."""
    text = (ROOT / "Dockerfile").read_text()
    line = text[text.index("HEALTHCHECK") :].replace("\\\n", " ").splitlines()[0]
    return list(json.loads(line[line.index("CMD") + 3 :].strip()))


async def test_the_image_healthcheck(start_connector: StartConnector) -> None:
    command = healthcheck_command()
    assert command[0] == "python"  # what the image has; nothing installed for it
    port = free_port()

    async def run(**env: str) -> int:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            *command[1:],
            cwd=ROOT,  # the image's WORKDIR
            env={**os.environ, "HTTP_PORT": str(port), **env},
            stderr=asyncio.subprocess.DEVNULL,
        )
        return await process.wait()

    async with start_connector(http_port=port, http_host="127.0.0.1"):
        assert await run() == 0
        assert await run(HTTP_HOST="0.0.0.0") == 0  # a wildcard is asked on loopback
        assert await run(HTTP_HOST="127.0.0.2") != 0  # nothing there
    assert await run() != 0  # nothing answers: unhealthy
    assert await run(HTTP_PORT="0") == 0  # the server is off: nothing to check


async def test_connectors_a_station_invents_are_bounded(start_connector: StartConnector) -> None:
    """A station that reports ever new connector numbers: the page (and the
    station's state) hold at most MAX_CONNECTORS of them."""
    port = free_port()
    async with start_connector(http_port=port, http_host="127.0.0.1") as bridge:
        async with connect(station_url(bridge, "CPN"), subprotocols=["ocpp1.6"]) as ws:  # type: ignore[list-item]
            for n in range(1, MAX_CONNECTORS + 40):
                status = {"connectorId": n, "errorCode": "NoError", "status": "Available"}
                await ws.send(json.dumps([2, f"s{n}", "StatusNotification", status]))
                while json.loads(await ws.recv())[1] != f"s{n}":
                    pass
            await asyncio.sleep(1.1)  # past the page's cache
            _, text = await get(port, "/status.json")
    entry = json.loads(text)["stations"]["items"][0]
    assert len(entry["connectors"]) == MAX_CONNECTORS
