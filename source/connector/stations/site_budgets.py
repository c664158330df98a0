"""Site budgets: one limit shared by a group of stations (README "Sharing a supply").

The allocation itself is pure (core/allocation.py); this module keeps what it
needs (which member connectors charge, since when, what each station
accepted), sends the results through charging control, and publishes the
groups' keys. The rules that keep the sum safe:

- decreases are sent first, all at once, and increases only once every
  decrease was answered Accepted; a connector whose station did not accept
  its decrease counts at its old limit, and the decrease is tried again at
  every rebalance and at least every RETRY_S;
- a connector of a disconnected station counts at the limit it last
  accepted: the others share what is left;
- every member keeps a default profile (TxDefaultProfile) small enough that a
  session starting while the connector is down cannot overload the group
  (`max_w` over the number of member connectors, or its minimum if larger,
  in every enclosing group);
- a tree of groups is rebalanced at most once a second, coalesced; an
  increase is sent only for at least 1 A or to end a pause, a decrease always.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import time
from collections.abc import Callable
from typing import Any

from connector.core import charging_profiles as cp
from connector.core import datapoints as dp
from connector.core.allocation import Charging, allocate
from connector.core.commands import InvalidCommand, parse_power_limit
from connector.core.groups import LIMIT_ACTUATOR, Connector, Groups, group_key
from connector.core.underuse import Underuse
from connector.settings import Settings
from connector.stations.charging_control import ChargingControl, Shared
from connector.stations.station import Station, now_ms

log = logging.getLogger(__name__)

REBALANCE_S = 1.0
RETRY_S = 30.0
SESSION_SETTLE_S = 0.3
ROTATE_S = 15 * 60.0
STATE_GROUP_LIMIT = "group_limits/"


def power_key(cp_id: str, connector_id: int) -> str:
    return dp.make_key(cp_id, "MeterValues", connector_id, "Power.Active.Import", "W")


class SiteBudgets(Shared):
    def __init__(
        self,
        groups: Groups,
        settings: Settings,
        charging: ChargingControl,
        publish: Callable[[list[dp.Datapoint]], None],
        persist: Callable[[str, Any], None],
        station_of: Callable[[str], Station | None],
        latest: Callable[[str], Any],
    ) -> None:
        self.groups = groups
        # cp id -> the groups that name it or one of its connectors.
        self._groups_of: dict[str, set[str]] = {}
        for (cp_id, _), group in groups.named.items():
            self._groups_of.setdefault(cp_id, set()).add(group)
        self.settings = settings
        self.charging = charging
        self._publish = publish
        self._persist = persist
        self._station_of = station_of
        self._latest = latest
        # The limit in force of each group (its actuator; max_w until set).
        self.limits: dict[str, float] = {n: g.max_w for n, g in groups.by_name.items()}
        # Member connectors with a session running -> when their turn began.
        self.turns: dict[Connector, float] = {}
        # What each station accepted for the session running (W); a session
        # without an entry draws on its default profile.
        self.accepted: dict[Connector, float] = {}
        self.allocation: dict[Connector, float] = {}
        self._underuse: dict[Connector, Underuse] = {}
        self._dirty: set[str] = set()
        self._last: dict[str, float] = {}
        self._retry_at: dict[str, float] = {}
        self._rotated_at = time.monotonic()
        self._busy: set[str] = set()
        self._wake = asyncio.Event()
        self._tasks: set[asyncio.Task[None]] = set()

    # ---- what charging control asks (Shared) ------------------------

    def shares(self, cp_id: str, connector_id: int) -> bool:
        return self.groups.group_of(cp_id, connector_id) is not None

    def own_limit_changed(self, cp_id: str) -> None:
        for group in self._groups_of.get(cp_id, ()):
            self._mark(group)

    # ---- events -------------------------------------------------------

    def session(self, station: Station, connector_id: int, running: bool) -> None:
        """A session started (or was first seen) or ended on a connector."""
        group = self.groups.group_of(station.id, connector_id)
        if group is None:
            return
        connector = (station.id, connector_id)
        if running and connector not in self.turns:
            self.turns[connector] = time.monotonic()
            # After the station has its answer (a 1.6 transaction id) first.
            asyncio.get_running_loop().call_later(SESSION_SETTLE_S, self._mark, group)
        elif not running and connector in self.turns:
            del self.turns[connector]
            self.accepted.pop(connector, None)
            self._underuse.pop(connector, None)
            self._mark(group)

    def connected(self, station: Station) -> None:
        """Its members get their default profiles once it is learned, and the
        allocation is sent again (a station may have lost its profiles)."""
        if station.id in self._groups_of:
            station.spawn(self._defaults(station))

    def booted(self, station: Station) -> None:
        """A station that boots ended its sessions (it reports them as it can)."""
        for connector in [c for c in self.turns if c[0] == station.id]:
            self.session(station, connector[1], False)

    def connector_seen(self, station: Station, connector_id: int) -> None:
        if self.groups.group_of(station.id, connector_id) is not None:
            station.spawn(self._default(station, connector_id))

    def disconnected(self, station: Station) -> None:
        for connector in self.turns:
            if connector[0] == station.id:
                group = self.groups.group_of(*connector)
                if group is not None:
                    self._mark(group)

    def restore(self, group: str, payload: bytes) -> None:
        """A group limit kept retained on the broker by an earlier run."""
        try:
            value = json.loads(payload)
        except ValueError:
            return
        entry = self.groups.by_name.get(group)
        if entry is None or isinstance(value, bool) or not isinstance(value, int | float):
            return
        if math.isfinite(value) and 0 <= value <= entry.max_w:
            self.limits[group] = float(value)
            self._mark(group)

    def command(self, group: str, payload: Any) -> None:
        """`@<group>__execute_set_group_limit`: W, or null/"" for max_w."""
        entry = self.groups.by_name.get(group)
        if entry is None:
            raise InvalidCommand(f"no group {group!r} in OCPP_GROUPS")
        limit = parse_power_limit(payload)
        if limit is None:
            limit = entry.max_w
        elif limit > entry.max_w:
            log.warning(
                "group %s: %s W is above its max_w; %s W applies",
                group,
                dp.tidy_number(limit),
                dp.tidy_number(entry.max_w),
            )
            limit = entry.max_w
        self.limits[group] = limit
        self._persist(STATE_GROUP_LIMIT + group, limit)
        log.info("group %s: limit %s W", group, dp.tidy_number(limit))
        self._mark(group)

    def actuator_keys(self) -> list[str]:
        return [group_key(name, LIMIT_ACTUATOR) for name in self.groups.by_name]

    # ---- the loop -----------------------------------------------------

    def _mark(self, group: str) -> None:
        self._dirty.add(self.groups.enclosing(group)[-1])
        self._wake.set()

    async def run(self) -> None:
        for name in self.groups.by_name:
            self._publish_group(name)
        while True:
            try:
                await asyncio.wait_for(self._wake.wait(), REBALANCE_S)
            except TimeoutError:
                pass
            self._wake.clear()
            now = time.monotonic()
            self._observe_power(now)
            self._rotate(now)
            for root, at in list(self._retry_at.items()):
                if now >= at:
                    del self._retry_at[root]
                    self._dirty.add(root)
            for root in list(self._dirty):
                if root in self._busy or now - self._last.get(root, -math.inf) < REBALANCE_S:
                    continue  # coalesced: the next pass takes it
                self._dirty.discard(root)
                self._last[root] = now
                self._busy.add(root)
                task = asyncio.create_task(self._rebalance(root))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
            if self._dirty:
                self._wake.set()
                await asyncio.sleep(0.1)

    def _observe_power(self, now: float) -> None:
        """Power a car leaves unused goes to the others (core/underuse.py)."""
        for connector in self.turns:
            allocation = self.allocation.get(connector)
            measured = self._latest(power_key(*connector))
            if allocation is None or isinstance(measured, bool):
                continue
            if not isinstance(measured, int | float):
                continue
            group = self.groups.group_of(*connector)
            assert group is not None
            station = self._station_of(connector[0])
            if station is None:
                continue
            minimum = self.groups.by_name[group].min_w(self._phases(station, connector[1]))
            state = self._underuse.setdefault(connector, Underuse())
            if state.seen(float(measured), allocation, minimum, now):
                self._mark(group)

    def _rotate(self, now: float) -> None:
        """Every ROTATE_S, connectors paused for want of power get their turn:
        the ones charging go to the back of the queue."""
        if now - self._rotated_at < ROTATE_S:
            return
        self._rotated_at = now
        paused = {c for c in self.turns if self.allocation.get(c) == 0}
        roots = {self.groups.enclosing(g)[-1] for c in paused if (g := self.groups.group_of(*c))}
        for connector in list(self.turns):
            group = self.groups.group_of(*connector)
            if group is None or self.groups.enclosing(group)[-1] not in roots:
                continue
            if connector not in paused:
                self.turns[connector] = now
        for root in roots:
            log.info("group %s: paused and charging connectors swap turns", root)
            self._dirty.add(root)

    # ---- one rebalance ------------------------------------------------

    def _subtree(self, root: str) -> list[str]:
        return [g for g in self.groups.by_name if self.groups.enclosing(g)[-1] == root]

    async def _rebalance(self, root: str) -> None:
        try:
            await self._rebalance_tree(root)
        except Exception:
            log.exception("group %s: the rebalance failed; tried again in %d s", root, RETRY_S)
            self._retry_at[root] = time.monotonic() + RETRY_S
        finally:
            self._busy.discard(root)

    async def _rebalance_tree(self, root: str) -> None:
        tree = self._subtree(root)
        limits = {g: self.limits[g] for g in tree}
        charging: dict[str, list[Charging]] = {}
        stations: dict[Connector, Station] = {}
        for connector, turn in self.turns.items():
            group = self.groups.group_of(*connector)
            if group not in limits:
                continue
            station = self._station_of(connector[0])
            if station is None:
                # Counted at what it last accepted: the others share the rest.
                kept = self.accepted.get(connector, self._default_w(connector, None))
                for enclosing in self.groups.enclosing(group):
                    limits[enclosing] = max(0.0, limits[enclosing] - kept)
                continue
            stations[connector] = station
            phases = self._phases(station, connector[1])
            charging.setdefault(group, []).append(
                Charging(connector, phases, turn, self._cap(connector))
            )
        allocation = allocate(self.groups, limits, charging, [root])
        for connector in [c for c in self.allocation if self.groups.group_of(*c) in limits]:
            if connector not in allocation:
                del self.allocation[connector]
        self.allocation.update(allocation)
        held: dict[Connector, float] = {}
        for connector in allocation:
            current = self.accepted.get(connector)
            held[connector] = (
                current if current is not None else self._default_w(connector, stations[connector])
            )
        # A session that just started draws on its default profile. Where that
        # puts a group over its limit, it is paused first, before anything else
        # is sent; its share follows as an increase.
        fresh = [c for c in allocation if c not in self.accepted]
        failed: list[Connector] = []
        if fresh and self._over(tree, limits, held):
            failed = await self._send(stations, [(c, 0.0) for c in fresh])
            for connector in fresh:
                if connector in self.accepted:
                    held[connector] = self.accepted[connector]
        decreases: list[tuple[Connector, float]] = []
        increases: list[tuple[Connector, float]] = []
        for connector, share in allocation.items():
            current = self.accepted.get(connector)
            if share < held[connector] or (current is None and share == 0):
                decreases.append((connector, share))
            elif share > held[connector] and (
                current is None
                or self._worth_raising(stations[connector], connector, current, share)
            ):
                increases.append((connector, share))
        failed += await self._send(stations, decreases)
        if failed:
            log.warning(
                "group %s: %d station(s) did not accept a decrease (%s); they count at their "
                "old limit, no increase is sent, and it is tried again within %d s",
                root,
                len(failed),
                ", ".join(f"{cp_id}:{c}" for cp_id, c in failed),
                RETRY_S,
            )
            self._retry_at[root] = time.monotonic() + RETRY_S
        else:
            await self._send(stations, increases)
        for group in tree:
            self._publish_group(group)

    def _over(
        self, tree: list[str], limits: dict[str, float], held: dict[Connector, float]
    ) -> bool:
        """Whether what the connectors hold puts any group of the tree over its
        limit (less what disconnected stations hold)."""
        totals = dict.fromkeys(tree, 0.0)
        for connector, watts in held.items():
            group = self.groups.group_of(*connector)
            assert group is not None
            for enclosing in self.groups.enclosing(group):
                totals[enclosing] += watts
        return any(totals[g] > limits[g] for g in tree)

    def _worth_raising(
        self, station: Station, connector: Connector, current: float, share: float
    ) -> bool:
        """An increase of at least 1 A on its phases, or the end of a pause."""
        if current == 0:
            return share > 0
        group = self.groups.group_of(*connector)
        assert group is not None
        one_amp = self.groups.by_name[group].voltage * self._phases(station, connector[1])
        return share - current >= one_amp

    async def _send(
        self, stations: dict[Connector, Station], changes: list[tuple[Connector, float]]
    ) -> list[Connector]:
        """Send each share as the session's TxProfile, all at once; the ones not accepted."""
        if not changes:
            return []
        results = await asyncio.gather(
            *(
                self.charging.enforce(stations[connector], connector[1], share, cp.TX_PROFILE)
                for connector, share in changes
            ),
            return_exceptions=True,
        )
        failed = []
        for (connector, share), accepted in zip(changes, results, strict=True):
            if accepted is True:
                if connector in self.turns:
                    self.accepted[connector] = share
            else:
                failed.append(connector)
        return failed

    def _cap(self, connector: Connector) -> float | None:
        """The user's own limit on the connector or its station, and power left unused."""
        caps = []
        for key in (connector[1], 0):
            entry = self.charging.store.get(connector[0], key)
            if entry is not None and entry[0] is not None:
                caps.append(entry[0])
        underuse = self._underuse.get(connector)
        if underuse is not None and underuse.cap_w is not None:
            caps.append(underuse.cap_w)
        return min(caps) if caps else None

    def _phases(self, station: Station, connector_id: int) -> int:
        measured = station.electrical.get(connector_id).phases
        return measured if measured is not None else self.settings.ocpp_phases

    # ---- default profiles ---------------------------------------------

    def _default_w(self, connector: Connector, station: Station | None) -> float:
        """What a session that starts unseen may draw: within every enclosing
        group's max_w over its member connectors, or its minimum if larger."""
        group = self.groups.group_of(*connector)
        assert group is not None
        phases = self._phases(station, connector[1]) if station is not None else 3
        known = {}
        for cp_id, number in self.groups.named:
            if number == 0:
                held = self._station_of(cp_id)
                known[cp_id] = max(1, len([c for c in held.connectors if c])) if held else 1
        bounds = []
        for enclosing in self.groups.enclosing(group):
            entry = self.groups.by_name[enclosing]
            count = max(1, self.groups.members_count(enclosing, known))
            bounds.append(max(entry.max_w / count, entry.min_w(phases)))
        return min(bounds)

    async def _defaults(self, station: Station) -> None:
        await station.learned.wait()
        connectors = {c for c in station.connectors if c} | {
            c for cp_id, c in self.groups.named if cp_id == station.id and c
        }
        for connector_id in sorted(connectors):
            await self._default(station, connector_id)
        for connector in self.turns:
            if connector[0] == station.id:
                self.accepted.pop(connector, None)  # sent again: it may have lost it
                group = self.groups.group_of(*connector)
                if group is not None:
                    self._mark(group)

    async def _default(self, station: Station, connector_id: int) -> None:
        if self.groups.group_of(station.id, connector_id) is None:
            return
        default = self._default_w((station.id, connector_id), station)
        if await self.charging.enforce(station, connector_id, default, cp.TX_DEFAULT_PROFILE):
            log.info(
                "%s: default profile of %s W on connector %d (site budgets)",
                station.id,
                dp.tidy_number(default),
                connector_id,
            )

    # ---- the groups' keys ---------------------------------------------

    def _publish_group(self, name: str) -> None:
        now = now_ms()
        tree = set(self._subtree_of(name))
        members = [(c, w) for c, w in self.allocation.items() if self.groups.group_of(*c) in tree]
        measured = 0.0
        for (cp_id, number), group in self.groups.named.items():
            if group not in tree:
                continue
            numbers = [number] if number else self._connectors_of(cp_id)
            for connector_id in numbers:
                value = self._latest(power_key(cp_id, connector_id))
                if isinstance(value, int | float) and not isinstance(value, bool):
                    measured += value
        points = [
            dp.Datapoint(
                group_key(name, "GroupLimit", "W"), dp.tidy_number(self.limits[name]), now
            ),
            dp.Datapoint(group_key(name, "MeasuredPower", "W"), dp.tidy_number(measured), now),
            dp.Datapoint(
                group_key(name, "Allocated", "W"),
                dp.tidy_number(sum(w for _, w in members)),
                now,
            ),
        ]
        for (cp_id, connector_id), share in members:
            if self.groups.group_of(cp_id, connector_id) == name:
                key = group_key(name, "Allocation", cp_id, str(connector_id), "W")
                points.append(dp.Datapoint(key, dp.tidy_number(share), now))
        self._publish(points)

    def _subtree_of(self, name: str) -> list[str]:
        return [g for g in self.groups.by_name if name in self.groups.enclosing(g)]

    def _connectors_of(self, cp_id: str) -> list[int]:
        station = self._station_of(cp_id)
        return sorted(c for c in station.connectors if c) if station is not None else []
