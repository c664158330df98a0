"""One connected charging station, whatever its OCPP version: the core.

This is the version-neutral part of a station: the receive path, outbound
calls, and what the connector knows of it (EVSEs or connectors, transactions,
learned capabilities, limits in force). One adapter per OCPP version
subclasses it with the `@on`/`@after` handlers that turn that version's
messages into datapoints and hooks, and the builders that turn the core's
commands (a charging limit, a trigger) into that version's requests:
station_v16.py for OCPP 1.6, station_v2.py for OCPP 2.0.1 and 2.1.

Routing uses the ocpp library's `@on`/`@after` decorators and its JSON
schemas. The receive path is our own, in the open, because ocpp 2.1.0's
`ChargePoint.start()`/`route_message()` has faults users would feel:
- a bad frame or a handler returning None ends `start()`, and with it the
  station's connection (see frames.py for the frames);
- schema errors are answered as `FormatViolation`, the OCPP 2.0 spelling;
  OCPP 1.6 requires `FormationViolation`;
- for OCPP 2.1 it answers an unknown action with nothing at all, and it
  cannot parse 2.1's SEND frames (periodic event streams);
- calls are handled inline in the receive loop, so `await self.call()` in an
  `@on` handler waits for a response that loop can no longer read, until the
  response timeout.
Here the reader answers a call inline when its handler is a plain function
(every handler of ours: they never wait for the station), and responses
resolve waiting calls at once. A handler that awaits (it may call the
station) runs in a worker task, and calls that arrive meanwhile queue behind
it, so the reader keeps reading and the order holds.

A station is not an `ocpp.v16.ChargePoint`: that class builds its routing
table, a response queue and a lock for every connection, and we use none of
them but the table, which is built once per class here. At thousands of
stations that was about a quarter of each connection's memory.

Our handlers take the validated wire payload (camelCase, as sent) rather than
the library's snake_case keyword arguments: datapoint keys use the wire names,
and the library's case conversion does not round-trip every name (`SoC`).
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import time
import uuid
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import ocpp.messages
from ocpp.exceptions import OCPPError
from ocpp.messages import Call, CallError, CallResult
from ocpp.routing import create_route_map
from websockets.exceptions import ConnectionClosed

from connector.core import charging_profiles as cp
from connector.core import datapoints as dp
from connector.core.capabilities import Capabilities
from connector.core.commands import format_time
from connector.core.electrical import Electrical
from connector.core.energy_guard import EnergyGuard
from connector.core.secrets import redact_frame
from connector.core.transactions import Transactions
from connector.core.upstream import is_kept
from connector.stations import schema_validation
from connector.stations.frames import (
    INTERNAL_ERROR,
    NOT_IMPLEMENTED,
    NOT_SUPPORTED,
    CallResultError,
    FrameError,
    Send,
    call_error_json,
    call_json,
    call_result_json,
    parse_frame,
)
from connector.versions import OCPP16, Version

if TYPE_CHECKING:
    from connector.stations.upstream import Upstream

log = logging.getLogger(__name__)

# Validate in the event loop: payloads are small, and a thread hop per frame
# costs more than the validation itself.
ocpp.messages.ASYNC_VALIDATION = False

# Incoming calls waiting behind a handler that awaits. When full, the reader
# stops reading, and the WebSocket's flow control slows the station down.
INCOMING_QUEUE_SIZE = 64
# Frames a station may send in a burst before OCPP_MAX_FRAMES_PER_SECOND
# holds it back, in seconds' worth.
BURST_SECONDS = 2.0
SLOWED_WARNING_INTERVAL = 60.0
# Connectors (EVSEs) known per station; a real one has a handful.
MAX_CONNECTORS = 128


TIMEOUT = "Timeout"
DISCONNECTED = "Disconnected"


def now_ms() -> int:
    return int(time.time() * 1000)


class CallFailed(Exception):
    """An outbound call did not get a CALLRESULT; `status` says how it ended."""

    def __init__(self, status: str, detail: str, seconds: float | None = None) -> None:
        super().__init__(detail)
        self.status = status
        self.seconds = seconds  # the round trip, when an answer came


@dataclass(frozen=True)
class StationHooks:
    """What a station needs from the rest of the connector, injected."""

    publish: Callable[[list[dp.Datapoint]], None]
    next_transaction_id: Callable[[], int]
    heartbeat_interval: int
    response_timeout: float
    on_raw_frame: Callable[[str, str], None] | None = None
    on_boot: Callable[[Station], None] | None = None
    on_connector: Callable[[Station, int], None] | None = None
    # A running transaction first seen in MeterValues (its start was missed,
    # for instance across a restart of the connector): (station, connectorId).
    on_transaction_seen: Callable[[Station, int], None] | None = None
    # A session runs on a connector (True) or ended there (False): site budgets.
    on_session: Callable[[Station, int, bool], None] | None = None
    energy_monotonic: bool = True
    # OCPP_MAX_CLOCK_SKEW: a sample time further ahead than this, or older than
    # the station's boot by more, is replaced by the time of receipt.
    max_clock_skew: float = 300.0
    # OCPP_ID_TAGS: when set, other tags are answered Invalid.
    id_tags: frozenset[str] | None = None
    # OCPP_MAX_FRAMES_PER_SECOND: beyond it, the station is read more slowly.
    max_frames_per_second: float = 200.0
    # Set while MQTT can take more; a station's next frame waits for it.
    mqtt_flowing: asyncio.Event | None = None
    # Metrics (README "Operations"): a call of the station's was answered
    # (action, whether with a CALLRESULT); a frame was no message at all; a
    # call of ours ended (action, status, seconds when it was answered).
    on_answered: Callable[[Station, str, bool], None] | None = None
    on_refused: Callable[[Station], None] | None = None
    on_called: Callable[[Station, str, str, float | None], None] | None = None


class Flag:
    """An asyncio.Event without the deque each Event allocates up front.

    A station has two (booted, learned); at thousands of stations the
    deques alone were over a kilobyte per station.
    """

    __slots__ = ("_is_set", "_waiter")

    def __init__(self) -> None:
        self._is_set = False
        self._waiter: asyncio.Future[None] | None = None

    def is_set(self) -> bool:
        return self._is_set

    def set(self) -> None:
        self._is_set = True
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    async def wait(self) -> bool:
        if not self._is_set:
            if self._waiter is None:
                self._waiter = asyncio.get_running_loop().create_future()
            # Shielded: one waiter that times out must not cancel the others.
            await asyncio.shield(self._waiter)
        return True


Routes = dict[str, dict[str, Any]]
# A call's answer as this connector would give it: the frame, and the work to
# run once the station has it (an `@after` handler), if any.
LocalAnswer = tuple[str, Coroutine[Any, Any, Any] | None]
_AWAITS = "_awaits"
# Routing tables (action -> handlers, as ocpp.routing builds them), per class.
_routes: dict[type, Routes] = {}


def _route_map(cls: type) -> Routes:
    """ocpp.routing's table for the class, noting which handlers await."""
    routes: Routes = create_route_map(cls)
    for handlers in routes.values():
        handler = handlers.get("_on_action")
        # @on wraps every handler in a plain function; look beneath it.
        handlers[_AWAITS] = handler is not None and inspect.iscoroutinefunction(
            inspect.unwrap(handler)
        )
    return routes


class Station:
    # The adapter's version (versions.py).
    version: Version = OCPP16
    # What the version calls what stands in a key's connector position.
    connector_noun = "connector"
    # Whether a BootNotification may be asked for. OCPP 2.x forbids it once a
    # station is accepted: such a station is served from its boot record.
    may_trigger_boot = True
    # Where a station says it does no smart charging (for a WARNING).
    smart_charging_off = "SupportedFeatureProfiles does not list SmartCharging"
    # Every action of the version, for NotImplemented (unknown) against
    # NotSupported (known, but not served here).
    known_actions: frozenset[str] = frozenset()
    # A station's own backend (upstream.py, core/upstream.py): the actions that
    # are transaction messages, always or when they carry a transactionId;
    # and those whose handling waits for the backend's answer (its ids).
    kept_always: frozenset[str] = frozenset()
    kept_with_transaction: frozenset[str] = frozenset()
    decided_by_backend: frozenset[str] = frozenset()

    def __init__(self, cp_id: str, connection: Any, hooks: StationHooks) -> None:
        self.id = cp_id
        # Set by the bridge with several instances: this connection's claim.
        self.connection_id = ""
        self._connection = connection
        self._response_timeout = hooks.response_timeout
        self._call_lock = asyncio.Lock()
        routes = _routes.get(type(self))
        if routes is None:
            routes = _routes[type(self)] = _route_map(type(self))
        self._routes = routes
        self.hooks = hooks
        self.booted = Flag()
        self.connectors: set[int] = set()
        self.transactions = Transactions()
        # What the station said about itself (GetConfiguration), and what its
        # meter values show; station_setup.py and charging_control.py use them.
        self.config: dict[str, str | None] = {}
        self.capabilities = Capabilities()
        self.learned = Flag()
        self.electrical = Electrical()
        self.energy_guard = EnergyGuard(hooks.energy_monotonic)
        self._falling: set[str] = set()
        self._pending: dict[str, asyncio.Future[CallResult | CallError]] = {}
        # The station's own backend, when forwarded (upstream.py); its calls
        # to the station awaiting the station's answer, by message id.
        self.upstream: Upstream | None = None
        self._relayed: dict[str, asyncio.Future[tuple[CallResult | CallError, str]]] = {}
        # The answer the backend gave to the call being handled (upstream.py).
        self.backend_answer: dict[str, Any] | None = None
        # Its own backend answered its BootNotification Pending or Rejected: it
        # is left alone (no set-up, no limits) until a boot is accepted.
        self.boot_refused = False
        # Made when a handler awaits; see the module's docstring.
        self._incoming: asyncio.Queue[tuple[Call, str]] | None = None
        self._worker: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._closed = False
        self._answered_in: float | None = None  # the last call's round trip (metrics)
        # When its BootNotification was accepted (ms); 0: not on this connection.
        self.booted_at = 0
        self._clock_off = False
        # The token bucket of OCPP_MAX_FRAMES_PER_SECOND.
        self._tokens = hooks.max_frames_per_second * BURST_SECONDS
        self._tokens_at = 0.0
        self._slowed_at = -SLOWED_WARNING_INTERVAL

    # ---- receive path -------------------------------------------------

    async def start(self) -> None:
        """Serve the connection until it closes. Never raises for bad input.

        A station is read no faster than OCPP_MAX_FRAMES_PER_SECOND (after a
        burst), nor faster than MQTT takes the values: while the reader waits,
        websockets holds a few frames and then TCP's flow control holds the
        station. So one station that floods costs bounded memory and CPU, and
        nothing it sends is buffered without end."""
        flowing = self.hooks.mqtt_flowing
        try:
            async for raw in self._connection:
                if self._take_token():  # a plain call: this runs for every frame
                    await self._slow_down()
                if flowing is not None and not flowing.is_set():
                    await flowing.wait()
                await self._on_frame(raw)
        except ConnectionClosed as closed:
            log.info("%s: connection closed (%s)", self.id, closed)
        finally:
            self._closed = True
            if self._worker is not None:
                self._worker.cancel()
            for future in (*self._pending.values(), *self._relayed.values()):
                if not future.done():
                    future.set_exception(CallFailed(DISCONNECTED, "the station disconnected"))
                    # The call awaiting it may be cancelled with the station's tasks
                    # below, before it reads this; asyncio would log an ERROR.
                    future.exception()
            for task in list(self._tasks):
                task.cancel()

    def _take_token(self) -> bool:
        """One frame's token; True when there was none (the station is too fast)."""
        rate = self.hooks.max_frames_per_second
        now = asyncio.get_running_loop().time()
        tokens = min(rate * BURST_SECONDS, self._tokens + (now - self._tokens_at) * rate)
        self._tokens_at = now
        if tokens < 1:
            self._tokens = tokens
            return True
        self._tokens = tokens - 1
        return False

    async def _slow_down(self) -> None:
        rate = self.hooks.max_frames_per_second
        now = asyncio.get_running_loop().time()
        if now - self._slowed_at >= SLOWED_WARNING_INTERVAL:
            # Once a minute per station: the flood guard counts by message
            # template, so one station's flood would hide another's WARNING.
            self._slowed_at = now
            log.warning(
                "%s: sends more than OCPP_MAX_FRAMES_PER_SECOND (%g frames a second); "
                "read more slowly",
                self.id,
                rate,
            )
        await asyncio.sleep((1 - self._tokens) / rate)
        self._tokens_at = asyncio.get_running_loop().time()
        self._tokens = 0.0  # the token it waited for is this frame's

    def abort(self) -> None:
        """Drop the TCP connection at once (shutdown, when a close takes too long)."""
        transport = getattr(self._connection, "transport", None)
        if transport is not None:
            transport.abort()

    async def _on_frame(self, raw: str | bytes) -> None:
        text = raw if isinstance(raw, str) else raw.decode("utf-8", "replace")
        if self.hooks.on_raw_frame is not None:
            # Raw messages carry what the station sent, but not its secrets.
            self.hooks.on_raw_frame(self.id, redact_frame(text))
        message = parse_frame(raw, self.version)
        if isinstance(message, FrameError):
            if self.hooks.on_refused is not None:
                self.hooks.on_refused(self)
            log.warning("%s: refused a frame: %s", self.id, message.description)
            if message.unique_id is not None:
                await self._send(
                    call_error_json(message.unique_id, message.code, message.description)
                )
            return
        if isinstance(message, Call):
            await self._on_call(message, text)
            return
        if isinstance(message, (Send, CallResultError)) and self.upstream is not None:
            self.upstream.pass_on(text)
        if isinstance(message, Send):
            await self._on_send(message)
            return
        if isinstance(message, CallResultError):
            log.warning(
                "%s: the station could not take our answer to %s: %s %s",
                self.id,
                message.unique_id,
                message.error_code,
                message.error_description[:200],
            )
            return
        if self._relayed:
            relayed = self._relayed.get(message.unique_id)
            if relayed is not None:
                if not relayed.done():
                    relayed.set_result((message, text))
                return
        future = self._pending.get(message.unique_id)
        if future is None or future.done():
            log.warning(
                "%s: ignored a response to no pending call (%s)", self.id, message.unique_id
            )
            return
        future.set_result(message)

    async def _on_call(self, call: Call, text: str) -> None:
        handlers = self._routes.get(call.action, {})
        upstream = self.upstream
        if (
            self._worker is None
            and not handlers.get(_AWAITS)
            and (upstream is None or not upstream.opening)
        ):
            await self._answer(call, text)
            return
        if self._incoming is None:
            self._incoming = asyncio.Queue(INCOMING_QUEUE_SIZE)
        await self._incoming.put((call, text))
        if self._worker is None:
            self._worker = asyncio.create_task(self._work(), name=f"{self.id}-worker")

    async def _on_send(self, send: Send) -> None:
        """OCPP 2.1 SEND: handled in order with the calls, and never answered."""
        log.warning("%s: dropped a SEND of %s, which is not served", self.id, send.action[:64])

    def error_code(self, code: str, cause: str = "") -> str:
        """The ocpp library's error code for a payload, in this version's words."""
        return self.version.payload_error(code, cause)

    async def _work(self) -> None:
        """Answer queued calls in order, then end until a handler awaits again."""
        assert self._incoming is not None
        try:
            while not self._incoming.empty():
                await self._answer(*self._incoming.get_nowait())
        finally:
            self._worker = None

    async def _answer(self, call: Call, text: str) -> None:
        if self.upstream is not None:
            try:
                await self.upstream.from_station(call, text)
            except Exception:  # a bug of ours must not end the station's session
                log.exception("%s: failed to forward %s", self.id, call.action)
                await self._send(call_error_json(call.unique_id, INTERNAL_ERROR, "internal error"))
            return
        response, after = await self.local_answer(call)
        await self._send(response)
        self.answered(call.action, response.startswith("[3,"))
        if after is not None:
            self.spawn(after)

    def answered(self, action: str, ok: bool) -> None:
        """A call of the station's got its answer (ok: a CALLRESULT): metrics."""
        hook = self.hooks.on_answered
        if hook is not None:
            hook(self, action if action in self.known_actions else "other", ok)

    async def local_answer(self, call: Call, backend: dict[str, Any] | None = None) -> LocalAnswer:
        """This connector's answer to a call; `backend`: the answer of the
        station's own backend, which decides what only it can (upstream.py)."""
        try:
            return await self._handle(call, backend)
        except Exception:  # a bug of ours must not end the station's session
            log.exception("%s: failed to handle %s", self.id, call.action)
            return call_error_json(call.unique_id, INTERNAL_ERROR, "internal error"), None

    async def _handle(self, call: Call, backend: dict[str, Any] | None = None) -> LocalAnswer:
        handlers = self._routes.get(call.action)
        if handlers is None or "_on_action" not in handlers:
            code = NOT_SUPPORTED if call.action in self.known_actions else NOT_IMPLEMENTED
            log.warning("%s: answered %s to action %r", self.id, code, call.action[:64])
            return call_error_json(
                call.unique_id, code, f"{call.action[:64]} is not supported"
            ), None
        try:
            await schema_validation.validate(call, self.version)
        except OCPPError as error:
            code = self.error_code(error.code, str(error.details.get("cause", "")))
            log.warning("%s: invalid %s: %s", self.id, call.action, error.details.get("cause", ""))
            cause = str(error.details.get("cause", ""))[:200]
            return call_error_json(call.unique_id, code, cause), None
        except RecursionError:
            code = self.version.format_violation
            return call_error_json(call.unique_id, code, "payload nested too deeply"), None

        # Read by the handler at once, before it could yield.
        self.backend_answer = backend
        try:
            response = handlers["_on_action"](self, call.payload)
        finally:
            self.backend_answer = None
        if inspect.isawaitable(response):
            # Safe even when the handler awaits call_action(): the reader task
            # keeps reading, so the station's answer gets through.
            response = await response
        if not isinstance(response, dict):
            log.error("%s: handler for %s returned no payload", self.id, call.action)
            return call_error_json(call.unique_id, INTERNAL_ERROR, "no response payload"), None
        result = call.create_call_result(response)
        await schema_validation.validate(result, self.version)

        after = handlers.get("_after_action")
        return call_result_json(call.unique_id, response), (
            after(self, call.payload) if after is not None else None
        )

    def spawn(self, coroutine: Coroutine[Any, Any, Any]) -> asyncio.Task[Any] | None:
        """Run work tied to this connection; it is cancelled when it closes, and
        work for a connection that has closed is not started at all (None)."""
        if self._closed:
            coroutine.close()
            return None
        # Keep a reference: asyncio only holds weak references to tasks.
        task = asyncio.create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def close(self, code: int, reason: str) -> None:
        await self._connection.close(code, reason)

    @property
    def closed(self) -> bool:
        return self._closed

    async def _send(self, message: str) -> None:
        try:
            await self._connection.send(message)
        except Exception as error:  # the connection closed under us
            log.debug("%s: could not send: %s", self.id, error)

    send_text = _send

    # ---- a station's own backend (upstream.py) ---------------------------

    def kept_for_backend(self, action: str, payload: dict[str, Any]) -> bool:
        """A transaction message: kept in order while the backend is away."""
        return is_kept(action, payload, self.kept_always, self.kept_with_transaction)

    def ends_transaction(self, frame: str) -> bool:
        return False

    def transaction_id_given(self, action: str, response: str) -> int | None:
        """Our transaction id in our answer to a call the backend decides (1.6)."""
        return None

    def status_key(self, payload: dict[str, Any]) -> Any:
        """What a StatusNotification is the latest of (a connector)."""
        return None

    def message_id_in_use(self, unique_id: str) -> bool:
        return unique_id in self._pending or unique_id in self._relayed

    async def relay_call(
        self, unique_id: str, text: str
    ) -> tuple[CallResult | CallError, str] | None:
        """A call of the station's backend, passed on as it came, in turn with
        ours; the station's answer and its text, or None when none came."""
        async with self._call_lock:
            future: asyncio.Future[tuple[CallResult | CallError, str]] = (
                asyncio.get_running_loop().create_future()
            )
            self._relayed[unique_id] = future
            try:
                await self._connection.send(text)
                return await asyncio.wait_for(future, self._response_timeout)
            except (TimeoutError, ConnectionClosed, CallFailed):
                return None
            finally:
                del self._relayed[unique_id]

    # ---- send path ----------------------------------------------------

    async def call_action(self, action: str, payload: dict[str, Any]) -> dict[str, Any]:
        """Send one CALL and return the CALLRESULT payload.

        One call is outstanding per station at a time (OCPP-J); later callers
        wait their turn in arrival order. Raises CallFailed on a CALLERROR,
        a timeout or an answer that breaks the schema.
        """
        unique_id = str(uuid.uuid4())
        request = Call(unique_id, action, payload)
        await schema_validation.validate(request, self.version)
        try:
            answer_payload = await self._call(unique_id, action, payload)
        except CallFailed as failure:
            if self.hooks.on_called is not None:
                self.hooks.on_called(self, action, failure.status, failure.seconds)
            raise
        if self.hooks.on_called is not None:
            seconds = self._answered_in
            self.hooks.on_called(self, action, self.answer_status(action, answer_payload), seconds)
        return answer_payload

    async def _call(self, unique_id: str, action: str, payload: dict[str, Any]) -> dict[str, Any]:
        loop = asyncio.get_running_loop()
        async with self._call_lock:
            future: asyncio.Future[CallResult | CallError] = (
                asyncio.get_running_loop().create_future()
            )
            self._pending[unique_id] = future
            try:
                await self._connection.send(call_json(unique_id, action, payload))
                sent_at = loop.time()
                answer = await asyncio.wait_for(future, self._response_timeout)
                self._answered_in = loop.time() - sent_at
            except TimeoutError:
                raise CallFailed(TIMEOUT, f"no answer within {self._response_timeout} s") from None
            except ConnectionClosed:
                raise CallFailed(DISCONNECTED, "the station disconnected") from None
            finally:
                del self._pending[unique_id]
        if isinstance(answer, CallError):
            raise CallFailed(
                f"CallError:{answer.error_code}", answer.error_description, self._answered_in
            )
        answer.action = action
        # ocpp 2.1.0's validation swaps the payload of some answers
        # (GetCompositeSchedule) for a copy with decimal.Decimal numbers, which
        # json cannot encode; the payload as received is what we hand on.
        payload = answer.payload
        try:
            await schema_validation.validate(answer, self.version)
        except OCPPError as error:
            cause = str(error.details.get("cause", ""))
            raise CallFailed("InvalidResponse", cause, self._answered_in) from None
        return payload

    async def command(self, action: str, payload: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        """Call, then publish `<cp>__<action>__status` and log the outcome."""
        try:
            answer = await self.call_action(action, payload)
            status = self.answer_status(action, answer)
        except CallFailed as failure:
            answer, status = {}, failure.status
            log.warning("%s: %s ended in %s: %s", self.id, action, status, failure)
            if status == DISCONNECTED:
                # Not the station's answer; limits in force are sent again on reconnect.
                return status, answer
        else:
            level = logging.INFO if status == "Accepted" else logging.WARNING
            log.log(level, "%s: %s answered %s", self.id, action, status)
        self.hooks.publish(dp.command_status(self.id, action, status, now_ms()))
        return status, answer

    # ---- the core's commands in this version's words (the adapters) ---

    def profile_request(self, target: cp.Target, rate: cp.Rate, level: int) -> dict[str, Any]:
        """A SetChargingProfile payload for one planned profile."""
        raise NotImplementedError

    def clear_request(self, profile_id: int) -> dict[str, Any]:
        """A ClearChargingProfile payload for one of our profile ids."""
        raise NotImplementedError

    def trigger_request(self, message: str, connector_id: int | None) -> dict[str, Any]:
        raise NotImplementedError

    def answer_status(self, action: str, answer: dict[str, Any]) -> str:
        """The outcome of a call, for `<cp>__<action>__status`."""
        return str(answer.get("status", "Accepted"))

    async def learn(
        self, sampled_data: bool, sample_interval: bool, phase_switching: bool = False
    ) -> None:
        """Ask the station what it can do, into `capabilities` (station_setup.py):
        with the sampling settings too when OCPP_METER_VALUES_SAMPLED_DATA or
        OCPP_METER_VALUE_SAMPLE_INTERVAL is set."""
        raise NotImplementedError

    def sampling_setting(self, setting: str, value: str) -> str:
        """The value of execute_change_configuration that writes a sampling
        setting (core/capabilities.py: SAMPLED_DATA, SAMPLE_INTERVAL)."""
        raise NotImplementedError

    # ---- what every version's handlers share ---------------------------

    def boot_answer(self) -> dict[str, Any]:
        """BootNotification's answer: Accepted, OCPP_HEARTBEAT_INTERVAL, our time (both
        versions have these three fields)."""
        return {
            "status": "Accepted",
            "currentTime": format_time(datetime.now(UTC)),
            "interval": self.hooks.heartbeat_interval,
        }

    def heartbeat_answer(self) -> dict[str, Any]:
        self.hooks.publish(dp.heartbeat(self.id, now_ms()))
        return {"currentTime": format_time(datetime.now(UTC))}

    def boot_accepted(self) -> None:
        """After a BootNotification was answered."""
        # A reboot may reset the energy register; its next value is accepted.
        # (Charging control hears of the boot too: every limit is sent again.)
        self.energy_guard.reset()
        self.booted_at = now_ms()
        self._clock_off = False  # BootNotification's answer sets its clock
        self.boot_refused = False
        self.booted.set()
        if self.hooks.on_boot is not None:
            self.hooks.on_boot(self)

    def token_status(self, token: str) -> str:
        """OCPP_ID_TAGS: Accepted, or Invalid for a tag (1.6) or token (2.x) not listed."""
        tokens = self.hooks.id_tags
        if tokens is not None and token not in tokens:
            log.warning("%s: id tag %r is not in OCPP_ID_TAGS; answered Invalid", self.id, token)
            return "Invalid"
        return "Accepted"

    # ---- helpers ------------------------------------------------------

    def note_connector(self, connector_id: int) -> None:
        """A connector (EVSE) the station reported; at most MAX_CONNECTORS of
        them, as the numbers are the station's to choose."""
        if connector_id not in self.connectors and len(self.connectors) < MAX_CONNECTORS:
            self.connectors.add(connector_id)
            if self.hooks.on_connector is not None:
                self.hooks.on_connector(self, connector_id)

    def _publish_mapped(self, connector_id: int, mapped: dp.Mapped) -> None:
        for problem in mapped.problems:
            log.warning("%s: skipped a sampled value: %s", self.id, problem)
        kept, dropped = self.energy_guard.filter(connector_id, mapped.datapoints)
        for point in dropped:
            # One WARNING per run of drops; a station stuck below its old
            # register would otherwise fill the log at every sample.
            level = logging.DEBUG if point.key in self._falling else logging.WARNING
            self._falling.add(point.key)
            log.log(
                level,
                "%s: dropped %s = %s: lower than the last value, and an energy register "
                "cannot fall. Set OCPP_ENERGY_MONOTONIC=FALSE if the meter was reset",
                self.id,
                point.key,
                point.value,
            )
        if self._falling:
            self._falling.difference_update(p.key for p in kept)
        self.hooks.publish(self._trusted_times(kept))

    def _trusted_times(self, points: list[dp.Datapoint]) -> list[dp.Datapoint]:
        """A sample time from a clock that is far off (ahead by more than
        OCPP_MAX_CLOCK_SKEW, or before the station's boot by more) becomes the
        time of receipt: BEMCom's latest value never jumps ahead or back."""
        now = now_ms()
        if not self._clock_off:
            skew = int(self.hooks.max_clock_skew * 1000)
            earliest = self.booted_at - skew if self.booted_at else 0
            if all(earliest <= p.timestamp <= now + skew for p in points):
                return points
            # Once off, always off on this connection: a clock found wrong is not
            # trusted again when its times fall back into range (a slow clock
            # would make BEMCom's latest value jump back).
            self._clock_off = True
            log.warning(
                "%s: its clock is off (a sample time more than OCPP_MAX_CLOCK_SKEW=%g s ahead, "
                "or before its boot); its values carry the time of receipt from now on",
                self.id,
                self.hooks.max_clock_skew,
            )
        return [p._replace(timestamp=now) for p in points]
