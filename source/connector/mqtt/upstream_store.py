"""What a station's backend must not miss, kept retained on the broker.

While a station's backend is away (README "Keeping a station's own
backend"), its transaction messages wait here, in order, until the backend
is back; a restart of the connector needs no volume:
- `<name>/upstream/<cp>/kept/<seq>`: one message, `{"frame": …, "local": …}`;
  removed (an empty retained payload) once the backend answered it;
- `<name>/upstream/<cp>/ids`: for 1.6, our transaction ids -> the backend's.

Every instance keeps every station's records, so the instance that takes a
station over (README "Several instances") has them. While a station is held
here, what this instance holds is the truth: the broker's copies of other
stations, and those of an earlier run, are read; echoes of our own writes
are not (they could bring back a message already delivered). Sequence
numbers rise with the clock, so a restart never reuses one, and a message
at or below the last one delivered is never taken back.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from urllib.parse import unquote

from connector.core import upstream as up
from connector.core.mqtt_topics import escape_level
from connector.core.strict_json import dumps
from connector.mqtt.face import Face
from connector.mqtt.hub import MqttHub

log = logging.getLogger(__name__)

KEPT = "kept"
IDS = "ids"


class Backlog:
    """One station's kept messages and transaction ids, in memory and on the broker."""

    def __init__(self, store: UpstreamStore, cp_id: str) -> None:
        self._store = store
        self.cp_id = cp_id
        # seq -> (frame, our transaction id); kept in seq order.
        self.entries: dict[int, tuple[str, int | None]] = {}
        self._ordered = True
        # The seqs of meter values, oldest first: what goes first when full.
        self._droppable: dict[int, None] = {}
        self.delivered_upto = 0
        self.ids: up.TransactionIds = {}
        self._warned_full = False
        # Called when a message is kept (the upstream's sender waits for it).
        self.on_added: Callable[[], None] | None = None

    def __bool__(self) -> bool:
        return bool(self.entries)

    def __len__(self) -> int:
        return len(self.entries)

    def first(self) -> tuple[int, str, int | None] | None:
        if not self.entries:
            return None
        if not self._ordered:
            self.entries = dict(sorted(self.entries.items()))
            self._droppable = dict(sorted(self._droppable.items()))
            self._ordered = True
        seq = next(iter(self.entries))
        frame, local = self.entries[seq]
        return seq, frame, local

    def append(self, frame: str, local: int | None, droppable: Callable[[str], bool]) -> None:
        """Keep a message. At MAX_KEPT the oldest meter values go first; starts
        and stops only beyond twice that (a station that floods them)."""
        self.first()  # in order
        last = next(reversed(self.entries)) if self.entries else 0
        seq = max(last + 1, self.delivered_upto + 1, time.time_ns() // 1000)
        if len(self.entries) >= up.MAX_KEPT:
            victim = next(iter(self._droppable), None)
            if victim is None and len(self.entries) >= 2 * up.MAX_KEPT:
                victim = next(iter(self.entries))
            if not self._warned_full:
                self._warned_full = True
                log.warning(
                    "%s: %d messages kept for its backend, which is away; the oldest meter "
                    "values are dropped to keep the newest",
                    self.cp_id,
                    up.MAX_KEPT,
                )
            if victim is not None:
                self._remove(victim)
        self._add(seq, frame, local, droppable(frame))
        self._store.write(self.cp_id, f"{KEPT}/{seq}", up.encode_kept(frame, local))

    def _add(self, seq: int, frame: str, local: int | None, droppable: bool) -> None:
        if self.entries and seq < next(reversed(self.entries)):
            self._ordered = False
        self.entries[seq] = (frame, local)
        if droppable:
            self._droppable[seq] = None
        if self.on_added is not None:
            self.on_added()

    def done(self, seq: int) -> None:
        """The backend answered it (or refused it): never sent again."""
        self.delivered_upto = max(self.delivered_upto, seq)
        self._remove(seq)
        if not self.entries:
            self._warned_full = False

    def _remove(self, seq: int) -> None:
        self._droppable.pop(seq, None)
        if self.entries.pop(seq, None) is not None:
            self._store.write(self.cp_id, f"{KEPT}/{seq}", b"")

    def map_id(self, ours: int, backend: int) -> None:
        self.ids.pop(ours, None)
        self.ids[ours] = backend
        while len(self.ids) > up.MAX_MAPPED:
            del self.ids[next(iter(self.ids))]
        self._write_ids()

    def unmap_id(self, ours: int) -> None:
        if self.ids.pop(ours, None) is not None:
            self._write_ids()

    def _write_ids(self) -> None:
        payload = dumps(up.encode_ids(self.ids)).encode() if self.ids else b""
        self._store.write(self.cp_id, IDS, payload)

    # ---- from the broker ------------------------------------------------

    def restore(
        self, seq: int, payload: bytes, retained: bool, droppable: Callable[[str], bool]
    ) -> None:
        """A record of an earlier run (retained) or of another instance (live)."""
        if not payload:
            # Sent (or dropped) by whoever held the station: in order, so
            # whatever this instance keeps later comes after it.
            self.delivered_upto = max(self.delivered_upto, seq)
            self._droppable.pop(seq, None)
            self.entries.pop(seq, None)
            return
        if retained and seq <= self.delivered_upto:
            return  # sent by this instance; the broker had not heard yet
        kept = up.decode_kept(payload)
        if kept is None:
            log.warning("%s: ignored an invalid message kept for its backend", self.cp_id)
            return
        if seq in self.entries:
            return
        if len(self.entries) >= 2 * up.MAX_KEPT:
            log.warning("%s: ignored a message kept on the broker beyond the bound", self.cp_id)
            return
        self._add(seq, kept[0], kept[1], droppable(kept[0]))

    def restore_ids(self, payload: bytes) -> None:
        if not payload:
            self.ids = {}
            return
        ids = up.decode_ids(payload)
        if ids is None:
            log.warning(
                "%s: ignored an invalid map of transaction ids kept on the broker", self.cp_id
            )
            return
        self.ids = ids


class UpstreamStore(Face):
    """The Face of every station's Backlog. `held(cp_id)`: the station is
    connected here, so its records here are the truth."""

    def __init__(
        self,
        hub: MqttHub,
        held: Callable[[str], bool],
        forwarded: Callable[[str], bool],
        droppable: Callable[[str], bool],
    ) -> None:
        """`forwarded`: OCPP_UPSTREAM_STATIONS (records of other stations are
        ignored); `droppable`: a kept frame that may go first when full."""
        self._hub = hub
        self._held = held
        self._forwarded = forwarded
        self._droppable = droppable
        self.topic = f"{hub.name}/upstream/"
        self._backlogs: dict[str, Backlog] = {}

    def of(self, cp_id: str) -> Backlog:
        backlog = self._backlogs.get(cp_id)
        if backlog is None:
            backlog = self._backlogs[cp_id] = Backlog(self, cp_id)
        return backlog

    def kept(self) -> int:
        """Messages kept for every station's backend (metrics)."""
        return sum(len(b) for b in self._backlogs.values())

    def write(self, cp_id: str, name: str, payload: bytes) -> None:
        self._hub.publish(f"{self.topic}{escape_level(cp_id)}/{name}", payload, qos=1, retain=True)

    def subscriptions(self) -> list[tuple[str, bool]]:
        # no_local: on MQTT 5 our own writes do not come back at all.
        return [(self.topic + "#", True)]

    def message(self, topic: str, payload: bytes, retained: bool) -> bool:
        if not topic.startswith(self.topic):
            return False
        parts = topic[len(self.topic) :].split("/")
        cp_id = unquote(parts[0])
        if not self._forwarded(cp_id):
            return True
        if not retained and self._held(cp_id):
            return True  # an echo of our own, or stale: ours is the truth
        if len(parts) == 3 and parts[1] == KEPT and parts[2].isdigit() and len(parts[2]) <= 20:
            self.of(cp_id).restore(int(parts[2]), payload, retained, self._droppable)
        elif len(parts) == 2 and parts[1] == IDS:
            backlog = self.of(cp_id)
            if not (retained and self._held(cp_id) and backlog.ids):
                backlog.restore_ids(payload)
        elif payload:
            log.warning("ignored %s: no record of this connector's", topic[:200])
        return True
