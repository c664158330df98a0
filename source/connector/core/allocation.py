"""Pure: a group's limit shared among its charging connectors (README "Sharing a supply").

- A charging connector gets 0 or at least its minimum (min_a on each of its
  phases at the group's voltage); its own limit, if lower, is its minimum.
- Above the minimum the limit is shared equally ("water-filling"): a
  connector capped lower (its own limit, a nested group, power it leaves
  unused) gets its cap, and what it leaves goes to the others.
- When the limit cannot give everyone their minimum, the connectors whose
  turn began last get 0 (paused; the caller rotates turns).
- A nested group is one member of the group around it: capped at its own
  limit and at what its connectors can take, its minimum that of its
  cheapest connector; what it gets it shares among its own the same way.
- A connector whose station can switch it from three phases to one needs
  only the one-phase minimum: below the three-phase one it charges on one
  phase (phases_used) instead of pausing.
- Allocations are rounded down to 0.1 A on the phases used, what stations
  accept, so the sum never exceeds the limit.

Cost: O(n log n) in the group's charging connectors, and never more per
connector whatever the numbers a station or an energy manager sends.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from connector.core.groups import Connector, Group, Groups

_INF = math.inf
_SEARCH_STEPS = 60  # bisection steps: far below 1 mW at any real limit


@dataclass(frozen=True)
class Charging:
    """A member connector with a session running, as the allocation sees it."""

    connector: Connector
    phases: int
    # When its turn began (its session's start, moved on by rotation):
    # the earliest keep charging when not everyone can.
    priority: float
    # Its own limit, and any reduction for power it leaves unused; None: none.
    cap_w: float | None = None
    # Its station can switch it from three phases to one: below the
    # three-phase minimum it charges on one phase instead of pausing.
    one_phase: bool = False

    def min_w(self, group: Group) -> float:
        """The least it is given when charging: its minimum, or its cap if lower."""
        phases = 1 if self.one_phase else self.phases
        return min(group.min_w(phases), self.cap)

    @property
    def cap(self) -> float:
        return _INF if self.cap_w is None else max(0.0, self.cap_w)


def phases_used(group: Group, member: Charging, share: float) -> int:
    """One phase for a share below the three-phase minimum, where it can switch."""
    if member.one_phase and 0 < share < group.min_w(member.phases):
        return 1
    return member.phases


@dataclass(frozen=True)
class _Item:
    min_w: float
    cap_w: float
    priority: float
    connector: Charging | None = None
    group: str | None = None


def allocate(
    groups: Groups,
    limits: Mapping[str, float],
    charging: Mapping[str, Sequence[Charging]],
    roots: Sequence[str] | None = None,
) -> dict[Connector, float]:
    """Each charging connector's allocation in W (0: paused).

    `limits`: each group's limit in force; `charging`: each group's charging
    connectors among those it names directly; `roots`: the trees to share
    (all by default)."""
    result: dict[Connector, float] = {}
    for root in groups.roots if roots is None else roots:
        _share(groups, root, limits[root], limits, charging, result)
    return result


def _share(
    groups: Groups,
    name: str,
    budget: float,
    limits: Mapping[str, float],
    charging: Mapping[str, Sequence[Charging]],
    result: dict[Connector, float],
) -> None:
    group = groups.by_name[name]
    budget = max(0.0, min(budget, limits[name]))
    items: list[_Item] = []
    for member in charging.get(name, ()):
        items.append(_Item(member.min_w(group), member.cap, member.priority, member))
    for nested in group.groups:
        item = _group_item(groups, nested, limits, charging)
        if item is not None:
            items.append(item)
        else:
            _share(groups, nested, 0.0, limits, charging, result)  # nobody charges there
    given = _water_fill(items, budget)
    for item, amount in zip(items, given, strict=True):
        if item.connector is not None:
            phases = phases_used(group, item.connector, amount)
            result[item.connector.connector] = _round_down(amount, 0.1 * group.voltage * phases)
        else:
            assert item.group is not None
            _share(groups, item.group, amount, limits, charging, result)


def _group_item(
    groups: Groups,
    name: str,
    limits: Mapping[str, float],
    charging: Mapping[str, Sequence[Charging]],
) -> _Item | None:
    """A nested group as one member; None when nobody charges in it."""
    group = groups.by_name[name]
    mins: list[float] = []
    caps = 0.0
    priority = _INF
    for member in charging.get(name, ()):
        mins.append(member.min_w(group))
        caps += member.cap
        priority = min(priority, member.priority)
    for nested in group.groups:
        item = _group_item(groups, nested, limits, charging)
        if item is not None:
            mins.append(item.min_w)
            caps += item.cap_w
            priority = min(priority, item.priority)
    cap = min(caps, limits[name])
    if not mins or min(mins) > cap + 1e-9:
        return None  # nobody charges there, or its limit gives nobody a minimum
    return _Item(min(mins), cap, priority, group=name)


def _water_fill(items: list[_Item], budget: float) -> list[float]:
    """Minimums first, by turn; then an equal level, each clamped to its cap."""
    order = sorted(range(len(items)), key=lambda i: items[i].priority)
    given = [0.0] * len(items)
    included: list[int] = []
    spent = 0.0
    for index in order:
        need = items[index].min_w
        if spent + need > budget + 1e-9:
            break  # the latest turns are paused
        included.append(index)
        spent += need
    if not included:
        return given
    low = [items[i].min_w for i in included]
    high = [max(items[i].cap_w, items[i].min_w) for i in included]
    if sum(high) <= budget:
        for index, amount in zip(included, high, strict=True):
            given[index] = amount
        return given

    def total(level: float) -> float:
        return sum(min(max(level, lo), hi) for lo, hi in zip(low, high, strict=True))

    bottom, top = 0.0, budget
    for _ in range(_SEARCH_STEPS):
        middle = (bottom + top) / 2
        if total(middle) <= budget:
            bottom = middle
        else:
            top = middle
    for index, lo, hi in zip(included, low, high, strict=True):
        given[index] = min(max(bottom, lo), hi)
    return given


def _round_down(amount: float, step: float) -> float:
    if amount <= 0 or not math.isfinite(amount):
        return 0.0
    # Down to the step, then down to the mW: never above what was given.
    stepped = min(math.floor(amount / step + 1e-9) * step, amount)
    return math.floor(stepped * 1000) / 1000
