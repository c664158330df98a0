"""BEMCom's MQTT protocol, one face of the connector (face.py).

Topics (README, "MQTT topics"):
- `<name>/heartbeat`, `<name>/logs` (MqttLogHandler), `<name>/available_datapoints`
  (with several instances, `<name>/instances/<n>/available_datapoints`, whose
  union cluster.py publishes);
- `<name>/datapoint_map` (in, retained by BEMCom's API);
- the mapped sensor topics (out) and actuator topics (in);
- `<name>/raw_message_to_db`.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable

from connector.core.available_pacing import BYTES_PER_SECOND, MIN_INTERVAL, available_interval
from connector.core.datapoint_map import InvalidMap, check_map, parse_datapoint_map
from connector.core.datapoints import Datapoint, Scalar
from connector.core.strict_json import dumps
from connector.mqtt.face import Face
from connector.mqtt.hub import MqttHub
from connector.mqtt.mqtt_link import MqttLink

log = logging.getLogger(__name__)

# Conflicting map entries named in full in the ERROR; the rest are counted.
MAX_CONFLICTS_SHOWN = 20
QOS_VALUES = 1
QOS_RAW = 2
# Our latest publishes remembered beyond the last one per topic, for echoes
# still on their way when a new map turns a sensor topic into an actuator topic.
OWN_RECENT_KEPT = 1024


def now_ms() -> int:
    return int(time.time() * 1000)


class Bemcom(Face):
    def __init__(
        self,
        hub: MqttHub,
        version: str,
        on_actuator: Callable[[str, str, bytes], None],
        heartbeat_interval: float,
        instance: int | None = None,
    ) -> None:
        """`on_actuator(topic, key, payload)`: a command; `instance`:
        CONNECTOR_INSTANCE (README, "Several instances"), or None for a single one."""
        self._hub = hub
        self._link = hub.link
        self.version = version
        self._on_actuator = on_actuator
        self._heartbeat_interval = heartbeat_interval
        name = hub.name
        self.name = name
        self.topic_heartbeat = f"{name}/heartbeat"
        self.topic_logs = f"{name}/logs"
        self.topic_available = (
            f"{name}/available_datapoints"
            if instance is None
            else f"{name}/instances/{instance}/available_datapoints"
        )
        self.topic_map = f"{name}/datapoint_map"
        self.topic_raw = f"{name}/raw_message_to_db"
        self.sensor_map: dict[str, str] = {}
        self.actuator_map: dict[str, str] = {}
        # What we published last on each sensor topic, and on the latest
        # topics, as payload hashes: a message on an actuator topic that we
        # published ourselves is never a command (an earlier map had that
        # topic as a sensor topic, and the broker kept our value).
        self._own_last: dict[str, int] = {}
        self._own_recent: dict[tuple[str, int], None] = {}
        self._keys_changed = hub.watch_keys()

    # ---- the Face interface ---------------------------------------------

    def subscriptions(self) -> list[tuple[str, bool]]:
        return [(self.topic_map, False)] + [(topic, True) for topic in self.actuator_map]

    def message(self, topic: str, payload: bytes, retained: bool) -> bool:
        if topic == self.topic_map:
            self._apply_map(payload)
            return True
        key = self.actuator_map.get(topic)
        if key is None:
            return False
        if retained:
            # Kept by the broker from some earlier time: running it at every
            # restart of either side repeats a Reset, a remote start... (limits
            # in force are kept by the connector itself).
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
            self._on_actuator(topic, key, payload)
        return True

    def datapoints(self, points: list[Datapoint], new_keys: list[str]) -> None:
        sensor_map = self.sensor_map
        if not sensor_map:
            return
        for key, value, timestamp in points:
            if key in sensor_map:
                self._publish_value(key, value, timestamp)

    async def run(self) -> None:
        await asyncio.gather(self._run_heartbeat(), self._run_available_datapoints())

    # ---- datapoint map ---------------------------------------------------

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
        self._link.unsubscribe(sorted(old_topics - new_topics))
        self._link.subscribe(sorted(new_topics - old_topics), no_local=True)
        if not self._hub.ready.is_set():
            # `ready` waits for the retained messages of these topics too.
            self._hub.resync()
        newly_mapped = [k for k, t in sensor.items() if self.sensor_map.get(k) != t]
        self.sensor_map, self.actuator_map = sensor, actuator
        # Keys mapped just now get their last known value, so BEMCom has it
        # without waiting for the station's next report.
        for key in newly_mapped:
            latest = self._hub.latest_with_time(key)
            if latest is not None:
                self._publish_value(key, *latest)
        log.info(
            "datapoint map applied: %d sensor and %d actuator datapoints",
            len(sensor),
            len(actuator),
        )

    # ---- outgoing ----------------------------------------------------------

    def _publish_value(self, key: str, value: Scalar, timestamp: int) -> None:
        topic = self.sensor_map[key]
        payload = dumps({"value": value, "timestamp": timestamp}).encode()
        self._remember_own(topic, payload)
        self._link.publish(topic, payload, qos=QOS_VALUES, retain=True)

    def _remember_own(self, topic: str, payload: bytes) -> None:
        digest = hash(payload)
        self._own_last[topic] = digest
        self._own_recent[(topic, digest)] = None
        if len(self._own_recent) > OWN_RECENT_KEPT:
            del self._own_recent[next(iter(self._own_recent))]

    def _is_own(self, topic: str, payload: bytes) -> bool:
        digest = hash(payload)
        return self._own_last.get(topic) == digest or (topic, digest) in self._own_recent

    def publish_raw(self, cp_id: str, message: str) -> None:
        payload = {
            "payload": {
                "raw_message": {"charge_point_id": cp_id, "message": message},
                "timestamp": now_ms(),
            },
            "connector_version": self.version,
        }
        self._link.publish(self.topic_raw, dumps(payload), qos=QOS_RAW)

    async def _run_available_datapoints(self) -> None:
        """Republish available_datapoints when keys changed, coalescing changes.

        Never ends: a document the broker cannot take is an ERROR (from the
        link), and the next change tries again."""
        while True:
            await self._keys_changed.wait()
            self._keys_changed.clear()
            size = MIN_INTERVAL * BYTES_PER_SECOND
            try:
                document = {"sensor": self._hub.available_sensors, "actuator": self._hub.actuators}
                payload = dumps(document).encode()
                size = len(payload)
                self._link.publish(self.topic_available, payload, qos=1, retain=True)
            except Exception:  # a bug of ours must not end the republishing for good
                log.exception("failed to publish %s", self.topic_available)
            await asyncio.sleep(available_interval(int(size)))

    async def _run_heartbeat(self) -> None:
        interval = self._heartbeat_interval
        while True:
            now = now_ms()
            payload = {
                "this_heartbeats_timestamp": now,
                "next_heartbeats_timestamp": now + int(interval * 1000),
            }
            self._link.publish(self.topic_heartbeat, dumps(payload), qos=1)
            await asyncio.sleep(interval)


class MqttLogHandler(logging.Handler):
    """Log records to `<name>/logs`, retained, in BEMCom's format.

    Never blocks and never recurses: QoS 0 is dropped by paho while the broker
    is away, paho's own records are skipped, and a record logged while one is
    being published (in the same thread) is skipped too.
    """

    def __init__(self, link: MqttLink, topic: str, level: int, instance: int | None = None) -> None:
        """`instance`: with several instances, `emitter` is `<logger>@<n>`."""
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
