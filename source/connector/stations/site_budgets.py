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

With several instances (mqtt/groups_link.py) the leader computes every group
and the instance that holds a station applies its part: each holder reports
its member stations, and the leader asks it for each profile and waits for
the answer. A new leader has every report (they are retained) and rebalances
at once, so a group is computed again within seconds of its leader's death.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, Protocol

from connector.core import charging_profiles as cp
from connector.core import datapoints as dp
from connector.core.allocation import Charging, allocate, phases_used
from connector.core.commands import InvalidCommand, parse_power_limit
from connector.core.groups import LIMIT_ACTUATOR, Connector, Groups, group_key
from connector.core.underuse import Underuse
from connector.operations.status import Group
from connector.settings import Settings
from connector.stations.charging_control import ChargingControl, Shared
from connector.stations.station import Station, now_ms

if TYPE_CHECKING:  # the link is a face of the MQTT side, handed in by the bridge
    from connector.mqtt.groups_link import GroupsLink

log = logging.getLogger(__name__)

REBALANCE_S = 1.0
# Connectors of one member station that site budgets look after (it reports
# them itself: bounded, like every number a station chooses).
MAX_MEMBER_CONNECTORS = 32
# Requests from the leader being applied at once, at most (one per member
# connector is the most a rebalance asks).
MAX_APPLYING = 10_000
# s the leader waits for another instance to apply a profile.
REMOTE_TIMEOUT_S = 15.0
# s between reports of measured power alone (the group's MeasuredPower sensor).
MEASURED_REPORT_S = 10.0
RETRY_S = 30.0
SESSION_SETTLE_S = 0.3
PHASE_HOLD_S = 5 * 60.0
ONE_PHASE_MAX_A = 32.0
ROTATE_S = 15 * 60.0
STATE_GROUP_LIMIT = "group_limits/"


def power_key(cp_id: str, connector_id: int) -> str:
    return dp.make_key(cp_id, "MeterValues", connector_id, "Power.Active.Import", "W")


class Cluster(Protocol):
    instance: int

    @property
    def is_leader(self) -> bool: ...

    @property
    def live(self) -> set[int]: ...


class Handle:
    """Where a member station is served: here (its Station), or by another
    instance (its report). What the rebalance needs of it, either way."""

    def __init__(
        self, site: SiteBudgets, cp_id: str, station: Station | None, report: dict[str, Any]
    ) -> None:
        self.site = site
        self.cp_id = cp_id
        self.station = station
        self.report = report

    def phases(self, connector_id: int) -> int:
        if self.station is not None:
            return self.site._phases(self.station, connector_id)
        entry = self.report["connectors"].get(str(connector_id)) or {}
        return int(entry.get("phases") or self.site.settings.ocpp_phases)

    @property
    def one_phase(self) -> bool:
        if self.station is not None:
            return self.station.capabilities.switches_to_one_phase
        return bool(self.report["one_phase"])

    @property
    def learned(self) -> bool:
        if self.station is not None:
            return self.station.learned.is_set()
        return bool(self.report["learned"])

    @property
    def connectors(self) -> list[int]:
        """Its connectors, at most MAX_MEMBER_CONNECTORS: a station chooses them."""
        if self.station is not None:
            numbers = sorted(c for c in self.station.connectors if c)
        else:
            numbers = sorted(int(c) for c in self.report["connectors"])
        return numbers[:MAX_MEMBER_CONNECTORS]

    async def send(self, connector_id: int, watts: float, purpose: str, phases: int | None) -> bool:
        if self.station is not None:
            voltage = self.site.voltage_of((self.cp_id, connector_id))
            return await self.site.charging.enforce(
                self.station, connector_id, watts, purpose, phases, voltage
            )
        return await self.site.remote_send(
            int(self.report["instance"]), self.cp_id, connector_id, watts, purpose, phases
        )


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
        # Each idle member's default profile the station accepted (W).
        self.defaults: dict[Connector, float] = {}
        # Where a station can switch phases: the phases last sent, and when
        # they last changed.
        self.phases_sent: dict[Connector, int] = {}
        self.phase_changed_at: dict[Connector, float] = {}
        self._underuse: dict[Connector, Underuse] = {}
        self._dirty: set[str] = set()
        self._last: dict[str, float] = {}
        self._retry_at: dict[str, float] = {}
        self._rotated_at = time.monotonic()
        self._busy: set[str] = set()
        self._wake = asyncio.Event()
        self._tasks: set[asyncio.Task[None]] = set()
        # Several instances: the cluster, the link, and the other instances'
        # reports of the member stations they hold.
        self.cluster: Cluster | None = None
        self.link: GroupsLink | None = None
        self.remote: dict[str, dict[str, Any]] = {}
        self._leading = False
        self._requests = 0
        self._waiting: dict[str, asyncio.Future[bool]] = {}
        self._measured_reported: dict[str, tuple[float, float]] = {}
        # The leader's rotation: when a charging connector went to the back.
        self._moved: dict[Connector, float] = {}
        # Other instances' stations: the caps for power their cars leave unused.
        self._remote_caps: dict[Connector, float | None] = {}
        # Sessions whose station refused a decrease -> (W it counts at, the
        # share to send again); retried at every rebalance.
        self._refused: dict[Connector, tuple[float, float]] = {}
        # Connectors of each whole-station member, as last seen (its default's divisor).
        self._counts: dict[str, int] = {}

    def join(self, cluster: Cluster, link: GroupsLink) -> None:
        """Several instances: the leader computes, holders apply (groups_link.py)."""
        self.cluster = cluster
        self.link = link

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
            # Wall-clock: the leader compares turns of every instance's stations.
            self.turns[connector] = time.time()
            self._report(station.id)
            # After the station has its answer (a 1.6 transaction id) first.
            asyncio.get_running_loop().call_later(SESSION_SETTLE_S, self._mark, group)
        elif not running and connector in self.turns:
            del self.turns[connector]
            if station.transactions.running(connector_id) is None:
                # Ended: its TxProfile went with it. (A 2.x session gone Idle
                # keeps its TxProfile, and it is in force again when it resumes.)
                self.accepted.pop(connector, None)
                self.phases_sent.pop(connector, None)  # a new one starts as the car wants
            self._underuse.pop(connector, None)
            self._moved.pop(connector, None)
            self._refused.pop(connector, None)
            self._report(station.id)
            self._mark(group)

    def connected(self, station: Station) -> None:
        """Its members get their default profiles once it is learned, and the
        allocation is sent again (a station may have lost its profiles)."""
        if station.id in self._groups_of:
            station.spawn(self._learned(station))

    def booted(self, station: Station) -> None:
        """A station that boots ended its sessions (it reports them as it can),
        and its profiles with them."""
        for connector in [c for c in self.turns if c[0] == station.id]:
            self.session(station, connector[1], False)
        for connector in [c for c in (*self.accepted, *self.phases_sent) if c[0] == station.id]:
            self.accepted.pop(connector, None)
            self.phases_sent.pop(connector, None)

    def profiles_lost(self, station: Station) -> None:
        """The station's own backend changed its profiles: its defaults and
        shares are sent again."""
        if station.id in self._groups_of:
            station.spawn(self._learned(station))

    def connector_seen(self, station: Station, connector_id: int) -> None:
        group = self.groups.group_of(station.id, connector_id)
        if group is not None:
            if station.learned.is_set():
                self._report(station.id)
            self._mark(group)

    def disconnected(self, station: Station) -> None:
        self._report(station.id, connected=False)
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

    def leads(self) -> bool:
        """One instance, or the leader of several: it computes the groups."""
        return self.cluster is None or self.cluster.is_leader

    async def run(self) -> None:
        while True:
            try:
                await self._pass()
            except Exception:  # never the end of site budgets
                log.exception("site budgets: a pass failed; going on")
                await asyncio.sleep(REBALANCE_S)

    async def _pass(self) -> None:
        """One turn of the loop: wait for work (or a second), then do it."""
        try:
            await asyncio.wait_for(self._wake.wait(), REBALANCE_S)
        except TimeoutError:
            pass
        self._wake.clear()
        now = time.monotonic()
        self._observe_power(now)
        if not self.leads():
            self._leading = False
            self._dirty.clear()
            return
        if not self._leading:
            # Leading from now on (at start, or its leader died): every
            # group is computed again, from the reports every holder left.
            self._leading = True
            for name in self.groups.by_name:
                self._mark(name)
                self._publish_group(name)
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
        """Power a car leaves unused goes to the others (core/underuse.py): each
        instance watches the stations it holds, and reports a change."""
        for connector in list(self.turns):
            share = self.accepted.get(connector)
            measured = self._latest(power_key(*connector))
            if share is None or isinstance(measured, bool):
                continue
            if not isinstance(measured, int | float):
                continue
            group = self.groups.group_of(*connector)
            station = self._station_of(connector[0])
            if group is None or station is None:
                continue
            minimum = self.groups.by_name[group].min_w(self._phases(station, connector[1]))
            state = self._underuse.setdefault(connector, Underuse())
            if state.seen(float(measured), share, minimum, now):
                self._report(connector[0])
                self._mark(group)
            elif self.cluster is not None:
                last = self._measured_reported.get(connector[0])
                if last is None or (now - last[0] >= MEASURED_REPORT_S and last[1] != measured):
                    self._measured_reported[connector[0]] = (now, float(measured))
                    self._report(connector[0])

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
                self._moved[connector] = time.time()
        for root in roots:
            log.info("group %s: paused and charging connectors swap turns", root)
            self._dirty.add(root)

    # ---- one rebalance ------------------------------------------------

    async def _rebalance(self, root: str) -> None:
        try:
            await self._rebalance_tree(root)
        except Exception:
            log.exception("group %s: the rebalance failed; tried again in %d s", root, RETRY_S)
            self._retry_at[root] = time.monotonic() + RETRY_S
        finally:
            self._busy.discard(root)

    async def _rebalance_tree(self, root: str) -> None:
        tree = self._subtree_of(root)
        self._count_connectors()
        limits = {g: self.limits[g] for g in tree}
        members: dict[Connector, Charging] = {}
        charging: dict[str, list[Charging]] = {}
        stations: dict[Connector, Handle] = {}
        retries: list[tuple[Connector, float, int | None]] = []
        for connector, turn in list(self.turns.items()):
            group = self.groups.group_of(*connector)
            if group not in limits:
                continue
            station = self._handle(connector[0])
            refused = self._refused.get(connector)
            if station is None or refused is not None:
                # Counted at what it last accepted (a station away, or one that
                # refused its decrease): the others share the rest.
                if refused is not None:
                    kept = refused[0]
                else:
                    kept = self.accepted.get(connector, self._default_w(connector, None))
                for enclosing in self.groups.enclosing(group):
                    limits[enclosing] = max(0.0, limits[enclosing] - kept)
                if station is not None and refused is not None:
                    stations[connector] = station
                    retries.append((connector, refused[1], None))  # the decrease, again
                continue
            stations[connector] = station
            # A connector we switched to one phase is a three-phase one still.
            switched = self.phases_sent.get(connector) == 1
            phases = 3 if switched else station.phases(connector[1])
            member = Charging(
                connector,
                phases,
                max(turn, self._moved.get(connector, 0.0)),
                self._cap(connector),
                one_phase=phases == 3 and station.one_phase,
            )
            members[connector] = member
            charging.setdefault(group, []).append(member)
        allocation = allocate(self.groups, limits, charging, [root])
        plan = self._with_phases(allocation, members)
        for connector in [c for c in self.allocation if self.groups.group_of(*c) in limits]:
            if connector not in plan:
                del self.allocation[connector]
        self.allocation.update({c: share for c, (share, _) in plan.items()})
        # Members without a session: their default profile where it fits beside
        # the shares, else 0 until it does (a car plugged in waits for its share).
        idle = self._idle_members(tree)
        defaults = self._idle_defaults(tree, limits, plan, idle)
        # In force now: the session's share, else its default profile; a
        # default we did not see accepted may be anything (the station's maximum).
        held = {c: self.accepted.get(c, self.defaults.get(c, math.inf)) for c in plan}
        # A session that just started draws on its default profile. Where that
        # puts a group over its limit, it is paused first; its share follows.
        fresh = [c for c in plan if c not in self.accepted]
        failed: list[Connector] = []
        if fresh and self._over(tree, limits, held):
            failed = await self._send(stations, [(c, 0.0, None) for c in fresh])
            for connector in fresh:
                if connector in self.accepted:
                    held[connector] = self.accepted[connector]
        decreases: list[tuple[Connector, float, int | None]] = []
        increases: list[tuple[Connector, float, int | None]] = []
        for connector, (share, switch_to) in plan.items():
            current = self.accepted.get(connector)
            switching = switch_to is not None and switch_to != self.phases_sent.get(connector, 3)
            if share < held[connector] or (current is None and share == 0):
                decreases.append((connector, share, switch_to))
            elif current is None or (
                share > held[connector]
                and self._worth_raising(stations[connector], connector, current, share)
            ):
                # A new session always gets its share as its own profile.
                increases.append((connector, share, switch_to))
            elif switching and current is not None:
                decreases.append((connector, min(share, current), switch_to))
        lower_defaults = [(c, w) for c, w in defaults.items() if w < self.defaults.get(c, math.inf)]
        failed += await self._send(stations, retries + decreases)
        failed += await self._send_defaults(idle, lower_defaults)
        if failed:
            log.warning(
                "group %s: %d connector(s) did not accept a decrease (%s); they count at "
                "their old limit, no increase is sent, and it is tried again within %d s",
                root,
                len(failed),
                ", ".join(f"{cp_id}:{c}" for cp_id, c in failed),
                RETRY_S,
            )
            self._retry_at[root] = time.monotonic() + RETRY_S
        else:
            await self._send(stations, increases)
            raise_defaults = [(c, w) for c, w in defaults.items() if w > self.defaults.get(c, -1)]
            await self._send_defaults(idle, raise_defaults)
        for group in tree:
            self._publish_group(group)

    def _with_phases(
        self, allocation: dict[Connector, float], members: dict[Connector, Charging]
    ) -> dict[Connector, tuple[float, int | None]]:
        """Each share with the phases to send (None: the station cannot switch).
        A connector changes its phases at most once every PHASE_HOLD_S: until
        then a share that needs one phase is a pause, and one that could go back
        to three stays on one (at most ONE_PHASE_MAX_A)."""
        now = time.monotonic()
        plan: dict[Connector, tuple[float, int | None]] = {}
        for connector, share in allocation.items():
            member = members[connector]
            if not member.one_phase:
                plan[connector] = (share, None)
                continue
            group = self.groups.by_name[self.groups.group_of(*connector) or ""]
            want = phases_used(group, member, share)
            have = self.phases_sent.get(connector, member.phases)
            held_back = now - self.phase_changed_at.get(connector, -math.inf) < PHASE_HOLD_S
            if want != have and held_back:
                if want == 1:
                    share, want = 0.0, have
                else:
                    most = ONE_PHASE_MAX_A * group.voltage
                    share = min(share, most)
                    want = 1
            plan[connector] = (share, want)
        return plan

    def _idle_members(self, tree: list[str]) -> dict[Connector, tuple[float, Handle]]:
        """Member connectors of connected stations without a session, with
        their default (what one that starts unseen may draw)."""
        idle: dict[Connector, tuple[float, Handle]] = {}
        for (cp_id, number), group in self.groups.named.items():
            if group not in tree:
                continue
            station = self._handle(cp_id)
            if station is None or not station.learned:
                continue
            numbers = [number] if number else station.connectors
            for connector_id in numbers:
                connector = (cp_id, connector_id)
                if connector in self.turns:
                    continue
                if self.groups.group_of(cp_id, connector_id) == group:
                    idle[connector] = (self._default_w(connector, station), station)
        return idle

    def _idle_defaults(
        self,
        tree: list[str],
        limits: dict[str, float],
        plan: dict[Connector, tuple[float, int | None]],
        idle: dict[Connector, tuple[float, Handle]],
    ) -> dict[Connector, float]:
        """Each idle member's default, in a fixed order, while it fits in every
        enclosing group beside the shares and the defaults given before it; 0 after."""
        # The shares; and the defaults of members we cannot reach now (a
        # station away, or not learned yet): they keep what they accepted.
        held = [(c, share) for c, (share, _) in plan.items()]
        held += [
            (c, watts)
            for c, watts in self.defaults.items()
            if c not in idle and c not in self.turns and self.groups.group_of(*c) in tree
        ]
        totals = self._totals(tree, held)
        defaults: dict[Connector, float] = {}
        for connector in sorted(idle):
            watts = idle[connector][0]
            group = self.groups.group_of(*connector)
            assert group is not None
            chain = self.groups.enclosing(group)
            if all(totals[g] + watts <= limits[g] + 1e-6 for g in chain):
                defaults[connector] = watts
                for enclosing in chain:
                    totals[enclosing] += watts
            else:
                defaults[connector] = 0.0
        return defaults

    def _over(
        self, tree: list[str], limits: dict[str, float], held: dict[Connector, float]
    ) -> bool:
        """Whether what the connectors hold puts any group of the tree over its
        limit (less what disconnected stations hold)."""
        totals = self._totals(tree, held.items())
        return any(totals[g] > limits[g] for g in tree)

    def _totals(
        self, tree: list[str], amounts: Iterable[tuple[Connector, float]]
    ) -> dict[str, float]:
        """Each group of the tree: the sum of the amounts of its connectors,
        those of its nested groups included."""
        totals = dict.fromkeys(tree, 0.0)
        for connector, watts in amounts:
            group = self.groups.group_of(*connector)
            assert group is not None
            for enclosing in self.groups.enclosing(group):
                totals[enclosing] += watts
        return totals

    def _worth_raising(
        self, station: Handle, connector: Connector, current: float, share: float
    ) -> bool:
        """An increase of at least 1 A on its phases, or the end of a pause."""
        if current == 0:
            return share > 0
        group = self.groups.group_of(*connector)
        assert group is not None
        phases = self.phases_sent.get(connector, station.phases(connector[1]))
        one_amp = self.groups.by_name[group].voltage * phases
        return share - current >= one_amp

    async def _send(
        self,
        stations: dict[Connector, Handle],
        changes: list[tuple[Connector, float, int | None]],
    ) -> list[Connector]:
        """Each share as the session's TxProfile, all at once; the ones not accepted."""
        if not changes:
            return []
        results = await asyncio.gather(
            *(
                stations[connector].send(connector[1], share, cp.TX_PROFILE, phases)
                for connector, share, phases in changes
            ),
            return_exceptions=True,
        )
        failed = []
        now = time.monotonic()
        for (connector, share, phases), accepted in zip(changes, results, strict=True):
            if accepted is not True:
                failed.append(connector)
                if connector in self.turns and connector not in self._refused:
                    # Counted at its old limit until it accepts (a default never
                    # seen accepted counts at the default it should hold).
                    held = self.accepted.get(connector)
                    if held is None:
                        held = self.defaults.get(connector, self._default_w(connector, None))
                    self._refused[connector] = (max(held, share), share)
                continue
            if self._refused.pop(connector, None) is not None:
                group = self.groups.group_of(*connector)
                if group is not None:
                    self._mark(group)  # it gave back: the others may have it
            if phases is not None and phases != self.phases_sent.get(connector, 3):
                # Three until switched.
                self.phase_changed_at[connector] = now
                log.info("%s: connector %d on %d phase(s)", connector[0], connector[1], phases)
            self._took(connector, share, cp.TX_PROFILE, phases)
        return failed

    def _took(self, connector: Connector, watts: float, purpose: str, phases: int | None) -> None:
        """A station accepted a profile: what it holds now."""
        if purpose != cp.TX_PROFILE:
            self.defaults[connector] = watts
            return
        if connector in self.turns:
            self.accepted[connector] = watts
        if phases is not None:
            self.phases_sent[connector] = int(phases)

    async def _send_defaults(
        self,
        idle: dict[Connector, tuple[float, Handle]],
        changes: list[tuple[Connector, float]],
    ) -> list[Connector]:
        """Each idle member's default profile, all at once; the ones not accepted."""
        if not changes:
            return []
        results = await asyncio.gather(
            *(idle[c][1].send(c[1], watts, cp.TX_DEFAULT_PROFILE, None) for c, watts in changes),
            return_exceptions=True,
        )
        failed = []
        for (connector, watts), accepted in zip(changes, results, strict=True):
            if accepted is True:
                self._took(connector, watts, cp.TX_DEFAULT_PROFILE, None)
            else:
                failed.append(connector)
        return failed

    def voltage_of(self, connector: Connector) -> float | None:
        """The voltage of the connector's group: its shares were rounded at it."""
        group = self.groups.group_of(*connector)
        return self.groups.by_name[group].voltage if group is not None else None

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
        remote = self._remote_caps.get(connector)
        if remote is not None and self._station_of(connector[0]) is None:
            caps.append(remote)
        return min(caps) if caps else None

    def _phases(self, station: Station, connector_id: int) -> int:
        measured = station.electrical.get(connector_id).phases
        return measured if measured is not None else self.settings.ocpp_phases

    # ---- default profiles ---------------------------------------------

    def _count_connectors(self) -> None:
        """Once a rebalance: each whole-station member's connectors, as seen
        now or last (a station away keeps its count, so others' defaults stay)."""
        for cp_id, number in self.groups.named:
            if number == 0:
                held = self._handle(cp_id)
                if held is not None and held.connectors:
                    self._counts[cp_id] = len(held.connectors)
                self._counts.setdefault(cp_id, 1)

    def _default_w(self, connector: Connector, station: Handle | None) -> float:
        """What a session that starts unseen may draw: within every enclosing
        group's max_w over its member connectors, or its minimum if larger."""
        group = self.groups.group_of(*connector)
        assert group is not None
        phases = station.phases(connector[1]) if station is not None else 3
        known = self._counts
        bounds = []
        for enclosing in self.groups.enclosing(group):
            entry = self.groups.by_name[enclosing]
            count = max(1, self.groups.members_count(enclosing, known))
            bounds.append(max(entry.max_w / count, entry.min_w(phases)))
        return min(bounds)

    async def _learned(self, station: Station) -> None:
        """Once learned, its defaults and shares are sent again (it may have lost them)."""
        await station.learned.wait()
        for connector in list(self.defaults):
            if connector[0] == station.id:
                del self.defaults[connector]
        for connector in list(self.accepted):
            if connector[0] == station.id:
                del self.accepted[connector]
        for connector in list(self.phases_sent):
            if connector[0] == station.id:
                del self.phases_sent[connector]
        self._report(station.id)  # several instances: the leader learns of it
        for group in self._groups_of.get(station.id, ()):
            self._mark(group)

    # ---- the groups' keys ---------------------------------------------

    def _publish_group(self, name: str) -> None:
        now = now_ms()
        tree = set(self._subtree_of(name))
        members = [(c, w) for c, w in self.allocation.items() if self.groups.group_of(*c) in tree]
        measured = 0.0
        for (cp_id, number), group in self.groups.named.items():
            if group not in tree:
                continue
            measured += self._measured(cp_id, number)
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

    def overview(self) -> list[Group]:
        """Each group's limit, what is allocated and measured in its tree, and
        its own members' shares (the status page and metrics)."""
        direct: dict[str, list[tuple[str, int, float]]] = {}
        for (cp_id, number), watts in self.allocation.items():
            group = self.groups.group_of(cp_id, number)
            if group is not None:
                direct.setdefault(group, []).append((cp_id, number, watts))
        measured: dict[str, float] = {}
        for (cp_id, number), group in self.groups.named.items():
            measured[group] = measured.get(group, 0.0) + self._measured(cp_id, number)
        overview = []
        for name in self.groups.by_name:
            tree = self._subtree_of(name)
            overview.append(
                Group(
                    name,
                    self.limits.get(name),
                    dp.tidy_number(sum(w for g in tree for *_, w in direct.get(g, []))),
                    dp.tidy_number(sum(measured.get(g, 0.0) for g in tree)),
                    [
                        {"cp": cp_id, "connector": number, "w": dp.tidy_number(watts)}
                        for cp_id, number, watts in sorted(direct.get(name, []))
                    ],
                )
            )
        return overview

    def _subtree_of(self, name: str) -> list[str]:
        return [g for g in self.groups.by_name if name in self.groups.enclosing(g)]

    def _measured(self, cp_id: str, number: int) -> float:
        """The latest Power.Active.Import of a member (every connector of a
        whole station): ours, or as its holder last reported it."""
        total = 0.0
        station = self._station_of(cp_id)
        if station is not None:
            numbers = [number] if number else sorted(c for c in station.connectors if c)
            for connector_id in numbers:
                value = self._latest(power_key(cp_id, connector_id))
                if isinstance(value, int | float) and not isinstance(value, bool):
                    total += value
            return total
        report = self.remote.get(cp_id)
        if report is not None and report["connected"]:
            for key, entry in report["connectors"].items():
                if (not number or int(key) == number) and entry.get("measured") is not None:
                    total += entry["measured"]
        return total

    # ---- several instances (mqtt/groups_link.py) -----------------------

    def _handle(self, cp_id: str) -> Handle | None:
        """Where the station is served; None while it is connected nowhere."""
        station = self._station_of(cp_id)
        if station is not None:
            return Handle(self, cp_id, station, {})
        report = self.remote.get(cp_id)
        cluster = self.cluster
        if (
            report is not None
            and cluster is not None
            and report["connected"]
            and report["instance"] != cluster.instance
            and report["instance"] in cluster.live
        ):
            return Handle(self, cp_id, None, report)
        return None

    def _report(self, cp_id: str, connected: bool = True) -> None:
        """Several instances: what we know of a member station we hold."""
        if self.link is None or self.cluster is None or cp_id not in self._groups_of:
            return
        station = self._station_of(cp_id) if connected else None
        if connected and station is None:
            return
        latest = self.remote.get(cp_id)
        if not connected and latest is not None and latest["instance"] != self.cluster.instance:
            return  # another instance holds it now: its report stands
        connectors: dict[str, dict[str, Any]] = {}
        numbers = sorted(c for c in station.connectors if c) if station is not None else []
        numbers += [n for cp, n in self.groups.named if cp == cp_id and n and n not in numbers]
        for number in numbers:
            connector = (cp_id, number)
            if self.groups.group_of(cp_id, number) is None:
                continue
            measured = self._latest(power_key(cp_id, number)) if station is not None else None
            underuse = self._underuse.get(connector)
            connectors[str(number)] = {
                "phases": self._phases(station, number) if station is not None else 3,
                "turn": self.turns.get(connector),
                "accepted": self.accepted.get(connector),
                "default": self.defaults.get(connector),
                "sent_phases": self.phases_sent.get(connector),
                "cap": underuse.cap_w if underuse is not None else None,
                "measured": measured if isinstance(measured, int | float) else None,
            }
        report = {
            "instance": self.cluster.instance,
            "connected": connected,
            "learned": bool(station is not None and station.learned.is_set()),
            "one_phase": bool(station is not None and station.capabilities.switches_to_one_phase),
            "connectors": connectors,
        }
        self.remote[cp_id] = report
        self.link.report(cp_id, report)

    def on_report(self, cp_id: str, report: dict[str, Any] | None) -> None:
        """Another instance's report of a member station (retained: every
        instance has them all, so a new leader starts from them)."""
        if cp_id not in self._groups_of or self.cluster is None:
            return
        if report is None:
            self.remote.pop(cp_id, None)
            return
        if report["instance"] == self.cluster.instance or self._station_of(cp_id) is not None:
            return  # ours: we know better
        self.remote[cp_id] = report
        for connector in [
            c for c in (*self.turns, *self.accepted, *self.defaults) if c[0] == cp_id
        ]:
            self.turns.pop(connector, None)
            self.accepted.pop(connector, None)
            self.defaults.pop(connector, None)
            self.phases_sent.pop(connector, None)
        for key, entry in report["connectors"].items():
            connector = (cp_id, int(key))
            if entry.get("turn") is not None:
                self.turns[connector] = float(entry["turn"])
            if entry.get("accepted") is not None:
                self.accepted[connector] = float(entry["accepted"])
            if entry.get("default") is not None:
                self.defaults[connector] = float(entry["default"])
            if entry.get("sent_phases") is not None:
                self.phases_sent[connector] = int(entry["sent_phases"])
            self._remote_caps[connector] = entry.get("cap")
        for group in self._groups_of[cp_id]:
            self._mark(group)

    async def remote_send(
        self,
        instance: int,
        cp_id: str,
        connector_id: int,
        watts: float,
        purpose: str,
        phases: int | None,
    ) -> bool:
        """The leader asks the holder for one profile; True once it was accepted."""
        if self.link is None or self.cluster is None:
            return False
        self._requests += 1
        request_id = f"{self.cluster.instance}-{self._requests}"
        answer: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._waiting[request_id] = answer
        self.link.apply(
            instance,
            {
                "id": request_id,
                "from": self.cluster.instance,
                "cp": cp_id,
                "c": connector_id,
                "w": watts,
                "purpose": purpose,
                "phases": phases,
            },
        )
        try:
            return await asyncio.wait_for(answer, REMOTE_TIMEOUT_S)
        except TimeoutError:
            log.warning(
                "%s: instance %d did not answer for connector %d", cp_id, instance, connector_id
            )
            return False
        finally:
            self._waiting.pop(request_id, None)

    def on_result(self, request_id: str, ok: bool) -> None:
        answer = self._waiting.get(request_id)
        if answer is not None and not answer.done():
            answer.set_result(ok)

    def on_apply(self, message: dict[str, Any]) -> None:
        if len(self._tasks) > MAX_APPLYING:
            log.warning(
                "site budgets: too many requests at once; dropped one for %s", message["cp"]
            )
            return
        task = asyncio.create_task(self._apply(message))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _apply(self, message: dict[str, Any]) -> None:
        """A profile the leader asks of a station we hold, exactly once: only
        the holder is asked, and only the holder sends it."""
        assert self.link is not None
        cp_id, number = message["cp"], int(message["c"])
        station = self._station_of(cp_id)
        if station is None or self.groups.group_of(cp_id, number) is None:
            self._report(cp_id, connected=False)  # a report of ours was out of date
            self.link.result(int(message["from"]), message["id"], False)
            return
        watts, purpose, phases = float(message["w"]), message["purpose"], message["phases"]
        voltage = self.voltage_of((cp_id, number))
        ok = await self.charging.enforce(station, number, watts, purpose, phases, voltage)
        if ok:
            self._took((cp_id, number), watts, purpose, phases)
        self._report(cp_id)
        self.link.result(int(message["from"]), message["id"], ok)
