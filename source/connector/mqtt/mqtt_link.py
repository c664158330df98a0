"""paho-mqtt driven from the event loop: no network thread of its own.

paho reads and writes when the event loop says its socket is ready
(`loop_read`/`loop_write` from `add_reader`/`add_writer`, registered through
paho's `on_socket_*` callbacks), and `loop_misc` runs once a second for the
keep-alive. With paho's own thread, that thread and the event loop fought for
the GIL on every acknowledgement: at 1,500 stations it was about 40 % of the
samples, and values waited for the broker while stations waited for answers.
Only the blocking TCP (and TLS) connect runs in a worker thread; paho's
socket callbacks from there are handed to the loop with `call_soon_threadsafe`.

QoS 0 (logs) goes straight to paho, which drops it while disconnected.
QoS>0 (values, state, heartbeats) is never lost to an outage, up to
MQTT_MAX_QUEUED, and keeps its order. paho cannot hold that many by itself:
its message ids are 16-bit and a publish whose id is still queued is refused
(MQTT_ERR_QUEUE_SIZE), so beyond 65535 waiting messages it starts dropping,
whatever max_queued_messages says. So at most PAHO_WINDOW publishes are
handed to paho at a time; the rest wait here in order, bounded by
MQTT_MAX_QUEUED, and follow as the broker acknowledges. What does not fit is
counted and logged.

The broker's own limits are respected, because it drops what exceeds them:
- QoS 2 publishes hold the broker's receive quota until their PUBREL
  (Mosquitto's `max_inflight_messages`, 20, sent as MQTT 5's Receive
  Maximum); while it is used up, Mosquitto refuses every QoS 1 and 2
  publish with "Quota exceeded", and over MQTT 3.1.1 it drops them without a
  word. So at most half the Receive Maximum of QoS 2 publishes (10 over
  MQTT 3.1.1) are in flight, and they wait in a queue of their own, so QoS 1
  values never wait behind them. A publish the broker refuses all the same
  (an MQTT 5 reason code) is sent again for a quota or a busy server, and
  otherwise dropped with an ERROR; never counted as delivered.
- Every subscription is QoS 0. Mosquitto drops messages for a client that
  falls more than `max_queued_messages` (1,000) behind, the retained messages
  a subscription brings included; at QoS 1 it also sends only 20 at a time and
  waits for their acknowledgements, so a burst fell behind at once. At QoS 0
  messages stream into the socket. Our session is not kept across reconnects,
  so QoS 1 gave nothing more.
- Reading is buffered (`_BufferedClient`): paho reads each packet with two
  or more recv() calls and one packet per readable event, which fell behind
  a burst of thousands of commands or retained messages.
Every topic is checked before it reaches paho (core/mqtt_topics.py): a topic
paho or the broker would refuse is an ERROR in the log, never an exception
in the caller, and never a reason for the broker to drop the connection.

MQTT 5 is spoken where the broker does (Mosquitto 2, EMQX, HiveMQ), for its
no-local subscription option: the broker then never hands the connector its
own publishes on the topics it takes commands from. A broker that refuses
MQTT 5 (answering as MQTT 3.1.1 requires) gets MQTT 3.1.1 from a new client;
bemcom.py's own check keeps our messages from becoming commands there.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import logging
import socket
import ssl
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt import _packet
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.reasoncodes import ReasonCode
from paho.mqtt.subscribeoptions import SubscribeOptions

from connector.core.mqtt_topics import MAX_PAYLOAD_BYTES, topic_problem

log = logging.getLogger(__name__)

KEEPALIVE = 30
EARLY_ACKS_KEPT = 1000
DROP_LOG_INTERVAL = 10.0  # s between WARNINGs about dropped messages
# Publishes handed to paho and not yet acknowledged, at most.
PAHO_WINDOW = 1000
# QoS 2 publishes in flight when the broker names no Receive Maximum
# (MQTT 3.1.1): half of Mosquitto's default quota of 20.
QOS2_WINDOW_UNKNOWN = 10
# MQTT 5 reason codes of a refused publish after which it is sent again, after
# a delay that doubles from RETRY_MIN to RETRY_MAX while the broker refuses.
RETRIED_REASONS = frozenset({0x97, 0x89})  # Quota exceeded, Server busy
RETRY_MIN, RETRY_MAX = 0.05, 2.0
# A PUBCOMP for a PUBREL the broker does not know: the broker restarted
# after its PUBREC, so it had the message; not a refusal.
PACKET_ID_NOT_FOUND = 0x92
# Bytes read from the broker's socket per turn of the event loop at most (the
# rest follow on the next turn): about 100 commands, or 3,000 acknowledgements.
READ_CHUNK = 16384
# Publishes waiting while connected beyond which stations are read more
# slowly (`flowing` clears), and below which they are read at speed again.
# While the broker is away stations are read as ever: values wait, up to
# MQTT_MAX_QUEUED (README "Reliability").
BACKPRESSURE_HIGH = 20_000
BACKPRESSURE_LOW = 10_000
MQTT5 = "5"
MQTT311 = "3.1.1"
# paho's reason for a broker that answered an MQTT 5 CONNECT as MQTT 3.1.1 does.
_UNSUPPORTED_PROTOCOL = "Unsupported protocol version"
# s between keep-alive checks (loop_misc), and between reconnect attempts.
MISC_INTERVAL = 1.0
RECONNECT_MIN, RECONNECT_MAX = 1.0, 10.0


# (sequence number, topic, payload, qos, retain) of one publish; the number
# puts publishes the broker refused back in their order.
Outgoing = tuple[int, str, str | bytes, int, bool]


class _BufferedClient(mqtt.Client):
    """paho's client, reading the socket in chunks, one chunk per turn of the loop.

    paho 2.2.0 reads a packet with one recv() for its first byte, one per
    byte of its length and one for the rest, and handles one packet per
    loop_read() when nothing of ours is in flight: four syscalls and a turn
    of the event loop for each PUBACK or command. Behind a burst that fell
    so far behind that the broker dropped messages for us. Here one recv()
    fills a buffer, and paho's reads are served from it. At most one recv()
    a turn (`new_turn`): a burst of 3,000 commands is handled READ_CHUNK
    bytes at a time, between the stations' frames, rather than in one turn
    that holds every station for a second.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._read_buffer = b""
        self._read_position = 0
        self._refilled = False

    @property
    def buffered(self) -> bool:
        """Bytes read from the socket that paho has not taken yet."""
        return self._read_position < len(self._read_buffer)

    def new_turn(self) -> None:
        self._refilled = False

    def _sock_recv(self, bufsize: int) -> bytes:
        if self._read_position >= len(self._read_buffer):
            if self._refilled:
                # This turn's chunk is used up; the selector calls again for
                # the rest (it reports the socket readable while data waits).
                raise BlockingIOError
            # Raises BlockingIOError when nothing is there, as paho expects;
            # b"" means the broker closed the connection.
            data = super()._sock_recv(READ_CHUNK)
            if not data:
                return data
            self._refilled = True
            # TLS: what is decrypted already no longer wakes the selector; take it now.
            pending = getattr(self._sock, "pending", None)
            if pending is not None:
                with contextlib.suppress(OSError, ValueError):
                    while (left := pending()) > 0:
                        data += self._sock.recv(left)  # type: ignore[union-attr]
            self._read_buffer, self._read_position = data, 0
        start = self._read_position
        self._read_position = min(start + bufsize, len(self._read_buffer))
        return self._read_buffer[start : self._read_position]

    def _sock_close(self) -> None:
        # Nothing read from an old connection may reach a new one.
        self._read_buffer, self._read_position = b"", 0
        super()._sock_close()

    def _handle_pubrec(self) -> mqtt.MQTTErrorCode:
        # paho 2.2.0 ignores a PUBREC's reason code: it sends PUBREL for a QoS 2
        # message the broker refused (quota exceeded, not authorized), the broker
        # answers PUBCOMP, and the message counted as delivered. A refusal ends
        # the exchange here, and on_publish hears the refusal.
        packet = _packet.decode_pubrec(
            self._in_packet["command"], self._in_packet["packet"], self._protocol
        )
        reason = packet.reason
        if reason is not None and reason.is_failure:
            with self._out_message_mutex:
                if packet.mid in self._out_messages:
                    return self._do_on_publish(packet.mid, reason, packet.properties)
            return mqtt.MQTTErrorCode.MQTT_ERR_SUCCESS
        return super()._handle_pubrec()

    def restart_unfinished_qos2(self) -> None:
        """The broker has no session of ours (CONNACK: session present 0), so it
        forgot the QoS 2 messages it had received and not yet released: paho
        would send PUBREL for them, and the broker answer PUBCOMP for a message
        it never delivered. They are published again instead (a duplicate is
        possible if our PUBREL was read before the connection broke; a loss is not)."""
        with self._out_message_mutex:
            for message in self._out_messages.values():
                if message.qos == 2 and message.state in (
                    mqtt.mqtt_ms_resend_pubrel,
                    mqtt.mqtt_ms_wait_for_pubcomp,
                ):
                    message.state = mqtt.mqtt_ms_publish
                    message.dup = True


@dataclass(frozen=True)
class MqttOptions:
    username: str = ""
    password: str = field(default="", repr=False)
    tls_context: ssl.SSLContext | None = None
    max_queued: int = 100000
    # False: straight to MQTT 3.1.1, for a broker known to speak nothing else.
    mqtt5: bool = True
    # (topic, payload) the broker publishes, retained, when we vanish.
    will: tuple[str, bytes] | None = None
    keepalive: int = KEEPALIVE


class MqttLink:
    def __init__(
        self,
        host: str,
        port: int,
        client_id: str,
        loop: asyncio.AbstractEventLoop,
        on_connected: Callable[[], None],
        on_message: Callable[[str, bytes, bool], None],
        options: MqttOptions | None = None,
    ) -> None:
        options = options or MqttOptions()
        self.host = host
        self.port = port
        self._loop = loop
        self._on_connected = on_connected
        self._on_message = on_message
        self._client_id = client_id
        self._options = options
        self.protocol = MQTT5 if options.mqtt5 else MQTT311
        self._client = self._make_client()
        self._max_queued = options.max_queued
        # Publishes waiting for the broker, oldest first: QoS 1, and QoS 2
        # (which has a smaller window, see the module's docstring).
        self._backlog: deque[Outgoing] = deque()
        self._backlog2: deque[Outgoing] = deque()
        # Publishes the broker refused for now, by sequence number, and when
        # they may go again.
        self._retry: list[Outgoing] = []
        self._retry_delay = RETRY_MIN
        self._retry_at = 0.0
        self._sequence = 0
        self.dropped = 0  # publishes lost: the queue was full, or a topic or the broker said no
        self._queue_dropped = 0  # of them, for a full queue (MQTT_MAX_QUEUED)
        self._dropped_logged = 0
        self._drop_logged_at = 0.0
        self._lock = threading.Lock()
        # QoS>0 publishes handed to paho that the broker has not acknowledged
        # yet, by message id; how many of them are QoS 2; and the windows.
        self._inflight: dict[int, Outgoing] = {}
        self._inflight2 = 0
        self._window = PAHO_WINDOW
        self._window2 = QOS2_WINDOW_UNKNOWN
        self._receive_maximum = 2 * QOS2_WINDOW_UNKNOWN
        # Acknowledgements that beat a publish from another thread to the
        # bookkeeping (only then can one), with their reason codes.
        self._foreign_sends = 0
        self._acked_early: dict[int, ReasonCode | None] = {}
        self._subscribing: set[int] = set()
        self._subacked_early: set[int] = set()
        self.connected = threading.Event()
        self._was_connected = False
        self.connects = 0  # successful connects so far (a reconnect makes it 2)
        self._stopping = False
        self._loop_thread = threading.get_ident()
        self._runner: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()  # the connection was lost
        self._drain_scheduled = False
        self._write_scheduled = False
        # Cleared while the broker takes values more slowly than they come.
        self.flowing = asyncio.Event()
        self.flowing.set()

    @property
    def options(self) -> MqttOptions:
        return self._options

    def stats(self) -> dict[str, Any]:
        """For metrics (README "Operations"): publishes handed over so far,
        those dropped, those waiting for the broker, those not acknowledged."""
        with self._lock:
            backlog = len(self._backlog) + len(self._backlog2)
        return {
            "connected": self.connected.is_set(),
            "publishes": self._sequence,
            "dropped": self.dropped,
            "backlog": backlog,
            "unacked": self.unacked,
        }

    def _make_client(self) -> _BufferedClient:
        client = _BufferedClient(
            callback_api_version=CallbackAPIVersion.VERSION2,
            client_id=self._client_id,
            protocol=mqtt.MQTTv5 if self.protocol == MQTT5 else mqtt.MQTTv311,
        )
        # No cap of paho's own on QoS>0 messages in flight: PAHO_WINDOW is the
        # cap. paho's cap (20 by default) let through only as many new values as
        # acknowledgements arrived per turn of the event loop, and rescanned its
        # in-flight list at every acknowledgement.
        client.max_inflight_messages_set(0)
        if self._options.username:
            client.username_pw_set(self._options.username, self._options.password or None)
        if self._options.tls_context is not None:
            client.tls_set_context(self._options.tls_context)
        client.on_connect = self._paho_on_connect
        client.on_disconnect = self._paho_on_disconnect
        client.on_message = self._paho_on_message
        client.on_publish = self._paho_on_publish
        client.on_subscribe = self._paho_on_subscribe
        client.on_socket_open = self._paho_on_socket_open
        client.on_socket_close = self._paho_on_socket_close
        client.on_socket_register_write = self._paho_on_socket_register_write
        client.on_socket_unregister_write = self._paho_on_socket_unregister_write
        if self._options.will is not None:
            client.will_set(*self._options.will, qos=1, retain=True)
        client.connect_async(self.host, self.port, keepalive=self._options.keepalive)
        return client

    def start(self) -> None:
        """Connect, and stay connected, from the running event loop."""
        self._loop_thread = threading.get_ident()
        self._runner = self._loop.create_task(self._run())

    async def _run(self) -> None:
        delay = RECONNECT_MIN
        while not self._stopping:
            client = self._client
            if client.socket() is None:
                try:
                    # Blocking connect (and TLS handshake): not in the event loop.
                    await self._in_daemon_thread(client.reconnect)
                except Exception as error:  # refused, unreachable, TLS: try again later
                    log.debug("MQTT: connecting to %s:%d failed: %s", self.host, self.port, error)
                    await asyncio.sleep(delay)
                    delay = min(2 * delay, RECONNECT_MAX)
                    continue
            elif self.connected.is_set():
                delay = RECONNECT_MIN
            client.loop_misc()  # keep-alive pings, and a dead broker noticed
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), MISC_INTERVAL)
            if self._client.socket() is None and not self._stopping:
                await asyncio.sleep(delay)  # lost or refused: back off before trying again
                delay = min(2 * delay, RECONNECT_MAX)

    def _in_daemon_thread(self, function: Callable[[], Any]) -> Any:
        """Run a blocking call in a thread of its own that never holds the exit.

        asyncio.to_thread's executor is joined when the loop ends: a connect to
        a broker that does not answer (paho waits 5 s, DNS and TLS longer) held
        SIGTERM's exit beyond its 5 s."""
        loop = self._loop
        future: asyncio.Future[Any] = loop.create_future()

        def settle(result: Any, error: BaseException | None) -> None:
            if future.done():  # the awaiting task was cancelled
                return
            if error is not None:
                future.set_exception(error)
            else:
                future.set_result(result)

        def run() -> None:
            result, error = None, None
            try:
                result = function()
            except BaseException as caught:  # handed to the awaiting task
                error = caught
            with contextlib.suppress(RuntimeError):  # the loop has closed: nobody waits
                loop.call_soon_threadsafe(settle, result, error)

        threading.Thread(target=run, name="mqtt-connect", daemon=True).start()
        return future

    def _fall_back_to_mqtt311(self) -> None:
        """The broker refused MQTT 5: go on with a new MQTT 3.1.1 client.

        Nothing is lost: until a first connect, QoS>0 publishes wait in our
        backlog, and QoS 0 ones are dropped by paho either way.
        """
        log.info("MQTT: %s:%d does not speak MQTT 5; using MQTT 3.1.1", self.host, self.port)
        self.protocol = MQTT311
        self._client = self._make_client()
        self._wake.set()

    def stop(self) -> None:
        self._stopping = True
        if self._runner is not None:
            self._runner.cancel()
        client = self._client
        client.disconnect()
        sock = client.socket()
        if sock is not None:
            with contextlib.suppress(Exception):
                client.loop_write()  # the DISCONNECT goes out now
            self._forget_socket(sock)
            with contextlib.suppress(OSError):
                sock.close()

    # ---- the socket, watched by the event loop -------------------------

    def _in_loop(self, function: Callable[..., Any], *args: Any) -> None:
        # paho calls the socket callbacks from the connect's worker thread too.
        if threading.get_ident() == self._loop_thread:
            function(*args)
        else:
            self._loop.call_soon_threadsafe(function, *args)

    def _paho_on_socket_open(self, client: mqtt.Client, userdata: Any, sock: Any) -> None:
        # paho leaves Nagle's algorithm on: a value written while the previous
        # one is unacknowledged then waits for the ACK, up to the 40 ms of a
        # delayed ACK. MQTT packets are small and each is worth sending now.
        with contextlib.suppress(OSError, AttributeError):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._in_loop(self._loop.add_reader, sock, self._readable, client)

    def _paho_on_socket_close(self, client: mqtt.Client, userdata: Any, sock: Any) -> None:
        self._in_loop(self._forget_socket, sock)

    def _paho_on_socket_register_write(self, client: mqtt.Client, userdata: Any, sock: Any) -> None:
        self._in_loop(self._write_soon, client, sock)

    def _write_soon(self, client: mqtt.Client, sock: Any) -> None:
        # The socket is nearly always writable: write at the end of this loop
        # iteration, with every publish it made, and watch for writability only
        # when the socket's buffer was full. Saves two epoll_ctl calls a burst.
        if not self._write_scheduled:
            self._write_scheduled = True
            self._loop.call_soon(self._write_now, client, sock)

    def _write_now(self, client: mqtt.Client, sock: Any) -> None:
        self._write_scheduled = False
        self._writable(client)
        current = client.socket()
        if client.want_write() and current is not None and current is sock:
            self._loop.add_writer(current, self._writable, client)

    def _paho_on_socket_unregister_write(
        self, client: mqtt.Client, userdata: Any, sock: Any
    ) -> None:
        self._in_loop(self._forget_writer, sock)

    def _forget_writer(self, sock: Any) -> None:
        with contextlib.suppress(ValueError, OSError):  # closed already
            self._loop.remove_writer(sock)

    def _forget_socket(self, sock: Any) -> None:
        with contextlib.suppress(ValueError, OSError):  # closed already
            self._loop.remove_reader(sock)
        self._forget_writer(sock)

    def _readable(self, client: _BufferedClient) -> None:
        client.new_turn()
        try:
            # loop_read() handles packets until the chunk is used up (or as many
            # as paho has in flight); a packet cut at the chunk's end is kept.
            while True:
                client.loop_read()
                if not client.buffered or client.socket() is None:
                    return
        except Exception:  # a bug in a callback must not stop reading for good
            log.exception("MQTT: failed to handle what the broker sent")
            if client.buffered:  # the rest of the chunk, on the next turn
                self._loop.call_soon(self._readable, client)

    def _writable(self, client: mqtt.Client) -> None:
        try:
            client.loop_write()
        except Exception:
            log.exception("MQTT: failed to write to the broker")

    def _schedule_drain(self) -> None:
        if not self._drain_scheduled:
            self._drain_scheduled = True
            self._loop.call_soon(self._drain)

    def publish(self, topic: str, payload: str | bytes, qos: int = 0, retain: bool = False) -> bool:
        """Thread-safe, and never raises. QoS>0 is kept in order through outages, up
        to MQTT_MAX_QUEUED. False when the message is dropped (logged)."""
        problem = topic_problem(topic)
        if problem is None and len(payload) > MAX_PAYLOAD_BYTES // 4:
            # len() counts characters; a str may take up to 4 bytes each.
            size = len(payload.encode("utf-8") if isinstance(payload, str) else payload)
            if size > MAX_PAYLOAD_BYTES:
                problem = f"the payload has {size} bytes, more than MQTT allows"
        if problem is not None:
            self._refuse(topic, problem)
            return False
        dropped = False
        with self._lock:
            self._sequence += 1
            outgoing: Outgoing = (self._sequence, topic, payload, qos, retain)
            if qos > 0:
                backlog = self._backlog2 if qos == 2 else self._backlog
                if backlog or not self.connected.is_set() or not self._has_room(qos):
                    if len(self._backlog) + len(self._backlog2) >= self._max_queued:
                        dropped = True
                    else:
                        backlog.append(outgoing)
                        # Values (QoS 1) waiting for a connected broker slow the
                        # stations down; raw messages (QoS 2, a window of their
                        # own) never do: beyond MQTT_MAX_QUEUED they are dropped.
                        if (
                            len(self._backlog) >= BACKPRESSURE_HIGH
                            and self.connected.is_set()
                            and threading.get_ident() == self._loop_thread
                        ):
                            self.flowing.clear()
                        return True
        if dropped:
            # Not under the lock: its WARNING goes to our log handler, which
            # publishes through this very method.
            self._count_drop()
            return False
        return self._send(outgoing)

    def _has_room(self, qos: int) -> bool:
        # Under self._lock.
        return len(self._inflight) < self._window and (qos != 2 or self._inflight2 < self._window2)

    def _refuse(self, topic: str, problem: str) -> None:
        self.dropped += 1
        log.error("MQTT: not published on %r: %s", topic[:120], problem)

    def _send(self, outgoing: Outgoing) -> bool:
        # paho queues a QoS>0 publish while disconnected (MQTT_ERR_NO_CONN),
        # or when the connection broke under it (MQTT_ERR_CONN_LOST), and
        # sends it after the reconnect. Our lock is never held while calling
        # paho: paho may run on_publish under its own locks, and taking ours
        # there could deadlock.
        _, topic, payload, qos, retain = outgoing
        foreign = threading.get_ident() != self._loop_thread
        if foreign and qos > 0:
            with self._lock:
                self._foreign_sends += 1
        try:
            info = self._client.publish(topic, payload, qos=qos, retain=retain)
        except (ValueError, TypeError) as error:  # checked above; a last guard
            if foreign and qos > 0:
                with self._lock:
                    self._foreign_sends -= 1
            self._refuse(topic, str(error))
            return False
        if qos == 0:
            return True
        if info.rc == mqtt.MQTT_ERR_QUEUE_SIZE:  # paho refused it: not sent, ever
            if foreign:
                with self._lock:
                    self._foreign_sends -= 1
            self.dropped += 1
            log.error("MQTT: paho refused the message on %r (its queue is full)", topic[:120])
            return False
        with self._lock:
            if foreign:  # only now: an ack in between must find our record
                self._foreign_sends -= 1
            early = info.mid in self._acked_early
            reason = self._acked_early.pop(info.mid, None)
            if not early:
                self._inflight[info.mid] = outgoing
                if qos == 2:
                    self._inflight2 += 1
                return True
        return self._acknowledged(outgoing, reason)

    def _acknowledged(self, outgoing: Outgoing, reason: ReasonCode | None) -> bool:
        """The broker answered a publish: True when it took it."""
        if reason is None or not reason.is_failure:
            self._retry_delay = RETRY_MIN
            return True
        _, topic, _, qos, _ = outgoing
        if qos == 2 and reason.value == PACKET_ID_NOT_FOUND:
            return True
        if reason.value in RETRIED_REASONS:
            with self._lock:
                heapq.heappush(self._retry, outgoing)
                if qos == 1:
                    # This broker counts QoS 1 against its quota too: keep to it.
                    # (The window starts wide: Mosquitto advertises 20 but counts
                    # only QoS 2, and 20 in flight held values back at 1,500 stations.)
                    self._window = max(1, min(self._window, self._receive_maximum))
                delay = self._retry_delay
                self._retry_delay = min(RETRY_MAX, 2 * delay)
            log.warning(
                "MQTT: the broker refused a message for now (%s); sending it again in %.2f s",
                reason,
                delay,
            )
            self._in_loop(self._retry_later, delay)
            return False
        self.dropped += 1
        log.error("MQTT: the broker refused the message on %r (%s); dropped", topic[:120], reason)
        return False

    def _retry_later(self, delay: float) -> None:
        self._retry_at = self._loop.time() + delay
        self._loop.call_later(delay, self._schedule_drain)

    def _drain(self) -> None:
        """Hand waiting publishes to paho, in order, as the windows allow: first
        what the broker refused for now (in its order, once its delay is over)."""
        self._drain_scheduled = False
        retry_due = self._loop.time() >= self._retry_at
        while True:
            with self._lock:
                if not self.connected.is_set():
                    return
                if self._retry and retry_due and self._has_room(self._retry[0][3]):
                    item = heapq.heappop(self._retry)
                elif self._backlog2 and self._has_room(2):
                    item = self._backlog2.popleft()
                elif self._backlog and self._has_room(1):
                    item = self._backlog.popleft()
                else:
                    if len(self._backlog) <= BACKPRESSURE_LOW:
                        self.flowing.set()
                    return
            self._send(item)

    def _count_drop(self) -> None:
        # Never under self._lock: the WARNING is published through publish().
        self.dropped += 1
        self._queue_dropped += 1
        now = time.monotonic()
        if now - self._drop_logged_at >= DROP_LOG_INTERVAL:
            self._drop_logged_at = now
            # Our log handler publishes QoS 0, which paho drops while
            # disconnected, so the console shows it.
            log.warning(
                "MQTT: %d messages dropped so far: the broker %s:%d is unreachable and "
                "MQTT_MAX_QUEUED messages are already waiting",
                self._queue_dropped,
                self.host,
                self.port,
            )

    def subscribe(self, topics: list[str], qos: int = 0, no_local: bool = False) -> None:
        """`no_local`: on MQTT 5, the broker keeps our own publishes on these topics from us.

        QoS 0 by default: see the module's docstring for why."""
        if not topics:
            return
        if self.protocol == MQTT5:
            options = SubscribeOptions(qos=qos, noLocal=no_local)
            result, mid = self._client.subscribe([(t, options) for t in topics])
        else:
            result, mid = self._client.subscribe([(t, qos) for t in topics])
        if result == mqtt.MQTT_ERR_SUCCESS and mid is not None:
            with self._lock:
                # The SUBACK may have beaten us here, as acks do for publishes.
                if mid in self._subacked_early:
                    self._subacked_early.discard(mid)
                else:
                    self._subscribing.add(mid)

    @property
    def subscribing(self) -> bool:
        """Subscriptions the broker has not acknowledged yet: until then, messages
        published on those topics may not reach us."""
        with self._lock:
            return bool(self._subscribing)

    def unsubscribe(self, topics: list[str]) -> None:
        if topics:
            self._client.unsubscribe(topics)

    @property
    def unacked(self) -> int:
        """QoS>0 publishes the broker has not acknowledged yet, waiting ones included."""
        with self._lock:
            return len(self._inflight) + len(self._backlog) + len(self._backlog2) + len(self._retry)

    async def flush(self, seconds: float) -> bool:
        """Wait until the broker acknowledged every QoS>0 publish, or `seconds` pass."""
        deadline = self._loop.time() + seconds
        while self.unacked and self._loop.time() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(0.05)
        return self.unacked == 0

    # ---- paho's callbacks, from loop_read in the event loop -------------

    def _paho_on_connect(
        self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any, properties: Any
    ) -> None:
        if reason.is_failure:
            if self.protocol == MQTT5 and str(reason) == _UNSUPPORTED_PROTOCOL:
                self._fall_back_to_mqtt311()
                return
            log.error("MQTT broker %s:%d refused the connection: %s", self.host, self.port, reason)
            return
        if (
            self.protocol == MQTT5
            and not flags.session_present
            and isinstance(client, _BufferedClient)
        ):
            # Before paho resends what is in flight (it does so after this callback).
            client.restart_unfinished_qos2()
        # MQTT 5's Receive Maximum (65,535 when not named); unknown over 3.1.1.
        if self.protocol == MQTT5:
            self._receive_maximum = int(getattr(properties, "ReceiveMaximum", 65535) or 65535)
        else:
            self._receive_maximum = 2 * QOS2_WINDOW_UNKNOWN
        with self._lock:
            self._window = PAHO_WINDOW
            self._window2 = max(1, min(self._receive_maximum, PAHO_WINDOW) // 2)
        self.connected.set()
        if self._was_connected:
            log.info("MQTT: reconnected to %s:%d", self.host, self.port)
        else:
            log.info("MQTT: connected to %s:%d (MQTT %s)", self.host, self.port, self.protocol)
        if self._queue_dropped > self._dropped_logged:
            log.warning(
                "MQTT: %d messages were dropped while the broker was unreachable "
                "(MQTT_MAX_QUEUED reached)",
                self._queue_dropped - self._dropped_logged,
            )
            self._dropped_logged = self._queue_dropped
        self._was_connected = True
        self.connects += 1
        self._loop.call_soon(self._on_connected)
        self._schedule_drain()

    def _paho_on_disconnect(
        self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any, properties: Any
    ) -> None:
        with self._lock:
            self._subscribing.clear()  # _on_connected subscribes again
            self._subacked_early.clear()
        self._in_loop(self._wake.set)
        self._in_loop(self.flowing.set)  # while away, values wait (MQTT_MAX_QUEUED)
        if self.connected.is_set():
            self.connected.clear()
            if self._stopping:
                return
            # The MQTT log handler drops it while disconnected; the console shows it.
            log.warning(
                "MQTT: lost the broker %s:%d (%s); reconnecting", self.host, self.port, reason
            )

    def _paho_on_message(
        self, client: mqtt.Client, userdata: Any, message: mqtt.MQTTMessage
    ) -> None:
        self._on_message(message.topic, bytes(message.payload), bool(message.retain))

    def _paho_on_subscribe(
        self, client: mqtt.Client, userdata: Any, mid: int, reasons: Any, properties: Any
    ) -> None:
        with self._lock:
            if mid in self._subscribing:
                self._subscribing.discard(mid)
            elif len(self._subacked_early) < EARLY_ACKS_KEPT:
                self._subacked_early.add(mid)

    def _paho_on_publish(
        self, client: mqtt.Client, userdata: Any, mid: int, reason: Any, properties: Any
    ) -> None:
        with self._lock:
            outgoing = self._inflight.pop(mid, None)
            if outgoing is None:
                # A QoS 0 message (not tracked), or the ack of a publish from
                # another thread that beat its bookkeeping: keep a bounded record.
                if self._foreign_sends:
                    self._acked_early[mid] = reason
                    if len(self._acked_early) > EARLY_ACKS_KEPT:
                        del self._acked_early[next(iter(self._acked_early))]
                return
            if outgoing[3] == 2:
                self._inflight2 -= 1
            waiting = bool(self._backlog or self._backlog2 or self._retry)
        self._acknowledged(outgoing, reason)
        if waiting:
            self._in_loop(self._schedule_drain)
