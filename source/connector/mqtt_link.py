"""paho-mqtt driven from its own thread, handing everything to asyncio.

paho's network thread never touches asyncio objects: connection changes and
messages are passed to the event loop with `call_soon_threadsafe`.
paho's `publish` is thread-safe, so the loop calls it directly.

QoS 0 (logs) goes straight to paho, which drops it while disconnected.
QoS>0 (values, state, heartbeats) is never lost to an outage, up to
MQTT_MAX_QUEUED, and keeps its order. paho cannot hold that many by itself:
its message ids are 16-bit and a publish whose id is still queued is refused
(MQTT_ERR_QUEUE_SIZE), so beyond 65535 waiting messages it starts dropping,
whatever max_queued_messages says. So at most PAHO_WINDOW publishes are
handed to paho at a time; the rest wait here in order, bounded by
MQTT_MAX_QUEUED, and follow as the broker acknowledges. What does not fit is
counted and logged.

MQTT 5 is spoken where the broker does (Mosquitto 2, EMQX, HiveMQ), for its
no-local subscription option: the broker then never hands the connector its
own publishes on the topics it takes commands from. A broker that refuses
MQTT 5 (answering as MQTT 3.1.1 requires) gets MQTT 3.1.1 from a new client;
bemcom.py's own check keeps our messages from becoming commands there.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.subscribeoptions import SubscribeOptions

log = logging.getLogger(__name__)

KEEPALIVE = 30
EARLY_ACKS_KEPT = 1000
DROP_LOG_INTERVAL = 10.0  # s between WARNINGs about dropped messages
# Publishes handed to paho and not yet acknowledged, at most.
PAHO_WINDOW = 1000
MQTT5 = "5"
MQTT311 = "3.1.1"
# paho's reason for a broker that answered an MQTT 5 CONNECT as MQTT 3.1.1 does.
_UNSUPPORTED_PROTOCOL = "Unsupported protocol version"


@dataclass(frozen=True)
class MqttOptions:
    username: str = ""
    password: str = field(default="", repr=False)
    tls_context: ssl.SSLContext | None = None
    max_queued: int = 100000


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
        self.protocol = MQTT5
        self._client = self._make_client()
        self._max_queued = options.max_queued
        # (topic, payload, qos, retain) waiting for the broker, oldest first.
        self._backlog: deque[tuple[str, str | bytes, int, bool]] = deque()
        self.dropped = 0  # publishes refused because the queue was full
        self._dropped_logged = 0
        self._drop_logged_at = 0.0
        self._lock = threading.Lock()
        # mids of QoS>0 publishes the broker has not acknowledged yet.
        self._unacked: set[int] = set()
        self._acked_early: dict[int, None] = {}
        self._subscribing: set[int] = set()
        self._subacked_early: set[int] = set()
        self.connected = threading.Event()
        self._was_connected = False
        self._stopping = False

    def _make_client(self) -> mqtt.Client:
        client = mqtt.Client(
            callback_api_version=CallbackAPIVersion.VERSION2,
            client_id=self._client_id,
            protocol=mqtt.MQTTv5 if self.protocol == MQTT5 else mqtt.MQTTv311,
        )
        client.reconnect_delay_set(min_delay=1, max_delay=10)
        if self._options.username:
            client.username_pw_set(self._options.username, self._options.password or None)
        if self._options.tls_context is not None:
            client.tls_set_context(self._options.tls_context)
        client.on_connect = self._paho_on_connect
        client.on_disconnect = self._paho_on_disconnect
        client.on_message = self._paho_on_message
        client.on_publish = self._paho_on_publish
        client.on_subscribe = self._paho_on_subscribe
        return client

    def start(self) -> None:
        self._client.connect_async(self.host, self.port, keepalive=KEEPALIVE)
        self._client.loop_start()

    async def _fall_back_to_mqtt311(self, refused: mqtt.Client) -> None:
        """The broker refused MQTT 5: go on with a new MQTT 3.1.1 client.

        Nothing is lost: until a first connect, QoS>0 publishes wait in our
        backlog, and QoS 0 ones are dropped by paho either way.
        """
        if refused is not self._client or self._stopping:
            return
        log.info("MQTT: %s:%d does not speak MQTT 5; using MQTT 3.1.1", self.host, self.port)
        self.protocol = MQTT311
        self._client = self._make_client()
        for name in ("on_connect", "on_disconnect", "on_message", "on_publish"):
            setattr(refused, name, None)
        # loop_stop joins paho's thread, which may sit in its reconnect wait.
        await asyncio.to_thread(refused.loop_stop)
        refused.disconnect()
        self.start()

    def stop(self) -> None:
        self._stopping = True
        self._client.disconnect()
        self._client.loop_stop()

    def publish(self, topic: str, payload: str | bytes, qos: int = 0, retain: bool = False) -> None:
        """Thread-safe. QoS>0 is kept in order through outages, up to MQTT_MAX_QUEUED."""
        if qos > 0:
            with self._lock:
                waits = (
                    bool(self._backlog)
                    or not self.connected.is_set()
                    or len(self._unacked) >= PAHO_WINDOW
                )
                if waits:
                    if len(self._backlog) >= self._max_queued:
                        dropped = True
                    else:
                        self._backlog.append((topic, payload, qos, retain))
                        return
                else:
                    dropped = False
            if dropped:
                self._count_drop()
                return
        self._send(topic, payload, qos, retain)

    def _send(self, topic: str, payload: str | bytes, qos: int, retain: bool) -> None:
        # paho queues a QoS>0 publish while disconnected (MQTT_ERR_NO_CONN)
        # and sends it after the reconnect. Our lock is never held while
        # calling paho: paho may run on_publish under its own locks, and
        # taking ours there could deadlock.
        info = self._client.publish(topic, payload, qos=qos, retain=retain)
        if qos > 0 and info.rc in (mqtt.MQTT_ERR_SUCCESS, mqtt.MQTT_ERR_NO_CONN):
            with self._lock:
                if self._acked_early.pop(info.mid, None) is None:
                    self._unacked.add(info.mid)
        elif qos > 0:
            self._count_drop()

    def _drain(self) -> None:
        """Hand waiting publishes to paho, in order, as the window allows."""
        while True:
            with self._lock:
                if (
                    not self._backlog
                    or not self.connected.is_set()
                    or len(self._unacked) >= PAHO_WINDOW
                ):
                    return
                item = self._backlog.popleft()
            self._send(*item)

    def _count_drop(self) -> None:
        self.dropped += 1
        now = time.monotonic()
        if now - self._drop_logged_at >= DROP_LOG_INTERVAL:
            self._drop_logged_at = now
            # paho's thread is not involved; our log handler publishes QoS 0,
            # which paho drops while disconnected, so the console shows it.
            log.warning(
                "MQTT: %d messages dropped so far: the broker %s:%d is unreachable and "
                "MQTT_MAX_QUEUED messages are already waiting",
                self.dropped,
                self.host,
                self.port,
            )

    def subscribe(self, topics: list[str], qos: int = 1, no_local: bool = False) -> None:
        """`no_local`: on MQTT 5, the broker keeps our own publishes on these topics from us."""
        if not topics:
            return
        if self.protocol == MQTT5:
            options = SubscribeOptions(qos=qos, noLocal=no_local)
            result, mid = self._client.subscribe([(t, options) for t in topics])
        else:
            result, mid = self._client.subscribe([(t, qos) for t in topics])
        if result == mqtt.MQTT_ERR_SUCCESS:
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
            return len(self._unacked) + len(self._backlog)

    async def flush(self, seconds: float) -> bool:
        """Wait until the broker acknowledged every QoS>0 publish, or `seconds` pass."""
        deadline = self._loop.time() + seconds
        # Acks arrive on paho's thread; polling keeps asyncio objects out of it.
        while self.unacked and self._loop.time() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(0.05)
        return self.unacked == 0

    # ---- paho's thread ----------------------------------------------

    def _paho_on_connect(
        self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any, properties: Any
    ) -> None:
        if reason.is_failure:
            if self.protocol == MQTT5 and str(reason) == _UNSUPPORTED_PROTOCOL:
                asyncio.run_coroutine_threadsafe(self._fall_back_to_mqtt311(client), self._loop)
                return
            log.error("MQTT broker %s:%d refused the connection: %s", self.host, self.port, reason)
            return
        self.connected.set()
        if self._was_connected:
            log.info("MQTT: reconnected to %s:%d", self.host, self.port)
        else:
            log.info("MQTT: connected to %s:%d (MQTT %s)", self.host, self.port, self.protocol)
        if self.dropped > self._dropped_logged:
            log.warning(
                "MQTT: %d messages were dropped while the broker was unreachable "
                "(MQTT_MAX_QUEUED reached)",
                self.dropped - self._dropped_logged,
            )
            self._dropped_logged = self.dropped
        self._was_connected = True
        self._loop.call_soon_threadsafe(self._on_connected)
        self._loop.call_soon_threadsafe(self._drain)

    def _paho_on_disconnect(
        self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any, properties: Any
    ) -> None:
        with self._lock:
            self._subscribing.clear()  # _on_connected subscribes again
            self._subacked_early.clear()
        if self.connected.is_set():
            self.connected.clear()
            if self._stopping:
                return
            # Logged from paho's thread: the MQTT log handler drops it while
            # disconnected, the console still shows it.
            log.warning(
                "MQTT: lost the broker %s:%d (%s); reconnecting", self.host, self.port, reason
            )

    def _paho_on_message(
        self, client: mqtt.Client, userdata: Any, message: mqtt.MQTTMessage
    ) -> None:
        self._loop.call_soon_threadsafe(
            self._on_message, message.topic, message.payload, bool(message.retain)
        )

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
            if mid in self._unacked:
                self._unacked.discard(mid)
                if self._backlog:
                    self._loop.call_soon_threadsafe(self._drain)
                return
            # Either the ack beat publish() to the bookkeeping, or it belongs
            # to a QoS 0 message, which is not tracked. Keep a bounded record.
            self._acked_early[mid] = None
            if len(self._acked_early) > EARLY_ACKS_KEPT:
                del self._acked_early[next(iter(self._acked_early))]
