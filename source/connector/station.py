"""One connected charging station: OCPP handlers in, commands out.

Uses the ocpp library's declarative `@on`/`@after` routing and its OCPP 1.6
JSON schemas. The receive path is our own, in the open, because ocpp 2.1.0's
`ChargePoint.start()`/`route_message()` has faults users would feel:
- a bad frame or a handler returning None ends `start()`, and with it the
  station's connection (see frames.py for the frames);
- schema errors are answered as `FormatViolation`, the OCPP 2.0 spelling;
  OCPP 1.6 requires `FormationViolation`;
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
from typing import Any

import ocpp.messages
from ocpp.exceptions import OCPPError
from ocpp.messages import Call, CallError, CallResult
from ocpp.routing import after, create_route_map, on
from ocpp.v16.enums import Action
from websockets.exceptions import ConnectionClosed

from connector import datapoints as dp
from connector import schema_validation
from connector.commands import format_time
from connector.electrical import Electrical, measure
from connector.energy_guard import EnergyGuard
from connector.frames import (
    FORMATION_VIOLATION,
    INTERNAL_ERROR,
    NOT_IMPLEMENTED,
    NOT_SUPPORTED,
    FrameError,
    call_error_json,
    call_json,
    call_result_json,
    ocpp16_code,
    parse_frame,
)
from connector.station_config import (
    Capabilities,
    capabilities,
    configuration_datapoints,
    read_configuration,
)

log = logging.getLogger(__name__)

# Validate in the event loop: payloads are small, and a thread hop per frame
# costs more than the validation itself.
ocpp.messages.ASYNC_VALIDATION = False

# Incoming calls waiting behind a handler that awaits. When full, the reader
# stops reading, and the WebSocket's flow control slows the station down.
INCOMING_QUEUE_SIZE = 64
# Transactions remembered per station, so a station that never stops its
# sessions cannot grow memory without bound.
MAX_TRACKED_TRANSACTIONS = 64

_ACTIONS = {a.value for a in Action}


TIMEOUT = "Timeout"
DISCONNECTED = "Disconnected"


def now_ms() -> int:
    return int(time.time() * 1000)


class CallFailed(Exception):
    """An outbound call did not get a CALLRESULT; `status` says how it ended."""

    def __init__(self, status: str, detail: str) -> None:
        super().__init__(detail)
        self.status = status


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
    energy_monotonic: bool = True
    # OCPP_ID_TAGS: when set, other tags are answered Invalid.
    id_tags: frozenset[str] | None = None


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
    def __init__(self, cp_id: str, connection: Any, hooks: StationHooks) -> None:
        self.id = cp_id
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
        # transactionId -> connectorId
        self.transactions: dict[int, int] = {}
        # What the station said about itself (GetConfiguration), and what its
        # meter values show; station_setup.py and charging_control.py use them.
        self.config: dict[str, str | None] = {}
        self.capabilities = Capabilities()
        self.learned = Flag()
        self.setup_lock = asyncio.Lock()
        self.electrical = Electrical()
        self.energy_guard = EnergyGuard(hooks.energy_monotonic)
        self.limit_locks: dict[int, asyncio.Lock] = {}
        self.applied_generations: dict[int, int] = {}
        # connectorId -> (W, transactionId) the station accepted on this connection.
        self.limits_in_force: dict[int, tuple[float, int | None]] = {}
        self.refuses_charge_point_max = False
        self.refuses_power = False
        self._falling: set[str] = set()
        self._pending: dict[str, asyncio.Future[CallResult | CallError]] = {}
        # Made when a handler awaits; see the module's docstring.
        self._incoming: asyncio.Queue[Call] | None = None
        self._worker: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[Any]] = set()

    # ---- receive path -------------------------------------------------

    async def start(self) -> None:
        """Serve the connection until it closes. Never raises for bad input."""
        try:
            async for raw in self._connection:
                await self._on_frame(raw)
        except ConnectionClosed as closed:
            log.info("%s: connection closed (%s)", self.id, closed)
        finally:
            if self._worker is not None:
                self._worker.cancel()
            for future in self._pending.values():
                if not future.done():
                    future.set_exception(CallFailed(DISCONNECTED, "the station disconnected"))
            for task in list(self._tasks):
                task.cancel()

    async def _on_frame(self, raw: str | bytes) -> None:
        text = raw if isinstance(raw, str) else raw.decode("utf-8", "replace")
        if self.hooks.on_raw_frame is not None:
            self.hooks.on_raw_frame(self.id, text)
        message = parse_frame(raw)
        if isinstance(message, FrameError):
            log.warning("%s: refused a frame: %s", self.id, message.description)
            if message.unique_id is not None:
                await self._send(
                    call_error_json(message.unique_id, message.code, message.description)
                )
            return
        if isinstance(message, Call):
            await self._on_call(message)
            return
        future = self._pending.get(message.unique_id)
        if future is None or future.done():
            log.warning(
                "%s: ignored a response to no pending call (%s)", self.id, message.unique_id
            )
            return
        future.set_result(message)

    async def _on_call(self, call: Call) -> None:
        handlers = self._routes.get(call.action, {})
        if self._worker is None and not handlers.get(_AWAITS):
            await self._answer(call)
            return
        if self._incoming is None:
            self._incoming = asyncio.Queue(INCOMING_QUEUE_SIZE)
        await self._incoming.put(call)
        if self._worker is None:
            self._worker = asyncio.create_task(self._work(), name=f"{self.id}-worker")

    async def _work(self) -> None:
        """Answer queued calls in order, then end until a handler awaits again."""
        assert self._incoming is not None
        try:
            while not self._incoming.empty():
                await self._answer(self._incoming.get_nowait())
        finally:
            self._worker = None

    async def _answer(self, call: Call) -> None:
        try:
            response = await self._handle(call)
        except Exception:  # a bug of ours must not end the station's session
            log.exception("%s: failed to handle %s", self.id, call.action)
            response = call_error_json(call.unique_id, INTERNAL_ERROR, "internal error")
        await self._send(response)

    async def _handle(self, call: Call) -> str:
        handlers = self._routes.get(call.action)
        if handlers is None or "_on_action" not in handlers:
            code = NOT_IMPLEMENTED if call.action in _ACTIONS else NOT_SUPPORTED
            log.warning("%s: answered %s to action %r", self.id, code, call.action[:64])
            return call_error_json(call.unique_id, code, f"{call.action[:64]} is not supported")
        try:
            await schema_validation.validate(call, "1.6")
        except OCPPError as error:
            code = ocpp16_code(error.code)
            log.warning("%s: invalid %s: %s", self.id, call.action, error.details.get("cause", ""))
            return call_error_json(call.unique_id, code, str(error.details.get("cause", ""))[:200])
        except RecursionError:
            return call_error_json(call.unique_id, FORMATION_VIOLATION, "payload nested too deeply")

        response = handlers["_on_action"](self, call.payload)
        if inspect.isawaitable(response):
            # Safe even when the handler awaits call_action(): the reader task
            # keeps reading, so the station's answer gets through.
            response = await response
        if not isinstance(response, dict):
            log.error("%s: handler for %s returned no payload", self.id, call.action)
            return call_error_json(call.unique_id, INTERNAL_ERROR, "no response payload")
        result = call.create_call_result(response)
        await schema_validation.validate(result, "1.6")

        after = handlers.get("_after_action")
        if after is not None:
            self.spawn(after(self, call.payload))
        return call_result_json(call.unique_id, response)

    def spawn(self, coroutine: Coroutine[Any, Any, Any]) -> None:
        """Run work tied to this connection; it is cancelled when it closes."""
        # Keep a reference: asyncio only holds weak references to tasks.
        task = asyncio.create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def close(self, code: int, reason: str) -> None:
        await self._connection.close(code, reason)

    async def _send(self, message: str) -> None:
        try:
            await self._connection.send(message)
        except Exception as error:  # the connection closed under us
            log.debug("%s: could not send: %s", self.id, error)

    # ---- send path ----------------------------------------------------

    async def call_action(self, action: str, payload: dict[str, Any]) -> dict[str, Any]:
        """Send one CALL and return the CALLRESULT payload.

        One call is outstanding per station at a time (OCPP-J); later callers
        wait their turn in arrival order. Raises CallFailed on a CALLERROR,
        a timeout or an answer that breaks the schema.
        """
        unique_id = str(uuid.uuid4())
        request = Call(unique_id, action, payload)
        await schema_validation.validate(request, "1.6")
        async with self._call_lock:
            future: asyncio.Future[CallResult | CallError] = (
                asyncio.get_running_loop().create_future()
            )
            self._pending[unique_id] = future
            try:
                await self._connection.send(call_json(unique_id, action, payload))
                answer = await asyncio.wait_for(future, self._response_timeout)
            except TimeoutError:
                raise CallFailed(TIMEOUT, f"no answer within {self._response_timeout} s") from None
            except ConnectionClosed:
                raise CallFailed(DISCONNECTED, "the station disconnected") from None
            finally:
                del self._pending[unique_id]
        if isinstance(answer, CallError):
            raise CallFailed(f"CallError:{answer.error_code}", answer.error_description)
        answer.action = action
        # ocpp 2.1.0's validation swaps the payload of some answers
        # (GetCompositeSchedule) for a copy with decimal.Decimal numbers, which
        # json cannot encode; the payload as received is what we hand on.
        payload = answer.payload
        try:
            await schema_validation.validate(answer, "1.6")
        except OCPPError as error:
            raise CallFailed("InvalidResponse", str(error.details.get("cause", ""))) from None
        return payload

    async def command(self, action: str, payload: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        """Call, then publish `<cp>__<action>__status` and log the outcome."""
        try:
            answer = await self.call_action(action, payload)
            status = str(answer.get("status", "Accepted"))
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

    # ---- handlers: wire payload in, wire payload out ------------------

    @on(Action.boot_notification)
    def on_boot_notification(self, payload: dict[str, Any]) -> dict[str, Any]:
        self.hooks.publish(dp.boot_notification(self.id, payload, now_ms()))
        log.info(
            "%s: boot accepted (%s %s)",
            self.id,
            payload.get("chargePointVendor"),
            payload.get("chargePointModel"),
        )
        return {
            "status": "Accepted",
            "currentTime": format_time(datetime.now(UTC)),
            "interval": self.hooks.heartbeat_interval,
        }

    @after(Action.boot_notification)
    async def after_boot_notification(self, payload: dict[str, Any]) -> None:
        # A reboot may reset the energy register; its next value is accepted.
        self.energy_guard.reset()
        # ... and forget the profiles: every limit is sent again after the boot.
        self.limits_in_force.clear()
        self.booted.set()
        if self.hooks.on_boot is not None:
            self.hooks.on_boot(self)

    @on(Action.heartbeat)
    def on_heartbeat(self, payload: dict[str, Any]) -> dict[str, Any]:
        self.hooks.publish(dp.heartbeat(self.id, now_ms()))
        return {"currentTime": format_time(datetime.now(UTC))}

    @on(Action.status_notification)
    def on_status_notification(self, payload: dict[str, Any]) -> dict[str, Any]:
        self.note_connector(payload["connectorId"])
        self.hooks.publish(dp.status_notification(self.id, payload, now_ms()))
        return {}

    @on(Action.meter_values)
    def on_meter_values(self, payload: dict[str, Any]) -> dict[str, Any]:
        connector_id = payload["connectorId"]
        transaction_id = payload.get("transactionId")
        if transaction_id is not None:
            seen = transaction_id in self.transactions
            self._track_transaction(transaction_id, connector_id)
            if not seen and self.hooks.on_transaction_seen is not None:
                self.hooks.on_transaction_seen(self, connector_id)
        self.electrical.observe(connector_id, measure(payload["meterValue"]))
        mapped = dp.meter_values(
            self.id, connector_id, payload["meterValue"], now_ms(), transaction_id
        )
        self._publish_mapped(connector_id, mapped)
        return {}

    @on(Action.start_transaction)
    def on_start_transaction(self, payload: dict[str, Any]) -> dict[str, Any]:
        transaction_id = self.hooks.next_transaction_id()
        self._track_transaction(transaction_id, payload["connectorId"])
        # A new session may start a new register (or a new session counter).
        self.energy_guard.reset(payload["connectorId"])
        self.hooks.publish(dp.start_transaction(self.id, payload, transaction_id, now_ms()))
        log.info(
            "%s: transaction %d started on connector %d",
            self.id,
            transaction_id,
            payload["connectorId"],
        )
        return {"transactionId": transaction_id, "idTagInfo": self._id_tag_info(payload["idTag"])}

    @on(Action.stop_transaction)
    def on_stop_transaction(self, payload: dict[str, Any]) -> dict[str, Any]:
        transaction_id = payload["transactionId"]
        connector_id = self.transactions.pop(transaction_id, None)
        if connector_id is None:
            log.warning(
                "%s: stop of unknown transaction %s; published under connector 0",
                self.id,
                transaction_id,
            )
            connector_id = 0
        self._publish_mapped(
            connector_id, dp.stop_transaction(self.id, connector_id, payload, now_ms())
        )
        response: dict[str, Any] = {}
        if payload.get("idTag"):
            response["idTagInfo"] = {"status": "Accepted"}
        return response

    @on(Action.authorize)
    def on_authorize(self, payload: dict[str, Any]) -> dict[str, Any]:
        self.hooks.publish(dp.authorize(self.id, payload, now_ms()))
        return {"idTagInfo": self._id_tag_info(payload["idTag"])}

    def _id_tag_info(self, id_tag: str) -> dict[str, str]:
        tags = self.hooks.id_tags
        if tags is not None and id_tag not in tags:
            log.warning("%s: id tag %r is not in OCPP_ID_TAGS; answered Invalid", self.id, id_tag)
            return {"status": "Invalid"}
        return {"status": "Accepted"}

    @on(Action.data_transfer)
    def on_data_transfer(self, payload: dict[str, Any]) -> dict[str, Any]:
        self.hooks.publish(dp.data_transfer(self.id, payload, now_ms()))
        return {"status": "Accepted"}

    @on(Action.diagnostics_status_notification)
    def on_diagnostics_status(self, payload: dict[str, Any]) -> dict[str, Any]:
        self.hooks.publish(
            dp.status_only(self.id, "DiagnosticsStatusNotification", payload, now_ms())
        )
        return {}

    @on(Action.firmware_status_notification)
    def on_firmware_status(self, payload: dict[str, Any]) -> dict[str, Any]:
        self.hooks.publish(dp.status_only(self.id, "FirmwareStatusNotification", payload, now_ms()))
        return {}

    # ---- helpers ------------------------------------------------------

    def _track_transaction(self, transaction_id: int, connector_id: int) -> None:
        self.transactions.pop(transaction_id, None)
        self.transactions[transaction_id] = connector_id
        while len(self.transactions) > MAX_TRACKED_TRANSACTIONS:
            del self.transactions[next(iter(self.transactions))]

    def active_transaction(self, connector_id: int) -> int | None:
        """The newest transaction known on the connector, if any."""
        for transaction_id, connector in reversed(self.transactions.items()):
            if connector == connector_id:
                return transaction_id
        return None

    def take_configuration(
        self, answer: dict[str, Any], replace: bool = False
    ) -> dict[str, str | None]:
        """Keys of a GetConfiguration answer: kept, published as
        `<cp>__Configuration__<key>`, and what the station can do read anew."""
        config = read_configuration(answer)
        if replace:
            self.config = {}
        self.config.update(config)
        self.capabilities = capabilities(self.config)
        if config:
            self.hooks.publish(configuration_datapoints(self.id, config, now_ms()))
        return config

    def note_connector(self, connector_id: int) -> None:
        if connector_id not in self.connectors:
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
        self.hooks.publish(kept)
