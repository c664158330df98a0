"""Several instances acting as one connector, through the broker (CONTRACT §9).

With CONNECTOR_INSTANCE set, each process is instance n, and the broker is
the only thing the instances share:

- `<name>/owners/<cp>` (retained): claims; core/ownership.py decides, from
  the broker's order, which instance serves a station. An instance that
  loses a station closes its connection at once.
- `<name>/instances/<n>` (retained): `online`, with a last will `offline`
  (on its own MQTT connection); `offline` on a clean stop.
- `<name>/instances/<n>/available_datapoints` (retained): each instance's
  own list. The leader (the lowest live instance) publishes their union on
  `<name>/available_datapoints`; an instance that dies leaves its list, so
  keys stay while their stations may come back.
- `<name>/status` (retained): `online` while any instance lives. Every
  instance's main connection has the last will `offline`; any survivor that
  hears it says `online` again at once. The last one to stop cleanly says
  `offline`.
- When an instance dies, the leader waits DEAD_GRACE s for its stations to
  come back elsewhere, then reports those that did not `connected=false`.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from typing import Any
from urllib.parse import quote, unquote

from connector.core.ownership import Claim, Ownership, decode, encode
from connector.mqtt.bemcom import available_interval
from connector.mqtt.mqtt_link import MqttLink

log = logging.getLogger(__name__)

ONLINE, OFFLINE = b"online", b"offline"
# s a dead instance's stations get to reconnect elsewhere before they are
# reported disconnected; with the broker's will (at once after a kill, 1.5
# keep-alives after a network loss) well within CONTRACT §9's 30 s.
DEAD_GRACE = 10.0


class Cluster:
    def __init__(
        self,
        name: str,
        instance: int,
        link: MqttLink,
        presence: MqttLink,
        on_lost: Callable[[str], None],
        on_gone: Callable[[str], None],
    ) -> None:
        """`link`: the main connection (its will sets `<name>/status` offline);
        `presence`: a connection of its own whose will sets `<name>/instances/<n>`
        offline (MQTT has one will per connection).
        `on_lost(cp)`: another instance took the station; close ours.
        `on_gone(cp)`: a dead instance's station did not come back: report it."""
        self._presence = presence
        self.name = name
        self.instance = instance
        self.ownership = Ownership(instance)
        self._link = link
        self._on_lost = on_lost
        self._on_gone = on_gone
        self.topic_owners = f"{name}/owners/"
        self.topic_instances = f"{name}/instances/"
        self.topic_status = f"{name}/status"
        self.topic_own_list = f"{self.topic_instances}{instance}/available_datapoints"
        self.topic_union = f"{name}/available_datapoints"
        self.live: set[int] = {instance}
        self._lists: dict[int, dict[str, Any]] = {}
        self._union_dirty = asyncio.Event()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._stopping = False

    @property
    def topics(self) -> list[str]:
        return [
            self.topic_owners + "#",
            self.topic_instances + "+",
            self.topic_instances + "+/available_datapoints",
            self.topic_status,
        ]

    @property
    def is_leader(self) -> bool:
        return self.instance == min(self.live)

    @property
    def topic_presence(self) -> str:
        return f"{self.topic_instances}{self.instance}"

    def announce(self) -> None:
        """After each (re)connect of the presence connection: we are here."""
        self._presence.publish(self.topic_presence, ONLINE, qos=1, retain=True)

    def goodbye(self) -> None:
        """A clean stop: no last will, so we say it ourselves. Releases first,
        so no one waits for stations we no longer hold."""
        self._stopping = True
        for cp_id in list(self.ownership.ours()):
            self._publish_claim(cp_id, Claim(None, self.ownership.ours()[cp_id]))
        self._presence.publish(self.topic_presence, OFFLINE, qos=1, retain=True)
        if self.live == {self.instance}:
            self._link.publish(self.topic_status, OFFLINE, qos=1, retain=True)

    # ---- stations ------------------------------------------------------

    def claim(self, cp_id: str, connection: str) -> None:
        self._publish_claim(cp_id, self.ownership.claim(cp_id, connection))

    def release(self, cp_id: str, connection: str) -> None:
        claim = self.ownership.release(cp_id, connection)
        if claim is not None:
            self._publish_claim(cp_id, claim)

    def _publish_claim(self, cp_id: str, claim: Claim) -> None:
        self._link.publish(self.topic_owners + quote(cp_id, safe=""), encode(claim), 1, True)

    def owns(self, cp_id: str) -> bool:
        return self.ownership.owns(cp_id)

    def held_elsewhere(self, cp_id: str) -> bool:
        holder = self.ownership.holder(cp_id)
        return holder is not None and holder != self.instance and holder in self.live

    # ---- messages --------------------------------------------------------

    def on_message(self, topic: str, payload: bytes, retained: bool) -> bool:
        """True when the message was one of ours."""
        if topic.startswith(self.topic_owners):
            claim = decode(payload)
            if claim is not None:
                self._heard_claim(unquote(topic[len(self.topic_owners) :]), claim)
            return True
        if topic == self.topic_status:
            if payload == OFFLINE and not self._stopping:
                # Another instance's last will: we are still here.
                self._link.publish(self.topic_status, ONLINE, qos=1, retain=True)
            return True
        if topic.startswith(self.topic_instances):
            rest = topic[len(self.topic_instances) :]
            number, _, sub = rest.partition("/")
            if not number.isdigit():
                return True
            if sub == "available_datapoints":
                self._heard_list(int(number), payload)
            elif not sub:
                self._heard_presence(int(number), payload)
            return True
        return False

    def _heard_claim(self, cp_id: str, claim: Claim) -> None:
        action = self.ownership.heard(cp_id, claim)
        if action == "lost":
            log.info(
                "%s: a newer connection on instance %s takes over; closing ours",
                cp_id,
                claim.instance,
            )
            self._on_lost(cp_id)
        elif action == "reassert":
            # An older connection's release overwrote our claim on the broker.
            ours = self.ownership.our_claim(cp_id)
            if ours is not None:
                self._publish_claim(cp_id, ours)

    def _heard_presence(self, number: int, payload: bytes) -> None:
        if number == self.instance:
            if payload == OFFLINE and not self._stopping:
                self.announce()  # the will of an earlier run of ours
            return
        if payload == ONLINE:
            self.live.add(number)
        elif payload == OFFLINE:  # its will, or a clean stop
            self.live.discard(number)
        else:
            if payload:  # empty: a retained topic deleted by hand
                log.warning(
                    "ignored %r on %s%d: presence is online or offline",
                    payload[:40],
                    self.topic_instances,
                    number,
                )
            return
        if payload == OFFLINE:
            held = {cp: self.ownership.latest[cp] for cp in self.ownership.held_by(number)}
            if held:
                log.warning(
                    "instance %d is gone; %d stations it held get %s s to reconnect elsewhere",
                    number,
                    len(held),
                    DEAD_GRACE,
                )
                self._spawn(self._report_gone(held))
        self._union_dirty.set()

    def claims_of_earlier_run(self) -> None:
        """After start, once the retained claims are in: stations an earlier run of
        this instance held (it was killed, and came back before the others gave up
        on it) get the same grace, and are reported by us."""
        ours = self.ownership.ours()
        held = {
            cp: claim
            for cp, claim in self.ownership.latest.items()
            if claim.instance == self.instance and ours.get(cp) != claim.connection
        }
        if held:
            self._spawn(self._report_gone(held, leader_only=False))

    async def _report_gone(self, held: dict[str, Claim], leader_only: bool = True) -> None:
        await asyncio.sleep(DEAD_GRACE)
        if leader_only and not self.is_leader:
            return  # the leader reports (a new leader, if the old one died too)
        for cp_id, claim in held.items():
            if self.ownership.latest.get(cp_id) == claim:  # nobody took it meanwhile
                self._publish_claim(cp_id, Claim(None, claim.connection))
                self._on_gone(cp_id)

    # ---- one datapoint list ----------------------------------------------

    def _heard_list(self, number: int, payload: bytes) -> None:
        try:
            listed = json.loads(payload) if payload else None
        except ValueError:
            return
        if isinstance(listed, dict):
            self._lists[number] = listed
            self._union_dirty.set()

    def union(self) -> dict[str, Any]:
        sensor: dict[str, Any] = {}
        actuator: dict[str, Any] = {}
        for number in sorted(self._lists):
            listed = self._lists[number]
            if isinstance(listed.get("sensor"), dict):
                sensor.update(listed["sensor"])
            if isinstance(listed.get("actuator"), dict):
                actuator.update(listed["actuator"])
        return {"sensor": sensor, "actuator": actuator}

    async def run_union(self) -> None:
        """The leader publishes the union of every instance's list, paced by size."""
        while True:
            await self._union_dirty.wait()
            self._union_dirty.clear()
            if not self.is_leader:
                continue
            payload = json.dumps(self.union()).encode()
            self._link.publish(self.topic_union, payload, qos=1, retain=True)
            await asyncio.sleep(available_interval(len(payload)))

    def _spawn(self, coroutine: Any) -> None:
        task = asyncio.ensure_future(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
