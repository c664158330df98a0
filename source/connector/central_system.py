"""The OCPP-J WebSocket server: handshake checks, station ids, the registry.

A handshake is refused with HTTP 400 before the upgrade when the id is empty,
longer than 64 characters, holds `__` or a control character, or when the
station offers no `ocpp1.6` subprotocol (CONTRACT §3).
"""

from __future__ import annotations

import asyncio
import http
import logging
from collections.abc import Callable
from urllib.parse import unquote, urlsplit

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.datastructures import Headers
from websockets.http11 import Request, Response

from connector.station import Station

log = logging.getLogger(__name__)

SUBPROTOCOL = "ocpp1.6"
MAX_ID_LENGTH = 64
MAX_MESSAGE_SIZE = 65536
# Seconds between WebSocket pings, and the wait for each pong. A quiet but
# live station answers pings, so it is never dropped for being quiet.
PING_INTERVAL = 60.0
PING_TIMEOUT = 60.0


def charge_point_id(path: str) -> str:
    """The last path segment, percent-decoded: `/ocpp/CP_1` -> `CP_1`."""
    segment = urlsplit(path).path.rsplit("/", 1)[-1]
    return unquote(segment, errors="strict")


def id_problem(cp_id: str) -> str | None:
    """Why an id cannot be used, or None when it can."""
    if not cp_id:
        return "the charge point id (last path segment) is empty"
    if len(cp_id) > MAX_ID_LENGTH:
        return f"the charge point id is longer than {MAX_ID_LENGTH} characters"
    if "__" in cp_id:
        return "the charge point id contains '__'"
    if any(ord(c) < 32 or ord(c) == 127 for c in cp_id):
        return "the charge point id contains a control character"
    return None


def offered_subprotocols(headers: Headers) -> list[str]:
    return [
        part.strip()
        for value in headers.get_all("Sec-WebSocket-Protocol")
        for part in value.split(",")
    ]


class CentralSystem:
    """Accepts stations and keeps one live connection per id.

    `make_station(cp_id, connection)` builds the Station; `on_connect` and
    `on_disconnect` tell the bridge. A second connection with the same id
    replaces the first: the old one is closed, and its end is not reported,
    so `connected` never flips back to false under a live station.
    """

    def __init__(
        self,
        host: str,
        port: int,
        make_station: Callable[[str, ServerConnection], Station],
        on_connect: Callable[[Station], None],
        on_disconnect: Callable[[Station], None],
    ) -> None:
        self.host = host
        self.port = port
        self._make_station = make_station
        self._on_connect = on_connect
        self._on_disconnect = on_disconnect
        self.stations: dict[str, Station] = {}
        self._server: Server | None = None
        self._closing: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        self._server = await serve(
            self._serve_station,
            self.host,
            self.port,
            process_request=self._check_handshake,
            subprotocols=[SUBPROTOCOL],  # type: ignore[list-item]
            max_size=MAX_MESSAGE_SIZE,
            ping_interval=PING_INTERVAL,
            ping_timeout=PING_TIMEOUT,
        )
        if self.port == 0:
            self.port = self._server.sockets[0].getsockname()[1]
        log.info("OCPP server listening on ws://%s:%d/<charge point id>", self.host, self.port)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close(close_connections=True)
            await self._server.wait_closed()

    def _check_handshake(self, connection: ServerConnection, request: Request) -> Response | None:
        try:
            cp_id = charge_point_id(request.path)
        except UnicodeDecodeError:
            return self._refuse(connection, request, "the charge point id is not valid UTF-8")
        problem = id_problem(cp_id)
        if problem is not None:
            return self._refuse(connection, request, problem)
        if SUBPROTOCOL not in offered_subprotocols(request.headers):
            return self._refuse(
                connection, request, f"the station offers no '{SUBPROTOCOL}' subprotocol"
            )
        return None

    @staticmethod
    def _refuse(connection: ServerConnection, request: Request, reason: str) -> Response:
        log.warning("refused a station at %r: %s", request.path[:100], reason)
        return connection.respond(http.HTTPStatus.BAD_REQUEST, reason + "\n")

    async def _serve_station(self, connection: ServerConnection) -> None:
        assert connection.request is not None
        cp_id = charge_point_id(connection.request.path)
        station = self._make_station(cp_id, connection)
        previous = self.stations.get(cp_id)
        self.stations[cp_id] = station
        if previous is not None:
            log.warning("%s: a new connection replaces the open one", cp_id)
            # Close without waiting for the old peer, which may be dead.
            closing = asyncio.create_task(previous.close(1000, "replaced by a new connection"))
            self._closing.add(closing)
            closing.add_done_callback(self._closing.discard)
        log.info("%s: connected from %s", cp_id, connection.remote_address)
        self._on_connect(station)
        try:
            await station.start()
        finally:
            if self.stations.get(cp_id) is station:
                del self.stations[cp_id]
                log.info("%s: disconnected", cp_id)
                self._on_disconnect(station)
