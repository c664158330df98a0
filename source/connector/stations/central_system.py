"""The OCPP-J WebSocket server: handshake checks, station ids, the registry.

Handshakes are refused before the upgrade:
- HTTP 503 beyond OCPP_MAX_CONNECTIONS connections, handshakes in progress
  included, so clients that connect and never finish cannot crowd out
  stations; and a connection from an address that already holds its share
  of them in handshakes (OCPP_HANDSHAKE_SHARE_PER_ADDRESS) gets 503 at once;
- HTTP 400 when the id is empty, longer than 64 characters, holds `__` or a
  control character, ends in `_` (`CP1_`'s keys `CP1___…` would read as
  CP1's), starts with `@` (the keys of site budgets' groups), or when the
  station offers none of the subprotocols in
  OCPP_VERSIONS (README "Datapoint keys", "OCPP 2.0.1 and 2.1 stations");
- HTTP 401 when the id is not allowed, the Basic credentials are wrong
  (README "Security", Security Profile 1), or, under Security Profile 3, the
  client certificate's subject CN is not the station id (a certificate
  proves who the station is, so it must name the id it connects as).
A station that offers several subprotocols gets the newest one we offer.
With a certificate it serves wss:// (Profile 2), and with a CA it requires
client certificates (Profile 3). A handshake, TLS included, must finish
within HANDSHAKE_TIMEOUT, so a slow or stalled client cannot hold a slot.
"""

from __future__ import annotations

import asyncio
import contextlib
import http
import ipaddress
import logging
import ssl
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlsplit

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.datastructures import Headers
from websockets.http11 import Request, Response

from connector.core.groups import GROUP_PREFIX
from connector.stations.station import Station
from connector.stations.station_auth import refusal
from connector.versions import BY_SUBPROTOCOL, OCPP16, VERSIONS, Version

log = logging.getLogger(__name__)

SUBPROTOCOLS: tuple[str, ...] = tuple(v.subprotocol for v in VERSIONS)  # oldest first
MAX_ID_LENGTH = 64
HANDSHAKE_TIMEOUT = 10.0


@dataclass(frozen=True)
class ServerOptions:
    max_message_size: int = 65536
    max_connections: int = 10000
    # Seconds between WebSocket pings: a dead connection is noticed within
    # two intervals. A quiet but live station answers pings whatever its
    # heartbeat interval, so it is never dropped. 0: no pings.
    ping_interval: float = 60.0
    allowed: frozenset[str] | None = None
    passwords: Mapping[str, str] | None = None
    ssl_context: ssl.SSLContext | None = None
    handshake_timeout: float = HANDSHAKE_TIMEOUT
    # permessage-deflate, when a station asks for it. OCPP frames are small:
    # compressing each costs more CPU than it saves, and its zlib state is a
    # large part of a connection's memory.
    compression: bool = False
    # OCPP_VERSIONS, oldest first.
    subprotocols: tuple[str, ...] = SUBPROTOCOLS
    # SO_REUSEPORT: OCPP_WORKERS processes share the port (README "Several instances").
    reuse_port: bool = False
    # Handshakes in progress from one address at most (OCPP_MAX_CONNECTIONS times
    # OCPP_HANDSHAKE_SHARE_PER_ADDRESS); 0: no limit.
    max_handshakes_per_address: int = 0


# Shared by every connection after its handshake; nothing writes to it.
_NO_HEADERS = Headers()


def forget_handshake_headers(connection: ServerConnection) -> None:
    """websockets keeps the handshake's request and response headers on the
    connection for its lifetime, about 4 KB a station, and reads them only
    during the handshake (as do we: path, subprotocol, credentials)."""
    if connection.request is not None:
        connection.request.headers = _NO_HEADERS
    if connection.response is not None:
        connection.response.headers = _NO_HEADERS


def choose_subprotocol(offered: list[str], ours: tuple[str, ...]) -> str | None:
    """The newest of our subprotocols that the station offers, or None."""
    for subprotocol in reversed(ours):
        if subprotocol in offered:
            return subprotocol
    return None


def ocpp_version(subprotocol: str | None) -> Version:
    """The version of a subprotocol the handshake agreed on (1.6 without one:
    the server never agrees on none, see _check_handshake)."""
    return BY_SUBPROTOCOL.get(subprotocol or "", OCPP16)


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
    if cp_id.endswith("_"):
        # Its keys `<id>__…` would begin with another id's `<id>___`.
        return "the charge point id ends in '_'"
    if cp_id.startswith(GROUP_PREFIX):
        return f"the charge point id starts with {GROUP_PREFIX!r}, which groups' keys do"
    return None


def certificate_names(connection: ServerConnection) -> list[str] | None:
    """The subject CNs of the client certificate; None without TLS or a certificate."""
    ssl_object = connection.transport.get_extra_info("ssl_object")
    if ssl_object is None:
        return None
    certificate = ssl_object.getpeercert()
    if not certificate:
        return None
    return [
        value
        for rdn in certificate.get("subject", ())
        for name, value in rdn
        if name == "commonName"
    ]


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def offered_subprotocols(headers: Headers) -> list[str]:
    return [
        part.strip()
        for value in headers.get_all("Sec-WebSocket-Protocol")
        for part in value.split(",")
    ]


class _CountedConnection(ServerConnection):
    """A connection that counts as a handshake in progress for its address
    from the TCP accept until its handshake ends (CentralSystem._pending)."""

    central: CentralSystem | None = None  # set per server, on a subclass
    counted_address: str | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        central = self.central
        if central is not None:
            central.handshake_started(self, transport)

    def connection_lost(self, exc: Exception | None) -> None:
        super().connection_lost(exc)
        if self.central is not None:
            self.central.connection_ended(self)


class CentralSystem:
    """Accepts stations and keeps one live connection per id.

    `make_station(cp_id, connection, version)` builds the Station; `on_connect` and
    `on_disconnect` tell the bridge. A second connection with the same id
    replaces the first: the old one is closed, and its end is not reported,
    so `connected` never flips back to false under a live station.
    """

    def __init__(
        self,
        host: str,
        port: int,
        make_station: Callable[[str, ServerConnection, Version], Station],
        on_connect: Callable[[Station], None],
        on_disconnect: Callable[[Station], None],
        options: ServerOptions | None = None,
    ) -> None:
        self.host = host
        self.port = port
        self.options = options or ServerOptions()
        self._make_station = make_station
        self._on_connect = on_connect
        self._on_disconnect = on_disconnect
        self.stations: dict[str, Station] = {}
        self._server: Server | None = None
        self._closing: set[asyncio.Task[None]] = set()
        # Address -> handshakes in progress from it; every connection, open or not.
        self._pending: dict[str, int] = {}
        self._connections: set[_CountedConnection] = set()
        self._connection_class = type("CountedConnection", (_CountedConnection,), {"central": self})

    def handshake_started(
        self, connection: _CountedConnection, transport: asyncio.BaseTransport
    ) -> None:
        self._connections.add(connection)
        peer = transport.get_extra_info("peername")
        address = str(peer[0]) if isinstance(peer, tuple) and peer else "?"
        pending = self._pending.get(address, 0)
        cap = self.options.max_handshakes_per_address
        if cap and pending >= cap:
            log.warning(
                "refused a connection from %s with 503: it has %d handshakes in progress, "
                "its share of OCPP_MAX_CONNECTIONS (OCPP_HANDSHAKE_SHARE_PER_ADDRESS)",
                address,
                pending,
            )
            if isinstance(transport, asyncio.WriteTransport):
                transport.write(
                    b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n"
                    b"Connection: close\r\n\r\n"
                )
                transport.close()
            return
        self._pending[address] = pending + 1
        connection.counted_address = address

    def connection_ended(self, connection: _CountedConnection) -> None:
        self._connections.discard(connection)
        self.handshake_ended(connection)

    def handshake_ended(self, connection: _CountedConnection) -> None:
        address = connection.counted_address
        if address is None:
            return
        connection.counted_address = None
        left = self._pending.get(address, 1) - 1
        if left > 0:
            self._pending[address] = left
        else:
            self._pending.pop(address, None)

    async def start(self) -> None:
        options = self.options
        # A dead peer is reported when its TCP connection is gone: a ping, no
        # pong within half an interval, then at most half an interval (10 s at
        # most) for the closing handshake before the connection is dropped.
        # Together within two ping intervals, as README "Reliability" asks.
        ping = options.ping_interval or None
        half = ping / 2 if ping else None
        self._server = await serve(
            self._serve_station,
            self.host,
            self.port,
            process_request=self._check_handshake,
            subprotocols=list(options.subprotocols),  # type: ignore[arg-type]
            select_subprotocol=self._select_subprotocol,
            # Larger frames close the connection with 1009 (message too big).
            max_size=options.max_message_size,
            ping_interval=ping,
            ping_timeout=half,
            close_timeout=min(half, 10.0) if half else 10.0,
            open_timeout=options.handshake_timeout,
            ssl=options.ssl_context,
            compression="deflate" if options.compression else None,
            reuse_port=options.reuse_port or None,
            create_connection=self._connection_class,
            # A reconnect storm of thousands arrives at once: asyncio's default
            # backlog of 100 made the kernel drop SYNs, and TCP retries after 1,
            # 3, 7, 15 s. The kernel caps it at net.core.somaxconn.
            backlog=min(options.max_connections, 4096),
            # Frames wait here when the station's reader pauses (a station that
            # sends faster than it is served): 4 frames of at most max_size,
            # then TCP's flow control holds the station back.
            max_queue=4,
        )
        if self.port == 0:
            self.port = self._server.sockets[0].getsockname()[1]
        self.warn_if_open()
        scheme = "wss" if options.ssl_context else "ws"
        log.info(
            "OCPP server listening on %s://%s:%d/<charge point id>", scheme, self.host, self.port
        )

    @property
    def listening(self) -> bool:
        return self._server is not None and self._server.is_serving()

    async def stop(self, timeout: float = 1.0) -> None:
        """Stop listening and close what is left with 1001; after `timeout` s,
        drop the TCP connections that did not finish their closing handshake."""
        if self._server is not None:
            self._server.close(close_connections=True)
            try:
                await asyncio.wait_for(asyncio.shield(self._server.wait_closed()), timeout)
            except TimeoutError:
                for connection in list(self._connections):
                    connection.transport.abort()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._server.wait_closed(), timeout)

    def _check_handshake(self, connection: ServerConnection, request: Request) -> Response | None:
        assert self._server is not None
        # Every connection has a handler task from its TCP accept on: open
        # connections and handshakes in progress alike (this one included).
        if len(self._server.handler_tasks) > self.options.max_connections:
            return self._refuse(
                connection,
                request,
                f"OCPP_MAX_CONNECTIONS ({self.options.max_connections}) reached",
                http.HTTPStatus.SERVICE_UNAVAILABLE,
            )
        try:
            cp_id = charge_point_id(request.path)
        except UnicodeDecodeError:
            return self._refuse(connection, request, "the charge point id is not valid UTF-8")
        problem = id_problem(cp_id)
        if problem is not None:
            return self._refuse(connection, request, problem)
        # The Authorization header is read here and nowhere else; it is never logged.
        denied = refusal(
            cp_id,
            request.headers.get("Authorization"),
            self.options.allowed,
            self.options.passwords,
        )
        if denied is None:
            denied = self._certificate_refusal(connection, cp_id)
        if denied is not None:
            response = self._refuse(connection, request, denied, http.HTTPStatus.UNAUTHORIZED)
            response.headers["WWW-Authenticate"] = 'Basic realm="OCPP", charset="UTF-8"'
            return response
        ours = self.options.subprotocols
        if choose_subprotocol(offered_subprotocols(request.headers), ours) is None:
            return self._refuse(
                connection,
                request,
                f"the station offers none of the subprotocols {', '.join(ours)} (OCPP_VERSIONS)",
            )
        return None

    def _certificate_refusal(self, connection: ServerConnection, cp_id: str) -> str | None:
        """Security Profile 3: the certificate must name the id it connects as."""
        context = self.options.ssl_context
        if context is None or context.verify_mode != ssl.CERT_REQUIRED:
            return None
        names = certificate_names(connection)
        if not names:
            return "the client certificate has no subject CN"
        if cp_id not in names:
            # The CN is the certificate's, not a secret; shortened all the same.
            return f"the client certificate is for {names[0][:64]!r}, not for this id"
        return None

    def warn_if_open(self) -> None:
        """Neither passwords nor client certificates: anyone may be any station."""
        options = self.options
        profile3 = options.ssl_context is not None and (
            options.ssl_context.verify_mode == ssl.CERT_REQUIRED
        )
        if options.passwords is None and not profile3 and not is_loopback(self.host):
            log.warning(
                "stations are not authenticated: any client that reaches %s:%d can connect as "
                "any station and send its values, or take its commands. Set OCPP_BASIC_AUTH "
                "(Security Profile 1 or 2) or OCPP_TLS_CA (3)%s",
                self.host,
                self.port,
                "" if options.allowed is None else "; OCPP_ALLOWED_CHARGE_POINTS only names ids",
            )

    def _select_subprotocol(self, connection: ServerConnection, offered: Any) -> Any:
        # websockets' default picks by the station's order; README "OCPP 2.0.1 and
        # 2.1 stations" asks for the newest version both sides speak.
        return choose_subprotocol(list(offered), self.options.subprotocols)

    @staticmethod
    def _refuse(
        connection: ServerConnection,
        request: Request,
        reason: str,
        status: http.HTTPStatus = http.HTTPStatus.BAD_REQUEST,
    ) -> Response:
        log.warning("refused a station at %r with %d: %s", request.path[:100], status.value, reason)
        return connection.respond(status, reason + "\n")

    def drop(self, cp_id: str, reason: str) -> None:
        """Close a station's connection without reporting its end: it lives on
        elsewhere (another instance took it over)."""
        station = self.stations.pop(cp_id, None)
        if station is not None:
            closing = asyncio.create_task(station.close(1000, reason))
            self._closing.add(closing)
            closing.add_done_callback(self._closing.discard)

    async def _serve_station(self, connection: ServerConnection) -> None:
        assert connection.request is not None
        if isinstance(connection, _CountedConnection):
            self.handshake_ended(connection)
        cp_id = charge_point_id(connection.request.path)
        forget_handshake_headers(connection)
        version = ocpp_version(connection.subprotocol)
        station = self._make_station(cp_id, connection, version)
        previous = self.stations.get(cp_id)
        self.stations[cp_id] = station
        if previous is not None:
            log.warning("%s: a new connection replaces the open one", cp_id)
            # Close without waiting for the old peer, which may be dead.
            closing = asyncio.create_task(previous.close(1000, "replaced by a new connection"))
            self._closing.add(closing)
            closing.add_done_callback(self._closing.discard)
        log.info("%s: connected from %s (OCPP %s)", cp_id, connection.remote_address, version)
        self._on_connect(station)
        try:
            await station.start()
        finally:
            if self.stations.get(cp_id) is station:
                del self.stations[cp_id]
                log.info("%s: disconnected", cp_id)
                self._on_disconnect(station)
