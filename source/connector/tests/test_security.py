"""README "Security" toward stations, end to end: Security Profiles 1-3, allowed ids,
id tags, limits on frames and connections, pings and slow handshakes.

Real WebSockets (ws and wss), real Mosquitto, the simulated station, and a
throwaway PKI made with openssl.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import ssl
from pathlib import Path
from typing import Any

import pytest
from ocpp.v16 import call
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidMessage, InvalidStatus

from connector.bridge import Bridge
from connector.simulator.core import SimulatorOptions
from connector.stations import central_system
from connector.tests.helpers import (
    Mosquitto,
    Probe,
    StartConnector,
    StartStation,
    connector_settings,
    eventually,
    running_connector,
    station_url,
)
from connector.tests.pki import Pki, make_pki

pytestmark = pytest.mark.broker

PASSWORDS = {"CP_1": "s3cret-Pässword", "CP_2": "other"}
QUIET = SimulatorOptions(meter_interval=0)


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


def basic(user: bytes | str, password: bytes | str) -> dict[str, str]:
    raw = (user if isinstance(user, bytes) else user.encode()) + b":"
    raw += password if isinstance(password, bytes) else password.encode()
    return {"Authorization": "Basic " + base64.b64encode(raw).decode()}


async def handshake_status(bridge: Bridge, cp_id: str, **connect_args: Any) -> int:
    """101 when the upgrade succeeded, else the HTTP status of the refusal."""
    try:
        async with connect(
            station_url(bridge, cp_id),
            subprotocols=["ocpp1.6"],  # type: ignore[list-item]
            open_timeout=5,
            **connect_args,
        ):
            return 101
    except InvalidStatus as refused:
        return refused.response.status_code


def client_ssl(pki: Pki, cert: Path | None = None, key: Path | None = None) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(pki.ca))
    if cert is not None and key is not None:
        context.load_cert_chain(str(cert), str(key))
    return context


CREDENTIAL_CASES = [
    ("right", basic("CP_1", PASSWORDS["CP_1"]), 101),
    ("wrong password", basic("CP_1", "guess"), 401),
    ("missing", {}, 401),
    ("username is not the id", basic("CP_2", PASSWORDS["CP_2"]), 401),
    ("password not UTF-8", basic("CP_1", b"\xff\xfe\x00"), 401),
    # Not hex: the test looks for each secret in logs full of hex message ids,
    # and "abc" turned up inside one by chance.
    ("not Basic", {"Authorization": "Bearer token-xyz"}, 401),
    ("not base64", {"Authorization": "Basic %%%"}, 401),
]


@pytest.mark.parametrize("scheme", ["ws", "wss"])
async def test_basic_auth(
    mosquitto: Mosquitto,
    probe: Probe,
    name: str,
    pki: Pki,
    scheme: str,
    caplog: Any,
    start_station: StartStation,
) -> None:
    """Profile 1 over ws, and Profile 2 (TLS) with Basic auth over wss."""
    tls: dict[str, Any] = {}
    connect_tls: dict[str, Any] = {}
    if scheme == "wss":
        tls = {"ocpp_tls_cert": str(pki.server_cert), "ocpp_tls_key": str(pki.server_key)}
        connect_tls = {"ssl": client_ssl(pki)}
    settings = connector_settings(name, mosquitto.port, ocpp_basic_auth=PASSWORDS, **tls)
    caplog.set_level(logging.DEBUG)

    async with running_connector(settings) as bridge:
        for _, headers, expected in CREDENTIAL_CASES:
            status = await handshake_status(
                bridge, "CP_1", additional_headers=headers, **connect_tls
            )
            assert status == expected, headers
        # A station not in the list is refused even with a password of another.
        assert (
            await handshake_status(bridge, "CP_9", additional_headers=basic("CP_9", "other"))
            if scheme == "ws"
            else 401
        ) == 401
        # The accepted station works.
        async with start_station(
            bridge,
            "CP_1",
            QUIET,
            additional_headers=basic("CP_1", PASSWORDS["CP_1"]),
            **connect_tls,
        ) as station:
            await station.call(call.Heartbeat())
        await probe.wait_for_log("refused", "401")
    # No secret in any log, on MQTT or on the console.
    logs = json.dumps(probe.received(f"{name}/logs")) + caplog.text
    secrets = [PASSWORDS["CP_1"], "guess"]
    secrets += [h["Authorization"].split()[-1] for _, h, _ in CREDENTIAL_CASES if h]
    for secret in secrets:
        assert secret not in logs


async def test_plain_ws_is_refused_when_serving_wss(
    mosquitto: Mosquitto, name: str, pki: Pki, start_station: StartStation
) -> None:
    settings = connector_settings(
        name,
        mosquitto.port,
        ocpp_tls_cert=str(pki.server_cert),
        ocpp_tls_key=str(pki.server_key),
    )

    async with running_connector(settings) as bridge:
        assert bridge.central is not None
        url = f"ws://127.0.0.1:{bridge.central.port}/ocpp/CP_1"
        with pytest.raises((OSError, ConnectionClosed, InvalidMessage)):
            async with connect(url, subprotocols=["ocpp1.6"], open_timeout=3):  # type: ignore[list-item]
                pass
        async with start_station(bridge, "CP_1", QUIET, ssl=client_ssl(pki)) as station:
            await station.call(call.Heartbeat())


async def test_client_certificates(
    mosquitto: Mosquitto, name: str, pki: Pki, start_station: StartStation
) -> None:
    """Profile 3: only client certificates signed by OCPP_TLS_CA get in."""
    settings = connector_settings(
        name,
        mosquitto.port,
        ocpp_tls_cert=str(pki.server_cert),
        ocpp_tls_key=str(pki.server_key),
        ocpp_tls_ca=str(pki.ca),
    )

    async with running_connector(settings) as bridge:
        good = client_ssl(pki, pki.client_cert, pki.client_key)
        assert await handshake_status(bridge, "CP_1", ssl=good) == 101
        for context in (client_ssl(pki), client_ssl(pki, pki.rogue_cert, pki.rogue_key)):
            with pytest.raises((ssl.SSLError, OSError, ConnectionClosed, InvalidMessage)):
                await handshake_status(bridge, "CP_1", ssl=context)
        async with start_station(bridge, "CP_1", QUIET, ssl=good) as station:
            await station.call(call.Heartbeat())


async def test_a_client_certificate_is_good_only_for_its_own_id(
    mosquitto: Mosquitto,
    name: str,
    pki: Pki,
    caplog: pytest.LogCaptureFixture,
    start_station: StartStation,
) -> None:
    """Issue 17: CP_2's certificate connected as CP_1 and took over CP_1's connection."""
    settings = connector_settings(
        name,
        mosquitto.port,
        ocpp_tls_cert=str(pki.server_cert),
        ocpp_tls_key=str(pki.server_key),
        ocpp_tls_ca=str(pki.ca),
    )

    caplog.set_level(logging.WARNING)
    async with running_connector(settings) as bridge:
        cp1 = client_ssl(pki, pki.client_cert, pki.client_key)
        cp2 = client_ssl(pki, pki.other_cert, pki.other_key)
        async with start_station(bridge, "CP_1", QUIET, ssl=cp1) as station:
            assert await handshake_status(bridge, "CP_1", ssl=cp2) == 401
            assert await handshake_status(bridge, "CP_2", ssl=cp2) == 101
            # CP_1 keeps its connection.
            await station.call(call.Heartbeat())
    assert "the client certificate is for 'CP_2', not for this id" in caplog.text


async def test_allowed_charge_points(mosquitto: Mosquitto, name: str) -> None:
    settings = connector_settings(
        name, mosquitto.port, ocpp_allowed_charge_points=frozenset({"CP_1", "CP 2"})
    )

    async with running_connector(settings) as bridge:
        assert await handshake_status(bridge, "CP_1") == 101
        assert await handshake_status(bridge, "CP%202") == 101
        assert await handshake_status(bridge, "CP_3") == 401
        assert await handshake_status(bridge, "cp_1") == 401


async def test_id_tags(
    mosquitto: Mosquitto, probe: Probe, name: str, start_station: StartStation
) -> None:
    settings = connector_settings(name, mosquitto.port, ocpp_id_tags=frozenset({"TAG1", "TAG2"}))

    async with running_connector(settings) as bridge:
        async with start_station(bridge, "CP_1", QUIET) as station:
            known = await station.call(call.Authorize(id_tag="TAG1"))
            unknown = await station.call(call.Authorize(id_tag="STOLEN"))
            assert known.id_tag_info["status"] == "Accepted"
            assert unknown.id_tag_info["status"] == "Invalid"
            started = await station.call(
                call.StartTransaction(
                    connector_id=1,
                    id_tag="STOLEN",
                    meter_start=0,
                    timestamp="2026-01-01T00:00:00Z",
                )
            )
            assert started.id_tag_info["status"] == "Invalid"
            await probe.wait_for_log("CP_1", "STOLEN", "Invalid")


async def test_oversized_frames_close_only_that_connection(
    mosquitto: Mosquitto, name: str, start_station: StartStation
) -> None:
    settings = connector_settings(name, mosquitto.port, ocpp_max_message_size=4096)

    async with running_connector(settings) as bridge:
        async with start_station(bridge, "CP_2", QUIET) as other:
            async with connect(station_url(bridge, "CP_1"), subprotocols=["ocpp1.6"]) as ws:  # type: ignore[list-item]
                await ws.send(json.dumps([2, "big", "DataTransfer", {"vendorId": "x" * 5000}]))
                with pytest.raises(ConnectionClosed) as closed:
                    await asyncio.wait_for(ws.recv(), 5)
                assert closed.value.rcvd is not None and closed.value.rcvd.code == 1009
            await other.call(call.Heartbeat())  # the other station is untouched


async def test_handshakes_beyond_the_maximum_get_503(
    mosquitto: Mosquitto, name: str, start_station: StartStation
) -> None:
    settings = connector_settings(name, mosquitto.port, ocpp_max_connections=2)

    async with running_connector(settings) as bridge:
        async with (
            start_station(bridge, "CP_1", QUIET),
            start_station(bridge, "CP_2", QUIET),
        ):
            assert await handshake_status(bridge, "CP_3") == 503
        # Slots free up when stations leave.
        await eventually(lambda: bridge.central is not None and not bridge.central.stations)
        assert await handshake_status(bridge, "CP_3") == 101


async def test_a_slow_handshake_cannot_hold_a_slot(
    monkeypatch: pytest.MonkeyPatch,
    start_connector: StartConnector,
) -> None:
    monkeypatch.setattr(central_system, "HANDSHAKE_TIMEOUT", 1.0)

    async with start_connector() as bridge:
        assert bridge.central is not None
        reader, writer = await asyncio.open_connection("127.0.0.1", bridge.central.port)
        writer.write(b"GET /ocpp/CP_1 HTTP/1.1\r\nHost: x\r\n")  # and then nothing
        await writer.drain()
        # The server gives up on it after the handshake timeout.
        assert await asyncio.wait_for(reader.read(), 5) == b""
        writer.close()


async def test_a_dead_connection_is_noticed_and_a_quiet_one_is_kept(
    mosquitto: Mosquitto, probe: Probe, name: str, start_station: StartStation
) -> None:
    settings = connector_settings(name, mosquitto.port, ocpp_ping_interval=0.5)

    probe.map(sensors=["CP_1__connected", "CP_2__connected"])
    async with running_connector(settings) as bridge:
        async with start_station(bridge, "CP_2", QUIET) as quiet:
            async with connect(station_url(bridge, "CP_1"), subprotocols=["ocpp1.6"]) as ws:  # type: ignore[list-item]
                assert await probe.value("CP_1__connected") is True
                # Half-open: the peer stops reading, so no pong ever comes back.
                ws.transport.pause_reading()
                started = asyncio.get_running_loop().time()
                await probe.value("CP_1__connected", lambda v: v is False)
                noticed = asyncio.get_running_loop().time() - started
                assert noticed < 2 * 0.5 + 1.0  # two intervals, and slack for CI
            # The quiet station sent nothing for many ping intervals and is still there.
            await asyncio.sleep(2.0)
            assert "CP_2" in bridge.central.stations  # type: ignore[union-attr]
            await quiet.call(call.Heartbeat())
            assert probe.received(probe.value_topic("CP_2__connected"))[-1]["value"] is True
