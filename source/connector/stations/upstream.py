"""One station's own backend, behind the connector (README "Keeping a station's own backend").

The connector is the station's OCPP Local Controller: for a forwarded
station it keeps one WebSocket to the station's backend, as that station
(its id, the subprotocol it chose, its credentials), and passes frames
through, byte for byte:
- a call from the station goes to the backend, and the backend's answer
  back to the station. The connector handles the call too (values on MQTT,
  sessions for charging control), but its own answer is used only when the
  backend cannot give one. The backend decides what only it can: Authorize,
  transaction ids, BootNotification's status and interval. A 1.6
  StartTransaction is handled once the backend's id is known, so what is
  published is the id the station uses.
- a call from the backend goes to the station (unless OCPP_UPSTREAM_DENY
  names its action), in turn with the connector's own calls: one call
  outstanding toward a station, as OCPP-J asks. The station's answer goes
  back to the backend. After the backend set or cleared charging profiles,
  the connector sends its limits again.
- the connector's own calls carry their own message ids; their answers are
  never forwarded.

While the backend is away (not reachable, not answering, not connected
yet after a first attempt), the station is served as without forwarding;
its transaction messages are kept (upstream_store.py, on the broker) and
sent in order once the backend is back, after a BootNotification the
backend missed and before the latest StatusNotification of each connector.
A kept message the backend answered (or refused) is never sent again; one
it did not answer because the connection dropped is sent again, as a
station does (OCPP 1.6 TransactionMessageAttempts).

Whatever the backend sends is untrusted: frames are parsed as a station's
are (frames.py), calls are validated against the schema, at most
MAX_TO_STATION of them wait for the station, and the backend is read no
faster than OCPP_MAX_FRAMES_PER_SECOND.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import random
import ssl
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ocpp.exceptions import OCPPError
from ocpp.messages import Call, CallError, CallResult
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidURI

from connector.core import upstream as up
from connector.mqtt.upstream_store import Backlog
from connector.stations import schema_validation
from connector.stations.frames import (
    CallResultError,
    FrameError,
    Send,
    call_error_json,
    parse_frame,
)
from connector.stations.station import BURST_SECONDS, Station

log = logging.getLogger(__name__)

# A first attempt (the station just connected) is waited for this long
# before the station's first calls are answered locally.
OPEN_TIMEOUT = 10.0
# Calls from the backend waiting for the station; OCPP-J allows one.
MAX_TO_STATION = 8
# Station calls awaiting the backend's answer; OCPP-J allows one.
MAX_PENDING = 8
# Connectors whose latest StatusNotification is kept (a station chooses the numbers).
MAX_STATUSES = 64
# OCPP 2.1 SEND frames on their way to the backend, at most; more are dropped.
MAX_PASSING = 16
# The connector's limits are sent again at most this often after the backend's
# profile calls (a backend that does smart charging of its own sends many).
REAPPLY_DELAY = 1.0
SECURITY_ERROR = "SecurityError"
GENERIC_ERROR = "GenericError"
# The backend's calls after which our profiles may be gone or overruled.
PROFILE_ACTIONS = frozenset({"SetChargingProfile", "ClearChargingProfile"})
BOOT = "BootNotification"
STATUS = "StatusNotification"


@dataclass(frozen=True)
class UpstreamOptions:
    """OCPP_UPSTREAM_*, and the connector's own bounds."""

    url: str
    passwords: dict[str, str] | None = field(default=None, repr=False)
    ssl_context: ssl.SSLContext | None = None
    deny: frozenset[str] = frozenset()
    response_timeout: float = 30.0
    max_message_size: int = 65536
    ping_interval: float = 60.0
    max_frames_per_second: float = 200.0


@dataclass
class UpstreamStats:
    """Each backend connection's figures (README "Operations")."""

    connects: int = 0
    failures: int = 0
    frames_to_backend: int = 0
    frames_from_backend: int = 0
    answered_locally: int = 0
    kept_sent: int = 0
    refused: int = 0


@dataclass
class _Forwarded:
    """A station's call the backend has, awaiting its answer."""

    call: Call
    text: str  # as the station sent it
    kept: bool
    # Our own answer, made when the call arrived; None for a call the
    # backend decides first (1.6 StartTransaction).
    local: tuple[str, Any] | None
    timer: asyncio.TimerHandle | None = None


class Upstream:
    """The backend connection of one station connection; it ends with it."""

    def __init__(
        self,
        station: Station,
        options: UpstreamOptions,
        backlog: Backlog,
        on_state: Callable[[Station, bool], None],
        on_profiles: Callable[[Station], None],
    ) -> None:
        self.station = station
        self.options = options
        self.backlog = backlog
        self._on_state = on_state
        self._on_profiles = on_profiles
        self.url = up.backend_url(options.url, station.id)
        self.connected = False
        # True until the first attempt succeeded or failed: calls wait for it.
        self.opening = True
        self.stats = UpstreamStats()
        self._opened = asyncio.Event()
        self._ws: ClientConnection | None = None
        self._forwarded: dict[str, _Forwarded] = {}
        # Our own calls to the backend (kept messages, a missed boot, statuses).
        self._own: dict[str, asyncio.Future[CallResult | CallError]] = {}
        self._to_station: asyncio.Queue[tuple[Call, str]] = asyncio.Queue(MAX_TO_STATION)
        # The latest StatusNotification of each connector, as sent.
        self._statuses: dict[Any, str] = {}
        # Those not sent to the backend on the connection open now.
        self._statuses_due: dict[Any, str] = {}
        # A BootNotification the backend did not answer: sent when it is back.
        self._missed_boot: str | None = None
        self._tokens = options.max_frames_per_second * BURST_SECONDS
        self._tokens_at = 0.0
        # Set when there is something kept to send (the sender waits for it).
        self._kept_waiting = asyncio.Event()
        backlog.on_added = self._kept_waiting.set
        self._passing = 0
        self._reapply_due = False
        self._stopped = False
        self._task = station.spawn(self._run())

    def stop(self) -> None:
        """A newer connection of the station took over (or the station left):
        this one sends nothing more, and says nothing about the backend."""
        self._stopped = True
        if self.backlog.on_added == self._kept_waiting.set:
            self.backlog.on_added = None
        if self._task is not None:
            self._task.cancel()

    # ---- the connection -------------------------------------------------

    def _headers(self) -> dict[str, str]:
        passwords = self.options.passwords or {}
        password = passwords.get(self.station.id)
        if password is None:
            return {}
        token = base64.b64encode(f"{self.station.id}:{password}".encode()).decode()
        return {"Authorization": f"Basic {token}"}

    async def _connect(self) -> ClientConnection:
        subprotocol = self.station.version.subprotocol
        ws = await connect(
            self.url,
            subprotocols=[subprotocol],  # type: ignore[list-item]
            additional_headers=self._headers(),
            ssl=self.options.ssl_context if self.url.startswith("wss:") else None,
            open_timeout=OPEN_TIMEOUT,
            ping_interval=self.options.ping_interval or None,
            ping_timeout=(self.options.ping_interval / 2) or None,
            close_timeout=1,
            max_size=self.options.max_message_size,
            max_queue=4,
            compression=None,
            proxy=None,
            user_agent_header=None,
        )
        if ws.subprotocol != subprotocol:
            await ws.close(1002, "OCPP-J needs the subprotocol")
            raise InvalidHandshake(f"the backend did not take the subprotocol {subprotocol}")
        return ws

    async def _run(self) -> None:
        attempt = 0
        loop = asyncio.get_running_loop()
        reported = False
        try:
            while True:
                try:
                    ws = await self._connect()
                except Exception as error:  # whatever it is, the station is served here
                    self.stats.failures += 1
                    level = logging.DEBUG if attempt else logging.WARNING
                    if not isinstance(error, (OSError, TimeoutError, InvalidHandshake, InvalidURI)):
                        level = logging.ERROR
                    log.log(level, "%s: its backend is not reachable: %r", self.station.id, error)
                    self._first_attempt_done()
                    if not reported:
                        reported = True
                        self._on_state(self.station, False)
                    await asyncio.sleep(up.backoff(attempt, random.random()))
                    attempt += 1
                    continue
                opened_at = loop.time()
                await self._serve(ws)
                reported = True
                attempt = 0 if loop.time() - opened_at >= up.STABLE_AFTER else attempt + 1
                await asyncio.sleep(up.backoff(attempt, random.random()))
        finally:
            self._first_attempt_done()

    def _first_attempt_done(self) -> None:
        self.opening = False
        self._opened.set()

    async def _serve(self, ws: ClientConnection) -> None:
        """Forward over one backend connection until it closes."""
        station = self.station
        self._ws = ws
        self.connected = True
        self.stats.connects += 1
        self._statuses_due = dict(self._statuses)
        self._first_attempt_done()
        log.info("%s: connected to its backend (%s)", station.id, ws.subprotocol)
        self._on_state(station, True)
        self._kept_waiting.set()  # whatever is kept goes first
        tasks = [
            asyncio.create_task(self._catch_up(), name=f"{station.id}-catch-up"),
            asyncio.create_task(self._relay_to_station(), name=f"{station.id}-relay"),
        ]
        try:
            async for raw in ws:
                if self._take_token():
                    await asyncio.sleep(1 / self.options.max_frames_per_second)
                try:
                    await self._from_backend(
                        raw if isinstance(raw, str) else raw.decode("utf-8", "replace")
                    )
                except ConnectionClosed:
                    raise
                except Exception:  # a bug of ours must not end the connection
                    log.exception("%s: failed to handle a frame from its backend", station.id)
        except ConnectionClosed:
            pass
        finally:
            self.connected = False
            self._ws = None
            for task in tasks:
                task.cancel()
            for future in self._own.values():
                if not future.done():
                    future.cancel()
            forwarded = list(self._forwarded.values())
            self._forwarded.clear()
            while not self._to_station.empty():
                self._to_station.get_nowait()
            log.warning(
                "%s: its backend connection closed (%s); served locally until it is back",
                station.id,
                ws.close_code,
            )
            if not station.closed and not self._stopped:
                self._on_state(station, False)
                # Answered here now; what the backend must not miss is kept.
                for pending in forwarded:
                    await self._answer_locally(pending, delivered=False)
            else:
                for pending in forwarded:
                    self._drop(pending)
            # A station closing cancels this task: the socket goes with it.
            await ws.close()

    def _take_token(self) -> bool:
        rate = self.options.max_frames_per_second
        now = asyncio.get_running_loop().time()
        tokens = min(rate * BURST_SECONDS, self._tokens + (now - self._tokens_at) * rate)
        self._tokens_at = now
        self._tokens = tokens - 1 if tokens >= 1 else tokens
        return tokens < 1

    async def _send(self, text: str) -> bool:
        ws = self._ws
        if ws is None:
            return False
        try:
            await ws.send(text)
        except ConnectionClosed:
            return False
        self.stats.frames_to_backend += 1
        return True

    # ---- the station's calls -------------------------------------------

    async def from_station(self, call: Call, text: str) -> None:
        """A call from the station: to the backend, or answered here."""
        station = self.station
        if self.opening:
            await self._opened.wait()
        kept = station.kept_for_backend(call.action, call.payload)
        if call.action == STATUS:
            self._note_status(call.payload, text)
        if call.unique_id in self._forwarded:
            # The station sent it again before the backend answered: the
            # backend's answer, when it comes, is the answer to both.
            log.debug(
                "%s: %s sent again; its first copy is with the backend", station.id, call.unique_id
            )
            return
        live = (
            self.connected
            and not (kept and self.backlog)
            and len(self._forwarded) < MAX_PENDING
            and call.unique_id not in self._own
        )
        if not live:
            local = await station.local_answer(call)
            await self._answer_with(call, text, local, kept, delivered=False)
            return
        decided = call.action in station.decided_by_backend
        made = None if decided else await station.local_answer(call)
        pending = _Forwarded(call, text, kept, made)
        self._forwarded[call.unique_id] = pending
        out = up.to_backend(text, self.backlog.ids) if self.backlog.ids else text
        if not await self._send(out):
            # The connection dropped under us; unless its closing answered it already.
            if self._forwarded.pop(call.unique_id, None) is not None:
                await self._answer_locally(pending, delivered=False)
            return
        pending.timer = asyncio.get_running_loop().call_later(
            self.options.response_timeout, self._expired, call.unique_id
        )

    def _note_status(self, payload: dict[str, Any], text: str) -> None:
        key = self.station.status_key(payload)
        if key in self._statuses or len(self._statuses) < MAX_STATUSES:
            self._statuses[key] = text
        if self.connected:
            self._statuses_due.pop(key, None)  # the backend has this one

    def _expired(self, unique_id: str) -> None:
        """A backend that does not answer in time is away: its connection is
        closed, the station answered here, and what it must not miss is kept
        (and sent again when it is back, as a station does without an answer)."""
        pending = self._forwarded.get(unique_id)
        ws = self._ws
        if pending is None or ws is None:
            return
        log.warning(
            "%s: its backend did not answer %s within %g s; it is taken as away",
            self.station.id,
            pending.call.action,
            self.options.response_timeout,
        )
        self.station.spawn(ws.close(1011, "no answer in time"))

    async def _answer_locally(self, pending: _Forwarded, delivered: bool) -> None:
        if pending.timer is not None:
            pending.timer.cancel()
        local = pending.local or await self.station.local_answer(pending.call)
        await self._answer_with(pending.call, pending.text, local, pending.kept, delivered)

    async def _answer_with(
        self, call: Call, text: str, local: tuple[str, Any], kept: bool, delivered: bool
    ) -> None:
        """Our own answer goes to the station; what the backend must not miss is kept."""
        station = self.station
        response, after = local
        self.stats.answered_locally += 1
        await station.send_text(response)
        ok = response.startswith("[3,")
        station.answered(call.action, ok)
        if after is not None:
            station.spawn(after)
        if delivered or not ok:
            return
        if kept:
            our_id = station.transaction_id_given(call.action, response)
            self.backlog.append(text, our_id, up.droppable)
        elif call.action == BOOT:
            self._missed_boot = text

    async def _settle(self, pending: _Forwarded, answer: CallResult | CallError, text: str) -> None:
        """The backend's answer to a station's call: to the station, as sent."""
        station = self.station
        call = pending.call
        if pending.timer is not None:
            pending.timer.cancel()
        if isinstance(answer, CallResult):
            answer.action = call.action
            try:
                await schema_validation.validate(answer, station.version)
            except (OCPPError, RecursionError) as error:
                log.warning(
                    "%s: its backend's answer to %s breaks the schema (%s); answered locally",
                    station.id,
                    call.action,
                    str(getattr(error, "description", error))[:200],
                )
                await self._answer_locally(pending, delivered=True)
                return
            local = pending.local or await station.local_answer(call, answer.payload)
            after = local[1]
            if call.action == BOOT:
                self._missed_boot = None
            if call.action == BOOT and answer.payload.get("status") != "Accepted":
                log.warning(
                    "%s: its backend answered BootNotification %s",
                    station.id,
                    str(answer.payload.get("status"))[:40],
                )
                if after is not None:
                    after.close()
                after = None
                station.boot_refused = True
            await station.send_text(text)
            station.answered(call.action, True)
            if after is not None:
                station.spawn(after)
            if self.backlog.ids and station.ends_transaction(pending.text):
                ours = up.transaction_id_of(pending.text)
                if ours is not None:
                    self.backlog.unmap_id(ours)
            return
        # A CALLERROR: the station hears it; a call the backend decides never happened.
        await station.send_text(text)
        station.answered(call.action, False)
        if pending.local is not None and pending.local[1] is not None:
            if call.action == BOOT:
                pending.local[1].close()
            else:
                station.spawn(pending.local[1])

    # ---- the backend's frames -------------------------------------------

    async def _from_backend(self, text: str) -> None:
        self.stats.frames_from_backend += 1
        station = self.station
        message = parse_frame(text, station.version)
        if isinstance(message, FrameError):
            log.warning("%s: refused a frame from its backend: %s", station.id, message.description)
            if message.unique_id is not None:
                await self._send(
                    call_error_json(message.unique_id, message.code, message.description)
                )
            return
        if isinstance(message, Call):
            await self._backend_call(message, text)
            return
        if isinstance(message, (Send, CallResultError)):
            await station.send_text(text)  # OCPP 2.1, never answered: passed on
            return
        own = self._own.pop(message.unique_id, None)
        if own is not None:
            if not own.done():
                own.set_result(message)
            return
        pending = self._forwarded.pop(message.unique_id, None)
        if pending is None:
            log.warning(
                "%s: ignored an answer from its backend to no pending call (%s)",
                station.id,
                message.unique_id[:40],
            )
            return
        await self._settle(pending, message, text)

    async def _backend_call(self, call: Call, text: str) -> None:
        station = self.station
        action = call.action

        async def refuse(code: str, description: str) -> None:
            self.stats.refused += 1
            await self._send(call_error_json(call.unique_id, code, description))

        if action in self.options.deny:
            log.warning(
                "%s: refused %s from its backend: it is in OCPP_UPSTREAM_DENY",
                station.id,
                action[:64],
            )
            await refuse(SECURITY_ERROR, f"{action[:64]} is not allowed by the Local Controller")
            return
        if station.message_id_in_use(call.unique_id):
            await refuse(GENERIC_ERROR, "message id in use")
            return
        if action in station.known_actions:
            try:
                await schema_validation.validate(call, station.version)
            except OCPPError as error:
                cause = str(error.details.get("cause", ""))
                log.warning(
                    "%s: its backend sent an invalid %s: %s", station.id, action, cause[:200]
                )
                await refuse(station.error_code(error.code, cause), cause[:200])
                return
            except RecursionError:
                await refuse(station.version.format_violation, "payload nested too deeply")
                return
        if self._to_station.full():
            log.warning("%s: its backend sends calls faster than the station answers", station.id)
            await refuse(GENERIC_ERROR, "too many calls waiting for the station")
            return
        out = up.to_station(text, action, self.backlog.ids) if self.backlog.ids else text
        self._to_station.put_nowait((call, out))

    async def _relay_to_station(self) -> None:
        """The backend's calls to the station, one at a time, in turn with ours."""
        while True:
            call, text = await self._to_station.get()
            try:
                await self._relay(call, text)
            except (asyncio.CancelledError, ConnectionClosed):
                raise
            except Exception:  # a bug of ours must not stop the backend's calls
                log.exception("%s: failed to pass on %s", self.station.id, call.action[:64])

    async def _relay(self, call: Call, text: str) -> None:
        station = self.station
        answer = await station.relay_call(call.unique_id, text)
        if answer is None:
            return  # the station did not answer: neither do we
        message, answer_text = answer
        if not await self._send(answer_text):
            return
        if (
            call.action in PROFILE_ACTIONS
            and isinstance(message, CallResult)
            and isinstance(message.payload, dict)
            and message.payload.get("status") == "Accepted"
        ):
            if not self._reapply_due:
                self._reapply_due = True
                log.info(
                    "%s: its backend's %s was accepted; the connector's limits are sent again",
                    station.id,
                    call.action,
                )
                station.spawn(self._reapply())

    async def _reapply(self) -> None:
        await asyncio.sleep(REAPPLY_DELAY)  # one for a burst of the backend's calls
        self._reapply_due = False
        self._on_profiles(self.station)

    def pass_on(self, text: str) -> None:
        """An OCPP 2.1 SEND or CALLRESULTERROR from the station: to the backend,
        if there (never kept; dropped while MAX_PASSING are on their way)."""
        if self.connected and self._passing < MAX_PASSING:
            self._passing += 1
            self.station.spawn(self._pass(text))

    async def _pass(self, text: str) -> None:
        try:
            await self._send(text)
        finally:
            self._passing -= 1

    # ---- when the backend is back ----------------------------------------

    async def _own_call(self, text: str, unique_id: str) -> CallResult | CallError | None:
        """Send a frame of the station's as our own call; None when the backend
        did not answer (None too when the connection dropped: `connected` says)."""
        # A live call with the same id goes first (a station that counts its
        # ids from 1 again after a reboot); rare, so polled.
        while unique_id in self._forwarded or unique_id in self._own:  # noqa: ASYNC110
            await asyncio.sleep(0.05)
        future: asyncio.Future[CallResult | CallError] = asyncio.get_running_loop().create_future()
        self._own[unique_id] = future
        try:
            if not await self._send(text):
                return None
            return await asyncio.wait_for(future, self.options.response_timeout)
        except (TimeoutError, asyncio.CancelledError):
            if not self.connected:
                raise
            return None
        finally:
            self._own.pop(unique_id, None)

    async def _catch_up(self) -> None:
        try:
            await self._send_what_was_missed()
        except (asyncio.CancelledError, ConnectionClosed):
            raise
        except Exception:  # a bug of ours: logged, and the rest goes on
            log.exception("%s: failed to send its backend what it missed", self.station.id)

    async def _send_what_was_missed(self) -> None:
        """A BootNotification the backend missed, then the kept messages in
        order, then the latest StatusNotification of each connector."""
        station = self.station
        if self._missed_boot is not None:
            boot = self._missed_boot
            answer = await self._own_call(boot, _message_id(boot))
            if isinstance(answer, CallResult):
                self._missed_boot = None
                log.info(
                    "%s: its backend answered the BootNotification it missed: %s",
                    station.id,
                    str(answer.payload.get("status"))[:40],
                )
        await self._send_kept()
        while self._statuses_due and self.connected:
            key = next(iter(self._statuses_due))
            status = self._statuses_due.pop(key)
            await self._own_call(status, _message_id(status))
        # Later: whatever is kept while the backend is here (a station with many
        # calls in flight, records that arrive late from the broker).
        while self.connected:
            await self._kept_waiting.wait()
            await self._send_kept()

    async def _send_kept(self) -> None:
        """The kept messages, in order, each once the one before was answered."""
        station = self.station
        self._kept_waiting.clear()
        sent = 0
        while self.connected:
            first = self.backlog.first()
            if first is None:
                break
            seq, frame, local = first
            if not await self._valid_kept(frame):
                self.backlog.done(seq)
                continue
            out = up.to_backend(frame, self.backlog.ids)
            answer = await self._own_call(out, _message_id(frame))
            if answer is None and not self.connected:
                return  # kept; sent again next time
            self._took_kept(frame, local, answer)
            self.backlog.done(seq)
            sent += 1
            self.stats.kept_sent += 1
        if sent:
            log.info("%s: sent its backend %d messages kept while it was away", station.id, sent)

    async def _valid_kept(self, frame: str) -> bool:
        """Only a transaction message of this station's version, valid by its
        schema: a record on the broker is not trusted to be one."""
        station = self.station
        message = parse_frame(frame, station.version)
        if isinstance(message, Call) and station.kept_for_backend(message.action, message.payload):
            try:
                await schema_validation.validate(message, station.version)
                return True
            except (OCPPError, RecursionError):
                pass
        log.warning("%s: dropped a kept message that is no valid transaction message", station.id)
        return False

    def _took_kept(
        self, frame: str, local: int | None, answer: CallResult | CallError | None
    ) -> None:
        station = self.station
        if isinstance(answer, CallError):
            log.warning(
                "%s: its backend refused a kept message: %s %s",
                station.id,
                answer.error_code[:40],
                answer.error_description[:200],
            )
            return
        if answer is None:
            log.warning("%s: its backend did not answer a kept message; not sent again", station.id)
            return
        if local is not None:
            backend_id = (
                answer.payload.get("transactionId") if isinstance(answer.payload, dict) else None
            )
            if isinstance(backend_id, int) and not isinstance(backend_id, bool):
                self.backlog.map_id(local, backend_id)
                log.info("%s: transaction %d is %d at its backend", station.id, local, backend_id)
        elif station.ends_transaction(frame):
            ours = up.transaction_id_of(frame)
            if ours is not None:
                self.backlog.unmap_id(ours)

    def _drop(self, pending: _Forwarded) -> None:
        if pending.timer is not None:
            pending.timer.cancel()
        if pending.local is not None and pending.local[1] is not None:
            pending.local[1].close()

    def close(self) -> None:
        """The station left, or a newer connection of it took over. A call of
        its that got no answer is the station's to send again, as it would to
        its backend; what is kept stays kept."""
        for pending in self._forwarded.values():
            self._drop(pending)
        self._forwarded.clear()
        self.stop()


def _message_id(frame: str) -> str:
    message = parse_frame(frame)
    return message.unique_id if not isinstance(message, FrameError) and message.unique_id else ""
