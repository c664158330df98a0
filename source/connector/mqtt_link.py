"""paho-mqtt driven from its own thread, handing everything to asyncio.

paho's network thread never touches asyncio objects: connection changes and
messages are passed to the event loop with `call_soon_threadsafe`.
paho's `publish` is thread-safe, so the loop calls it directly.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

log = logging.getLogger(__name__)

KEEPALIVE = 30
EARLY_ACKS_KEPT = 1000


class MqttLink:
    def __init__(
        self,
        host: str,
        port: int,
        client_id: str,
        loop: asyncio.AbstractEventLoop,
        on_connected: Callable[[], None],
        on_message: Callable[[str, bytes, bool], None],
    ) -> None:
        self.host = host
        self.port = port
        self._loop = loop
        self._on_connected = on_connected
        self._on_message = on_message
        self._client = mqtt.Client(
            callback_api_version=CallbackAPIVersion.VERSION2,
            client_id=client_id,
            protocol=mqtt.MQTTv311,
        )
        self._client.reconnect_delay_set(min_delay=1, max_delay=10)
        self._client.on_connect = self._paho_on_connect
        self._client.on_disconnect = self._paho_on_disconnect
        self._client.on_message = self._paho_on_message
        self._client.on_publish = self._paho_on_publish
        self._lock = threading.Lock()
        # mids of QoS>0 publishes the broker has not acknowledged yet.
        self._unacked: set[int] = set()
        self._acked_early: dict[int, None] = {}
        self.connected = threading.Event()
        self._was_connected = False
        self._stopping = False

    def start(self) -> None:
        self._client.connect_async(self.host, self.port, keepalive=KEEPALIVE)
        self._client.loop_start()

    def stop(self) -> None:
        self._stopping = True
        self._client.disconnect()
        self._client.loop_stop()

    def publish(self, topic: str, payload: str | bytes, qos: int = 0, retain: bool = False) -> None:
        # paho queues QoS>0 messages while disconnected (returning
        # MQTT_ERR_NO_CONN) and sends them after a reconnect; QoS 0 is dropped.
        # Our lock is never held while calling paho: paho may run on_publish
        # under its own locks, and taking ours there could deadlock.
        info = self._client.publish(topic, payload, qos=qos, retain=retain)
        if qos > 0 and info.rc in (mqtt.MQTT_ERR_SUCCESS, mqtt.MQTT_ERR_NO_CONN):
            with self._lock:
                if self._acked_early.pop(info.mid, None) is None:
                    self._unacked.add(info.mid)

    def subscribe(self, topics: list[str], qos: int = 1) -> None:
        if topics:
            self._client.subscribe([(t, qos) for t in topics])

    def unsubscribe(self, topics: list[str]) -> None:
        if topics:
            self._client.unsubscribe(topics)

    @property
    def unacked(self) -> int:
        with self._lock:
            return len(self._unacked)

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
            log.error("MQTT broker %s:%d refused the connection: %s", self.host, self.port, reason)
            return
        self.connected.set()
        if self._was_connected:
            log.info("MQTT: reconnected to %s:%d", self.host, self.port)
        self._was_connected = True
        self._loop.call_soon_threadsafe(self._on_connected)

    def _paho_on_disconnect(
        self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any, properties: Any
    ) -> None:
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

    def _paho_on_publish(
        self, client: mqtt.Client, userdata: Any, mid: int, reason: Any, properties: Any
    ) -> None:
        with self._lock:
            if mid in self._unacked:
                self._unacked.discard(mid)
                return
            # Either the ack beat publish() to the bookkeeping, or it belongs
            # to a QoS 0 message, which is not tracked. Keep a bounded record.
            self._acked_early[mid] = None
            if len(self._acked_early) > EARLY_ACKS_KEPT:
                del self._acked_early[next(iter(self._acked_early))]
