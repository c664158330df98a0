"""The BEMCom MQTT protocol: heartbeat, logs, datapoint map, values, raw messages.

Runs in the event loop; MqttLink carries the bytes. Topics (CONTRACT §2):
- `<name>/heartbeat`, `<name>/logs`, `<name>/available_datapoints`;
- `<name>/datapoint_map` (in, retained by BEMCom's API);
- the mapped sensor topics (out) and actuator topics (in);
- `<name>/raw_message_to_db`;
- `<name>/state/...`: the connector's own state, retained on the broker so a
  restart needs no volume (documented in the README).
"""

from __future__ import annotations

import asyncio
import logging
import math
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

from connector.core import direct_topics as direct
from connector.core.datapoint_map import InvalidMap, check_map, parse_datapoint_map
from connector.core.datapoints import Datapoint, Scalar, shown
from connector.core.key_budget import KeyBudget, example
from connector.core.strict_json import dumps
from connector.mqtt.discovery import Discovery
from connector.mqtt.mqtt_link import MqttLink, MqttOptions

log = logging.getLogger(__name__)

# available_datapoints is republished at most this often while keys appear:
# with thousands of stations, republishing per new key costs O(keys²).
AVAILABLE_MIN_INTERVAL = 1.0
# ... and no faster than this many bytes a second on average: at 3,000
# stations the document is several MB, and BEMCom's API reads every copy.
AVAILABLE_BYTES_PER_SECOND = 1_000_000
# ... but a change always goes out within this many seconds.
AVAILABLE_MAX_INTERVAL = 5.0
# Conflicting map entries named in full in the ERROR; the rest are counted.
MAX_CONFLICTS_SHOWN = 20
QOS_VALUES = 1
QOS_RAW = 2


def now_ms() -> int:
    return int(time.time() * 1000)


# Our latest publishes remembered beyond the last one per topic, for echoes
# still on their way when a new map turns a sensor topic into an actuator topic.
OWN_RECENT_KEPT = 1024


def available_interval(size: int) -> float:
    """Seconds before available_datapoints may go out again after `size` bytes."""
    return min(
        AVAILABLE_MAX_INTERVAL, max(AVAILABLE_MIN_INTERVAL, size / AVAILABLE_BYTES_PER_SECOND)
    )


class Bemcom:
    def __init__(
        self,
        name: str,
        host: str,
        port: int,
        loop: asyncio.AbstractEventLoop,
        version: str,
        on_actuator: Callable[[str, str, bytes], None],
        on_state: Callable[[str, bytes], None],
        mqtt_options: MqttOptions | None = None,
        max_keys_per_station: int = 5000,
        max_key_bytes_per_station: int = 1_000_000,
        instance: int | None = None,
        direct_topics: bool = False,
        discovery_prefix: str | None = None,
        offered: tuple[str, ...] = (),
    ) -> None:
        """`instance`: CONNECTOR_INSTANCE (CONTRACT §9), or None for a single instance."""
        self.name = name
        self.version = version
        self._loop = loop
        self._on_actuator = on_actuator
        self._on_state = on_state
        self.topic_heartbeat = f"{name}/heartbeat"
        self.topic_logs = f"{name}/logs"
        # Several instances: each lists its own keys, and cluster.py publishes the union.
        self.topic_available = (
            f"{name}/available_datapoints"
            if instance is None
            else f"{name}/instances/{instance}/available_datapoints"
        )
        self.topic_status = f"{name}/status"
        # MQTT_DIRECT_TOPICS (CONTRACT §10): every key on its own topic, and /set commands.
        self.topic_direct = f"{name}/direct/" if direct_topics else None
        # Topics of cluster.py: (topics, handler returning True when it took one).
        self.other_topics: list[str] = []
        self.on_other: Callable[[str, bytes, bool], bool] | None = None
        self.on_connected: Callable[[], None] | None = None
        self.topic_map = f"{name}/datapoint_map"
        self.topic_raw = f"{name}/raw_message_to_db"
        self.topic_state = f"{name}/state/"
        self._sync_topic = f"{name}/state_sync/{uuid.uuid4().hex}"
        self.sensor_map: dict[str, str] = {}
        self.actuator_map: dict[str, str] = {}
        # Every sensor key (available_datapoints) -> its latest (value, timestamp).
        # One dict for both: at thousands of stations, a second entry per key
        # (and the Datapoint holding another copy of the key) was about 2 KB
        # per station.
        self._sensors: dict[str, tuple[Scalar, int]] = {}
        # Key -> its direct topic (MQTT_DIRECT_TOPICS); as many as keys.
        self._direct_topics: dict[str, str] = {}
        self.available_actuators: dict[str, Scalar] = {}
        self._budget = KeyBudget(max_keys_per_station, max_key_bytes_per_station)
        # What we published last on each sensor topic, and on the latest
        # topics, as payload hashes: a message on an actuator topic that we
        # published ourselves is never a command (an earlier map had that
        # topic as a sensor topic, and the broker kept our value).
        self._own_last: dict[str, int] = {}
        self._own_recent: dict[tuple[str, int], None] = {}
        self._available_dirty = asyncio.Event()
        self.ready = asyncio.Event()  # retained map and state have arrived
        self._sync_sent = 0
        self.link = MqttLink(
            host,
            port,
            f"{name}-{uuid.uuid4().hex[:8]}",
            loop,
            self._connected,
            self._message,
            mqtt_options,
        )
        # HOMEASSISTANT_DISCOVERY (CONTRACT §10); it reads the direct topics.
        self.discovery = (
            Discovery(self.link, name, discovery_prefix, self._latest, offered)
            if discovery_prefix is not None and self.topic_direct is not None
            else None
        )

    def start(self) -> None:
        self.link.start()

    def stop(self) -> None:
        self.link.stop()

    # ---- connection ------------------------------------------------

    def _connected(self) -> None:
        # Subscribing here restores every subscription after a reconnect.
        self.link.subscribe([self.topic_map, self.topic_state + "#", self._sync_topic])
        # no_local: on MQTT 5 the broker never returns our own publishes there.
        self.link.subscribe(list(self.actuator_map), no_local=True)
        if self.other_topics:
            self.link.subscribe(self.other_topics)
        if self.topic_direct is not None:
            self.link.subscribe(direct.command_subscriptions(self.topic_direct), no_local=True)
        self.link.publish(self.topic_status, b"online", qos=1, retain=True)
        if self.on_connected is not None:
            self.on_connected()
        self._send_sync()
        self._available_dirty.set()

    def _send_sync(self) -> None:
        # The broker handles our packets in order: retained messages are
        # delivered on subscribe, before anything we publish afterwards. When
        # the latest sync message comes back, the retained map and state are
        # in, and the actuator topics they name are subscribed.
        self._sync_sent += 1
        self.link.publish(self._sync_topic, str(self._sync_sent).encode(), qos=1)

    def _message(self, topic: str, payload: bytes, retained: bool) -> None:
        try:
            if topic == self.topic_map:
                self._apply_map(payload)
            elif topic == self._sync_topic:
                if payload == str(self._sync_sent).encode():
                    self.ready.set()
            elif topic.startswith(self.topic_state) and retained:
                # Only what the broker kept: the echo of our own publishes on
                # this topic comes back unretained and may be older than
                # the state we hold by then.
                self._on_state(topic[len(self.topic_state) :], payload)
            elif self.on_other is not None and self.on_other(topic, payload, retained):
                pass
            elif self.topic_direct is not None and topic.startswith(self.topic_direct):
                key = direct.command_key(self.topic_direct, topic)
                if key is not None and not retained:  # a kept command is no command
                    self._on_actuator(topic, key, direct.command_payload(payload))
            elif topic in self.actuator_map:
                if retained:
                    # Kept by the broker from some earlier time: running it at
                    # every restart of either side repeats a Reset, a remote
                    # start... (limits in force are kept by the connector itself).
                    log.warning(
                        "ignored a retained message on actuator topic %s: a kept message is "
                        "not a command; publish commands without the retain flag",
                        topic,
                    )
                elif self._is_own(topic, payload):
                    log.warning(
                        "ignored a message on actuator topic %s: the connector published it "
                        "itself, as a sensor value; commands come from elsewhere",
                        topic,
                    )
                else:
                    self._on_actuator(topic, self.actuator_map[topic], payload)
        except Exception:  # a bad message must never end the connector
            log.exception("failed to handle a message on %s", topic)

    # ---- datapoint map ---------------------------------------------

    def _apply_map(self, payload: bytes) -> None:
        try:
            sensor, actuator = parse_datapoint_map(payload)
        except InvalidMap as error:
            log.error(
                "ignored an invalid datapoint map on %s (%s); the previous map stays",
                self.topic_map,
                error,
            )
            return
        checked = check_map(self.name, sensor, actuator)
        sensor, actuator = checked.sensor, checked.actuator
        if checked.conflicts:
            shown = checked.conflicts[:MAX_CONFLICTS_SHOWN]
            more = len(checked.conflicts) - len(shown)
            log.error(
                "the datapoint map on %s has %d conflicting entries, left out: the connector "
                "would take its own messages as commands, or write over its own topics: %s%s. "
                "The rest of the map applies",
                self.topic_map,
                len(checked.conflicts),
                "; ".join(shown),
                f"; and {more} more" if more else "",
            )
        old_topics, new_topics = set(self.actuator_map), set(actuator)
        self.link.unsubscribe(sorted(old_topics - new_topics))
        self.link.subscribe(sorted(new_topics - old_topics), no_local=True)
        if not self.ready.is_set():
            self._send_sync()
        newly_mapped = [k for k, t in sensor.items() if self.sensor_map.get(k) != t]
        self.sensor_map, self.actuator_map = sensor, actuator
        # Keys mapped just now get their last known value, so BEMCom has it
        # without waiting for the station's next report.
        for key in newly_mapped:
            if key in self._sensors:
                self._publish_value(key, *self._sensors[key])
        log.info(
            "datapoint map applied: %d sensor and %d actuator datapoints",
            len(sensor),
            len(actuator),
        )

    # ---- outgoing --------------------------------------------------

    def _latest(self, key: str) -> Scalar:
        entry = self._sensors.get(key)
        return entry[0] if entry is not None else None

    def publish_datapoints(self, datapoints: list[Datapoint]) -> None:
        sensors = self._sensors
        discovery = self.discovery
        for key, value, timestamp in datapoints:
            # Only finite numbers are published: strict JSON readers (BEMCom's
            # API, Home Assistant) refuse a whole document for one Infinity.
            if (value.__class__ is float and not math.isfinite(value)) or (
                value.__class__ is int and not -(2**63) <= value < 2**64
            ):
                log.warning("%s: skipped %s: not a finite number of 64 bits", key, shown(value))
                continue
            new = key not in sensors
            if new:
                if not self._budget.admit(key):
                    continue
                self._available_dirty.set()
            sensors[key] = (value, timestamp)
            if discovery is not None:
                if new:
                    discovery.new_key(key)
                elif "__BootNotification__" in key:
                    discovery.value_changed(key)
            if key in self.sensor_map:
                self._publish_value(key, value, timestamp)
            if self.topic_direct is not None:
                payload = dumps({"value": value, "timestamp": timestamp})
                topic = self._direct_topics.get(key)
                if topic is None:  # built once per key: escaping costs a few µs
                    topic = self._direct_topics[key] = direct.sensor_topic(self.topic_direct, key)
                self.link.publish(topic, payload, qos=QOS_VALUES, retain=True)

    @property
    def available_sensors(self) -> dict[str, Scalar]:
        """Every sensor key with an example: its latest value (a long string shortened)."""
        return {key: example(value) for key, (value, _) in self._sensors.items()}

    def last_value(self, key: str) -> Scalar:
        return self._sensors[key][0]

    def _publish_value(self, key: str, value: Scalar, timestamp: int) -> None:
        topic = self.sensor_map[key]
        payload = dumps({"value": value, "timestamp": timestamp}).encode()
        self._remember_own(topic, payload)
        self.link.publish(topic, payload, qos=QOS_VALUES, retain=True)

    def _remember_own(self, topic: str, payload: bytes) -> None:
        digest = hash(payload)
        self._own_last[topic] = digest
        self._own_recent[(topic, digest)] = None
        if len(self._own_recent) > OWN_RECENT_KEPT:
            del self._own_recent[next(iter(self._own_recent))]

    def _is_own(self, topic: str, payload: bytes) -> bool:
        digest = hash(payload)
        return self._own_last.get(topic) == digest or (topic, digest) in self._own_recent

    def forget_direct_topics(self, cp_id: str) -> int:
        """Remove the station's retained direct topics (execute_forget_station)."""
        if self.topic_direct is None:
            return 0
        if self.discovery is not None:
            self.discovery.forget(cp_id)
        prefix = cp_id + "__"
        keys = [key for key in self._sensors if key.startswith(prefix)]
        for key in keys:
            topic = direct.sensor_topic(self.topic_direct, key)
            self.link.publish(topic, b"", qos=QOS_VALUES, retain=True)
        return len(keys)

    def offer_actuators(self, keys: list[str], example: Scalar) -> None:
        for key in keys:
            if key not in self.available_actuators:
                self.available_actuators[key] = example
                self._available_dirty.set()

    def publish_raw(self, cp_id: str, message: str) -> None:
        payload = {
            "payload": {
                "raw_message": {"charge_point_id": cp_id, "message": message},
                "timestamp": now_ms(),
            },
            "connector_version": self.version,
        }
        self.link.publish(self.topic_raw, dumps(payload), qos=QOS_RAW)

    def publish_state(self, name: str, value: Any) -> None:
        """Keep `value` retained at `<name>/state/<name>`; None removes it."""
        payload = b"" if value is None else dumps(value).encode()
        self.link.publish(self.topic_state + name, payload, qos=1, retain=True)

    async def run_available_datapoints(self) -> None:
        """Republish available_datapoints when keys changed, coalescing changes.

        Never ends: a document the broker cannot take is an ERROR (from the
        link), and the next change tries again."""
        while True:
            await self._available_dirty.wait()
            self._available_dirty.clear()
            size = AVAILABLE_MIN_INTERVAL * AVAILABLE_BYTES_PER_SECOND
            try:
                payload = dumps(
                    {"sensor": self.available_sensors, "actuator": self.available_actuators}
                ).encode()
                size = len(payload)
                self.link.publish(self.topic_available, payload, qos=1, retain=True)
            except Exception:  # a bug of ours must not end the republishing for good
                log.exception("failed to publish %s", self.topic_available)
            await asyncio.sleep(available_interval(int(size)))

    async def run_heartbeat(self, interval: float) -> None:
        while True:
            now = now_ms()
            payload = {
                "this_heartbeats_timestamp": now,
                "next_heartbeats_timestamp": now + int(interval * 1000),
            }
            self.link.publish(self.topic_heartbeat, dumps(payload), qos=1)
            await asyncio.sleep(interval)


class MqttLogHandler(logging.Handler):
    """Log records to `<name>/logs`, retained, in BEMCom's format.

    Never blocks and never recurses: QoS 0 is dropped by paho while the broker
    is away, paho's own records are skipped, and a record logged while one is
    being published (in the same thread) is skipped too.
    """

    def __init__(self, link: MqttLink, topic: str, level: int, instance: int | None = None) -> None:
        """`instance`: with several instances, `emitter` is `<logger>@<n>` (CONTRACT §9)."""
        super().__init__(level)
        self._suffix = f"@{instance}" if instance is not None else ""
        self._link = link
        self._topic = topic
        self._busy = threading.local()

    def emit(self, record: logging.LogRecord) -> None:
        if record.name.startswith("paho") or getattr(self._busy, "active", False):
            return
        self._busy.active = True
        try:
            message = record.getMessage()
            if record.exc_info and record.exc_info[1] is not None:
                message += f" ({type(record.exc_info[1]).__name__}: {record.exc_info[1]})"
            payload = {
                "timestamp": int(record.created * 1000),
                "msg": message,
                "emitter": record.name + self._suffix,
                "level": record.levelno,
            }
            self._link.publish(self._topic, dumps(payload), qos=0, retain=True)
        except Exception:
            self.handleError(record)
        finally:
            self._busy.active = False
