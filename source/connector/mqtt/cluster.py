"""Several instances acting as one connector, through the broker: a face (face.py).

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

What reaches these topics is not all ours (issue 17): the broker sends an
instance's will when only its presence connection blipped, and anyone who
may write `<name>/#` can publish there (deploy/mosquitto.acl keeps them
out). So:
- an instance that hears itself reported `offline` while it runs says
  `online` again and re-asserts its claims at once, and the leader acts only
  on an absence that outlives DEAD_GRACE;
- a claim that would take a station from us is acted on only after
  CLAIM_CONFIRM s, and only if it is still the latest and comes from an
  instance that is running; an instance that hears a claim in its own name
  that it never made disowns it (publishes its release), and the holder
  then re-asserts its own;
- presence and claims of instance numbers outside 0-63 are ignored.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from typing import Any
from urllib.parse import quote, unquote

from connector.core.available_pacing import available_interval
from connector.core.ownership import MAX_INSTANCE, Claim, Ownership, decode, encode
from connector.core.strict_json import dumps
from connector.mqtt.face import Face
from connector.mqtt.hub import MqttHub
from connector.mqtt.mqtt_link import MqttLink

log = logging.getLogger(__name__)

ONLINE, OFFLINE = b"online", b"offline"
# s a dead instance's stations get to reconnect elsewhere before they are
# reported disconnected; with the broker's will (at once after a kill, 1.5
# keep-alives after a network loss) well within the README's 30 s.
DEAD_GRACE = 10.0
# s a claim that takes a station from us must stay the latest, from a running
# instance, before we close our connection (the README allows 2 s).
CLAIM_CONFIRM = 1.0
# Connection ids we issued, remembered to tell a forged claim in our name.
ISSUED_KEPT = 100_000


class Cluster(Face):
    def __init__(
        self,
        hub: MqttHub,
        instance: int,
        presence: MqttLink,
        on_lost: Callable[[str], None],
        on_gone: Callable[[str], None],
    ) -> None:
        """`hub`: the main connection (its will sets `<name>/status` offline);
        `presence`: a connection of its own whose will sets `<name>/instances/<n>`
        offline (MQTT has one will per connection).
        `on_lost(cp)`: another instance took the station; close ours.
        `on_gone(cp)`: a dead instance's station did not come back: report it."""
        self._presence = presence
        name = self.name = hub.name
        self.instance = instance
        self.ownership = Ownership(instance)
        self._link = hub.link
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
        # Connection ids we issued (bounded), and stations whose loss is being confirmed.
        self._issued: dict[str, None] = {}
        self._confirming: set[str] = set()

    def subscriptions(self) -> list[tuple[str, bool]]:
        return [
            (self.topic_owners + "#", False),
            (self.topic_instances + "+", False),
            (self.topic_instances + "+/available_datapoints", False),
            (self.topic_status, False),
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

    def reassert(self) -> None:
        """We were reported offline while we run: our claims, again, before any
        leader's grace runs out."""
        for cp_id in self.ownership.ours():
            if self.ownership.owns(cp_id):
                ours = self.ownership.our_claim(cp_id)
                if ours is not None:
                    self._publish_claim(cp_id, ours)

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
        self._issued[connection] = None
        if len(self._issued) > ISSUED_KEPT:
            del self._issued[next(iter(self._issued))]
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

    def message(self, topic: str, payload: bytes, retained: bool) -> bool:
        if topic.startswith(self.topic_owners):
            claim = decode(payload)
            if claim is not None:
                self._heard_claim(unquote(topic[len(self.topic_owners) :]), claim, retained)
            elif payload:
                log.warning("ignored an invalid claim on %s", topic[:200])
            return True
        if topic == self.topic_status:
            if payload == OFFLINE and not self._stopping:
                # Another instance's last will: we are still here.
                self._link.publish(self.topic_status, ONLINE, qos=1, retain=True)
            return True
        if topic.startswith(self.topic_instances):
            rest = topic[len(self.topic_instances) :]
            number, _, sub = rest.partition("/")
            if not (number.isascii() and number.isdigit() and int(number) <= MAX_INSTANCE):
                return True
            if sub == "available_datapoints":
                self._heard_list(int(number), payload)
            elif not sub:
                self._heard_presence(int(number), payload)
            return True
        return False

    def _heard_claim(self, cp_id: str, claim: Claim, retained: bool = False) -> None:
        action = self.ownership.heard(cp_id, claim)
        ours = self.ownership.our_claim(cp_id)
        if (
            claim.instance == self.instance
            and not retained  # an earlier run's claims are ours to report, not forged
            and claim.connection not in self._issued
            and (ours is None or ours.connection != claim.connection)
        ):
            log.warning(
                "%s: a claim in the name of this instance that it never made; disowned",
                cp_id,
            )
            self._publish_claim(cp_id, Claim(None, claim.connection))
        if action == "lost" and cp_id not in self._confirming:
            self._confirming.add(cp_id)
            self._spawn(self._confirm_loss(cp_id, claim))
        elif action == "reassert":
            # An older connection's release overwrote our claim on the broker.
            if ours is not None:
                self._publish_claim(cp_id, ours)

    async def _confirm_loss(self, cp_id: str, claim: Claim) -> None:
        """Close our connection if the claim that took the station stands."""
        try:
            await asyncio.sleep(CLAIM_CONFIRM)
        finally:
            self._confirming.discard(cp_id)
        ours = self.ownership.our_claim(cp_id)
        latest = self.ownership.latest.get(cp_id)
        if ours is None or latest is None or latest == ours:
            return  # gone meanwhile, or ours again (the claim was disowned)
        if latest.instance not in (None, self.instance) and latest.instance in self.live:
            if self.ownership.lose(cp_id, ours.connection):
                log.info(
                    "%s: a newer connection on instance %s takes over; closing ours",
                    cp_id,
                    latest.instance,
                )
                self._on_lost(cp_id)
            return
        log.warning(
            "%s: ignored a claim of instance %s, which is not running; ours stands",
            cp_id,
            latest.instance,
        )
        self._publish_claim(cp_id, ours)

    def _heard_presence(self, number: int, payload: bytes) -> None:
        if number == self.instance:
            if payload == OFFLINE and not self._stopping:
                # The will of an earlier run of ours, or of a blip of our
                # presence connection, or a forged one: we are here.
                self.announce()
                self.reassert()
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
                self._spawn(self._report_gone(held, number))
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
            self._spawn(self._report_gone(held, None))

    async def _report_gone(self, held: dict[str, Claim], number: int | None) -> None:
        """`number`: the instance reported offline, whose absence must outlive
        the grace; None for our own earlier run (we report those ourselves)."""
        await asyncio.sleep(DEAD_GRACE)
        if number is not None and (number in self.live or not self.is_leader):
            # It is back (a blip, or a forged offline), or the leader reports
            # (a new leader, if the old one died too).
            return
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

    async def run(self) -> None:
        """The leader publishes the union of every instance's list, paced by size."""
        while True:
            await self._union_dirty.wait()
            self._union_dirty.clear()
            if not self.is_leader:
                continue
            payload = dumps(self.union()).encode()
            self._link.publish(self.topic_union, payload, qos=1, retain=True)
            await asyncio.sleep(available_interval(len(payload)))

    def _spawn(self, coroutine: Any) -> None:
        task = asyncio.ensure_future(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
