"""Parts of the fast path that show from outside: compression, memory kept per connection."""

from __future__ import annotations

import socket

import pytest
from websockets.asyncio.client import connect

from connector.tests.helpers import (
    Mosquitto,
    Probe,
    StartConnector,
    StartStation,
    connector_settings,
    running_connector,
    station_url,
)

pytestmark = pytest.mark.broker


@pytest.mark.parametrize(("setting", "compressed"), [(False, False), (True, True)])
async def test_compression_only_when_set(
    mosquitto: Mosquitto, name: str, setting: bool, compressed: bool
) -> None:
    settings = connector_settings(name, mosquitto.port, ocpp_compression=setting)
    async with running_connector(settings) as bridge:
        # websockets' client offers permessage-deflate by default.
        async with connect(station_url(bridge, "CP_1"), subprotocols=["ocpp1.6"]) as ws:  # type: ignore[list-item]
            assert ws.response is not None
            extensions = ws.response.headers.get("Sec-WebSocket-Extensions") or ""
            assert ("permessage-deflate" in extensions) is compressed


async def test_handshake_headers_are_not_kept(
    probe: Probe,
    start_connector: StartConnector,
    start_station: StartStation,
) -> None:
    key = "CP_1__MeterValues__1__Power.Active.Import__W"

    async with start_connector() as bridge:
        assert bridge.central is not None
        probe.map([key])
        async with start_station(bridge, "CP_1") as station:
            connection = bridge.central.stations["CP_1"]._connection
            assert not list(connection.request.headers.raw_items())
            assert not list(connection.response.headers.raw_items())
            assert connection.subprotocol == "ocpp1.6"
            await station.send_meter_values(1, 3600)
            assert await probe.value(key) >= 0


async def test_values_leave_without_nagle_delay(start_connector: StartConnector) -> None:
    """paho leaves Nagle's algorithm on; small values then wait for ACKs (up to 40 ms)."""

    async with start_connector() as bridge:
        assert bridge.mqtt is not None
        sock = bridge.mqtt.link._client.socket()
        assert isinstance(sock, socket.socket)
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
