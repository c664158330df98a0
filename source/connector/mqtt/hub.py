"""The connector on MQTT: one broker connection, and its faces (face.py).

The hub owns the connection (mqtt_link.py), `<name>/status`, the latest value
of every sensor key (with each station's key budget), and the actuator keys
offered. It subscribes to what its faces ask for, hands each message to them
until one takes it, and fans datapoints out to them. `ready` is set once the
broker has handed over every retained message of the subscriptions made so
far (the datapoint map, the kept state): the broker handles our packets in
order, so when a message we publish after subscribing comes back, all that
the subscriptions brought is in.
"""

from __future__ import annotations

import asyncio
import logging
import math
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from paho.mqtt.client import topic_matches_sub

from connector.core.datapoints import Datapoint, Scalar, shown
from connector.core.key_budget import KeyBudget, example
from connector.mqtt.face import Face
from connector.mqtt.mqtt_link import MqttLink, MqttOptions

log = logging.getLogger(__name__)


@dataclass
class _Collector:
    filters: list[str]
    found: set[str]
    marker: bytes
    done: asyncio.Future[None]


class MqttHub:
    def __init__(
        self,
        name: str,
        host: str,
        port: int,
        loop: asyncio.AbstractEventLoop,
        options: MqttOptions | None = None,
        budget: KeyBudget | None = None,
    ) -> None:
        self.name = name
        self.topic_status = f"{name}/status"
        self._sync_topic = f"{name}/state_sync/{uuid.uuid4().hex}"
        self._sync_sent = 0
        self.ready = asyncio.Event()  # the retained messages of our subscriptions are in
        self._faces: list[Face] = []
        # The faces that take datapoints (the hot path skips the others).
        self._receivers: list[Face] = []
        # Every sensor key -> its latest (value, timestamp). One dict for both:
        # at thousands of stations a second entry per key was 2 KB a station.
        self._sensors: dict[str, tuple[Scalar, int]] = {}
        self._budget = budget or KeyBudget(5000)
        # Sensor keys offered before their first value (offer_sensors): listed in
        # available_datapoints beside _sensors, never in it, so the path of
        # every value is as it was (a key's first value makes it new, as ever).
        self._offered: dict[str, None] = {}
        # Retained topics being gathered from the broker (retained_topics).
        self._collectors: list[_Collector] = []
        # Every actuator key offered -> its example.
        self.actuators: dict[str, Scalar] = {}
        # Each set when keys (sensor or actuator) appeared, and after each
        # (re)connect: one per face that lists the keys (watch_keys).
        self._key_watchers: list[asyncio.Event] = []
        client_id = f"{name}-{uuid.uuid4().hex[:8]}"
        self.link = MqttLink(host, port, client_id, loop, self._connected, self._message, options)

    def attach(self, face: Face) -> None:
        """Faces get messages in the order they were attached."""
        self._faces.append(face)
        if type(face).datapoints is not Face.datapoints:
            self._receivers.append(face)

    def watch_keys(self) -> asyncio.Event:
        """An event of the caller's own, set whenever keys appeared."""
        event = asyncio.Event()
        self._key_watchers.append(event)
        return event

    def _keys_changed(self) -> None:
        for event in self._key_watchers:
            event.set()

    @property
    def faces(self) -> tuple[Face, ...]:
        return tuple(self._faces)

    def start(self) -> None:
        self.link.start()

    def stop(self) -> None:
        self.link.stop()

    # ---- connection ----------------------------------------------------

    def _connected(self) -> None:
        # Subscribing here restores every subscription after a reconnect.
        self.link.subscribe([self._sync_topic])
        for no_local in (False, True):
            topics = [t for face in self._faces for t, n in face.subscriptions() if n is no_local]
            self.link.subscribe(topics, no_local=no_local)
        self.link.publish(self.topic_status, b"online", qos=1, retain=True)
        for face in self._faces:
            face.connected()
        self.resync()
        self._keys_changed()

    def resync(self) -> None:
        """Subscriptions were made: `ready` waits for what they bring too."""
        self._sync_sent += 1
        self.link.publish(self._sync_topic, str(self._sync_sent).encode(), qos=1)

    def _message(self, topic: str, payload: bytes, retained: bool) -> None:
        if topic == self._sync_topic:
            if payload == str(self._sync_sent).encode():
                self.ready.set()
            for collector in self._collectors:
                if payload == collector.marker and not collector.done.done():
                    collector.done.set_result(None)
            return
        if self._collectors and retained:
            for collector in self._collectors:
                if any(topic_matches_sub(f, topic) for f in collector.filters):
                    (collector.found.add if payload else collector.found.discard)(topic)
        for face in self._faces:
            try:
                if face.message(topic, payload, retained):
                    return
            except Exception:  # a bad message must never end the connector
                log.exception("failed to handle a message on %s", topic[:200])
                return

    # ---- datapoints -------------------------------------------------------

    def publish_datapoints(self, datapoints: list[Datapoint]) -> None:
        """Keep each value as its key's latest, and hand the batch to every face.

        Only finite numbers go out: strict JSON readers (BEMCom's API, Home
        Assistant) refuse a whole document for one Infinity. A key a station's
        budget has no room for is dropped (key_budget.py)."""
        sensors = self._sensors
        # The batch as it is, unless something is left out (nearly never).
        accepted: list[Datapoint] | None = None
        new_keys: list[str] = []
        for index, point in enumerate(datapoints):
            key, value, timestamp = point
            keep = True
            if (value.__class__ is float and not math.isfinite(value)) or (
                value.__class__ is int and not -(2**63) <= value < 2**64
            ):
                log.warning("%s: skipped %s: not a finite number of 64 bits", key, shown(value))
                keep = False
            elif key not in sensors:
                # A key offered before (offer_sensors) is counted already.
                keep = self._offered.pop(key, 0) is None or self._budget.admit(key)
                if keep:
                    new_keys.append(key)

            if not keep:
                if accepted is None:
                    accepted = list(datapoints[:index])
                continue
            sensors[key] = (value, timestamp)
            if accepted is not None:
                accepted.append(point)
        if new_keys:
            self._keys_changed()
        points = datapoints if accepted is None else accepted
        for face in self._receivers:
            face.datapoints(points, new_keys)

    def latest(self, key: str) -> Scalar:
        entry = self._sensors.get(key)
        return entry[0] if entry is not None else None

    def latest_with_time(self, key: str) -> tuple[Scalar, int] | None:
        return self._sensors.get(key)

    def last_value(self, key: str) -> Scalar:
        return self._sensors[key][0]

    @property
    def available_sensors(self) -> dict[str, Scalar]:
        """Every sensor key with an example: its latest value (a long string
        shortened); a key offered before its first value, with null."""
        sensors = {key: example(value) for key, (value, _) in self._sensors.items()}
        for key in self._offered:
            sensors.setdefault(key, None)
        return sensors

    def keys_of(self, cp_id: str) -> list[str]:
        prefix = cp_id + "__"
        return [key for key in self._sensors if key.startswith(prefix)]

    def offer_sensors(self, keys: list[str]) -> None:
        """Sensor keys a command's answer will make: in available_datapoints
        with a null example from the start, so that BEMCom can map them before
        the first command. Nothing is published for them until a value comes."""
        added = False
        offered = self._offered
        for key in keys:
            # Counted in the station's key budget, as every key it has.
            if key not in offered and key not in self._sensors and self._budget.admit(key):
                offered[key] = None
                added = True
        if added:
            self._keys_changed()

    def offer_actuators(self, keys: list[str], value: Scalar) -> None:
        for key in keys:
            if key not in self.actuators:
                self.actuators[key] = value
                self._keys_changed()

    async def retained_topics(self, filters: Sequence[str], timeout: float = 5.0) -> set[str]:
        """The topics under `filters` on which the broker keeps a retained
        message now, whatever this connector saw since its start."""
        collector = _Collector(
            list(filters),
            set(),
            uuid.uuid4().hex.encode(),
            asyncio.get_running_loop().create_future(),
        )
        self._collectors.append(collector)
        try:
            self.link.subscribe(collector.filters)
            # The broker handles our packets in order: when this comes back,
            # every retained message of the subscription is in.
            self.link.publish(self._sync_topic, collector.marker, qos=1)
            await asyncio.wait_for(collector.done, timeout)
        except TimeoutError:
            log.warning("the broker did not hand over its retained messages within %g s", timeout)
        finally:
            self._collectors.remove(collector)
            self.link.unsubscribe(collector.filters)
        return collector.found

    async def forget_station(
        self,
        cp_id: str,
        first: Sequence[str] = (),
        then: Sequence[str] = (),
        settle: float = 1.0,
    ) -> int:
        """execute_forget_station: every face removes what it keeps for the
        station, and what the broker keeps under `first` and `then` is removed
        too, whatever this connector saw since its start. `first` (Home
        Assistant's configurations) goes `settle` s before the rest, so that
        Home Assistant drops the entities before their state topics empty."""
        keys = self.keys_of(cp_id)
        found = await self.retained_topics([*first, *then]) if first or then else set()
        early = {t for t in found if any(topic_matches_sub(f, t) for f in first)}
        removed = 0
        for face in self._faces:
            if face.forget_first:
                removed += face.forget(cp_id, keys)
        for topic in early:
            self.link.publish(topic, b"", qos=1, retain=True)
        if removed or early:
            await asyncio.sleep(settle)
        for face in self._faces:
            if not face.forget_first:
                removed += face.forget(cp_id, keys)
        for topic in found - early:
            self.link.publish(topic, b"", qos=1, retain=True)
        return removed + len(found)

    def announce_again(self, cp_id: str) -> None:
        """A station that was forgotten but is connected: its keys are new
        again to the faces that forgot it (discovery configurations, direct
        topics); BEMCom's mapped values were never removed."""
        prefix = cp_id + "__"
        points = [
            Datapoint(key, value, timestamp)
            for key, (value, timestamp) in self._sensors.items()
            if key.startswith(prefix) and timestamp
        ]
        keys = [point.key for point in points]
        for face in self._receivers:
            if type(face).forget is not Face.forget:
                face.datapoints(points, keys)

    def drop_keys(self, cp_id: str) -> None:
        """A station forgotten while away: its keys go, so that when it comes
        back every face hears of them as new (and its key budget is whole)."""
        prefix = cp_id + "__"
        for key in [k for k in self._sensors if k.startswith(prefix)]:
            del self._sensors[key]
        for key in [k for k in self._offered if k.startswith(prefix)]:
            del self._offered[key]
        for key in [k for k in self.actuators if k.startswith(prefix)]:
            del self.actuators[key]
        self._budget.forget(cp_id)
        self._keys_changed()

    # ---- the faces' own work ---------------------------------------------

    async def run(self) -> None:
        """Every face's `run`, for as long as the connector runs."""
        await asyncio.gather(*(face.run() for face in self._faces))

    def publish(self, topic: str, payload: Any, qos: int = 0, retain: bool = False) -> bool:
        return self.link.publish(topic, payload, qos=qos, retain=retain)
