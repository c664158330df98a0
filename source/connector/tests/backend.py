"""A station's own backend for the tests: an OCPP central system built on the
ocpp library's server side, over real WebSockets.

It checks what it receives as a strict backend does (the library validates
every frame against the schemas, and answers a bad one with a CALLERROR),
asks for HTTP Basic credentials when given passwords, gives transaction ids
of its own (from 5001 up), and records every frame as text, in both
directions, per station. It can be stopped and started again on the same
port, as a backend that goes away and comes back.
"""

from __future__ import annotations

import asyncio
import base64
import http
import json
import ssl
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from ocpp.routing import on
from ocpp.v16 import ChargePoint as ChargePoint16
from ocpp.v16 import call_result as result16
from ocpp.v201 import ChargePoint as ChargePoint201
from ocpp.v201 import call_result as result201
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.http11 import Request, Response

from connector.tests.helpers import eventually, free_port

FIRST_TRANSACTION_ID = 5001


def now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


class Recording:
    """A WebSocket as the library sees it, recording every frame as text."""

    def __init__(self, ws: ServerConnection, frames: list[tuple[str, str]]) -> None:
        self._ws = ws
        self.frames = frames  # ("in" | "out", text), in order

    async def recv(self) -> str:
        text = await self._ws.recv()
        assert isinstance(text, str)
        self.frames.append(("in", text))
        return text

    async def send(self, text: str) -> None:
        self.frames.append(("out", text))
        await self._ws.send(text)


@dataclass
class BackendOptions:
    # cp id -> password; None: no authentication asked for.
    passwords: dict[str, str] | None = None
    boot_status: str = "Accepted"
    heartbeat_interval: int = 123
    # action -> seconds to wait before answering its next call (a slow backend).
    delays: dict[str, float] = field(default_factory=dict)
    # wss://, and client certificates if it asks for them (tls.server_context).
    ssl_context: ssl.SSLContext | None = None


class Station16(ChargePoint16):
    backend: Backend

    @on("BootNotification")
    def on_boot(self, **_: Any) -> Any:
        options = self.backend.options
        return result16.BootNotification(
            current_time=now(), interval=options.heartbeat_interval, status=options.boot_status
        )

    @on("Heartbeat")
    def on_heartbeat(self, **_: Any) -> Any:
        return result16.Heartbeat(current_time=now())

    @on("StatusNotification")
    def on_status(self, **_: Any) -> Any:
        return result16.StatusNotification()

    @on("MeterValues")
    async def on_meter_values(self, **_: Any) -> Any:
        await self.backend.delay("MeterValues")
        return result16.MeterValues()

    @on("Authorize")
    def on_authorize(self, **_: Any) -> Any:
        return result16.Authorize(id_tag_info={"status": "Accepted"})

    @on("StartTransaction")
    async def on_start(self, **_: Any) -> Any:
        await self.backend.delay("StartTransaction")
        return result16.StartTransaction(
            transaction_id=self.backend.next_transaction_id(),
            id_tag_info={"status": "Accepted"},
        )

    @on("StopTransaction")
    def on_stop(self, **_: Any) -> Any:
        return result16.StopTransaction(id_tag_info={"status": "Accepted"})

    @on("DataTransfer")
    def on_data_transfer(self, **_: Any) -> Any:
        return result16.DataTransfer(status="Accepted", data="from the backend")


class Station201(ChargePoint201):
    backend: Backend

    @on("BootNotification")
    def on_boot(self, **_: Any) -> Any:
        options = self.backend.options
        return result201.BootNotification(
            current_time=now(), interval=options.heartbeat_interval, status=options.boot_status
        )

    @on("Heartbeat")
    def on_heartbeat(self, **_: Any) -> Any:
        return result201.Heartbeat(current_time=now())

    @on("StatusNotification")
    def on_status(self, **_: Any) -> Any:
        return result201.StatusNotification()

    @on("MeterValues")
    def on_meter_values(self, **_: Any) -> Any:
        return result201.MeterValues()

    @on("Authorize")
    def on_authorize(self, **_: Any) -> Any:
        return result201.Authorize(id_token_info={"status": "Accepted"})

    @on("TransactionEvent")
    async def on_transaction_event(self, **_: Any) -> Any:
        await self.backend.delay("TransactionEvent")
        return result201.TransactionEvent()

    @on("NotifyReport")
    def on_notify_report(self, **_: Any) -> Any:
        return result201.NotifyReport()


CLASSES: dict[str, type[Any]] = {"ocpp1.6": Station16, "ocpp2.0.1": Station201}


class Backend:
    def __init__(self, options: BackendOptions | None = None) -> None:
        self.options = options or BackendOptions()
        self.port = free_port()
        self._server: Server | None = None
        self._next_id = FIRST_TRANSACTION_ID
        # cp id -> every frame of every connection, in order.
        self.frames: dict[str, list[tuple[str, str]]] = {}
        # cp id -> the live library station.
        self.stations: dict[str, Any] = {}
        self.connections: dict[str, int] = {}
        self.authorizations: list[str | None] = []
        self._connected = asyncio.Event()

    def url(self) -> str:
        if self.options.ssl_context is not None:
            return f"wss://localhost:{self.port}/ocpp/{{cp}}"
        return f"ws://127.0.0.1:{self.port}/ocpp/{{cp}}"

    async def delay(self, action: str) -> None:
        """Once per action: the next of its calls is answered at once."""
        seconds = self.options.delays.pop(action, None)
        if seconds:
            await asyncio.sleep(seconds)

    def next_transaction_id(self) -> int:
        issued = self._next_id
        self._next_id += 1
        return issued

    async def start(self) -> None:
        self._server = await serve(
            self._serve,
            "127.0.0.1",
            self.port,
            subprotocols=["ocpp2.0.1", "ocpp1.6"],  # type: ignore[list-item]
            process_request=self._check,
            ssl=self.options.ssl_context,
        )

    async def stop(self) -> None:
        """Go away: the server closes, and with it every connection."""
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        self.stations.clear()

    def _check(self, connection: ServerConnection, request: Request) -> Response | None:
        header = request.headers.get("Authorization")
        self.authorizations.append(header)
        passwords = self.options.passwords
        if passwords is None:
            return None
        cp_id = request.path.rsplit("/", 1)[-1]
        expected = base64.b64encode(f"{cp_id}:{passwords.get(cp_id, '')}".encode()).decode()
        if header != f"Basic {expected}":
            return connection.respond(http.HTTPStatus.UNAUTHORIZED, "who are you?\n")
        return None

    async def _serve(self, ws: ServerConnection) -> None:
        assert ws.request is not None
        cp_id = ws.request.path.rsplit("/", 1)[-1]
        frames = self.frames.setdefault(cp_id, [])
        station = CLASSES[str(ws.subprotocol)](cp_id, Recording(ws, frames), response_timeout=5)
        station.backend = self
        self.stations[cp_id] = station
        self.connections[cp_id] = self.connections.get(cp_id, 0) + 1
        try:
            await station.start()
        except Exception:  # the connection closed
            pass
        finally:
            if self.stations.get(cp_id) is station:
                del self.stations[cp_id]

    # ---- what a test reads ----------------------------------------------

    def received(self, cp_id: str) -> list[str]:
        """Every frame the backend got from the station, as text."""
        return [text for way, text in self.frames.get(cp_id, []) if way == "in"]

    def sent(self, cp_id: str) -> list[str]:
        return [text for way, text in self.frames.get(cp_id, []) if way == "out"]

    def calls(self, cp_id: str, action: str | None = None) -> list[list[Any]]:
        """The CALLs the station sent, parsed, optionally of one action."""
        parsed = [json.loads(text) for text in self.received(cp_id)]
        return [f for f in parsed if f[0] == 2 and (action is None or f[2] == action)]

    async def station(self, cp_id: str) -> Any:
        await eventually(lambda: cp_id in self.stations)
        return self.stations[cp_id]

    async def call(self, cp_id: str, request: Any, suppress: bool = True) -> Any:
        """A call of the backend's to the station (through the connector);
        `suppress=False` raises a CALLERROR as the library's OCPPError."""
        station = await self.station(cp_id)
        return await station.call(request, suppress=suppress)
