"""Pure: OCPP_GROUPS, the site budgets' document, read and checked (README "Sharing a supply").

`{"<group>": {"max_w": number, "members": [...], "min_a"?: 6, "voltage"?: 230}}`.
A member is a station id (all its connectors), `"<cp id>:<connectorId>"`, or
`"group:<group>"` for a group nested inside this one. Each connector belongs to
at most one group that names it directly, and groups form a tree. Every
problem is reported, naming the group, so an operator fixes the document in
one go.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from typing import Any

from connector.core.datapoints import SEP

# A group's name is part of its keys and topics: plain characters only, and
# no "__", the key separator.
_NAME = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9_-]{0,62}[A-Za-z0-9])?$")
NESTED = "group:"
# A group's keys begin with it; station ids that do are refused at the handshake.
GROUP_PREFIX = "@"
# The group's limit, in W, as execute_send_charging_profile takes it.
LIMIT_ACTUATOR = "execute_set_group_limit"
DEFAULT_MIN_A = 6.0
DEFAULT_VOLTAGE = 230.0
MAX_GROUPS = 1000
MAX_MEMBERS = 10000

# A connector as groups name it: (station id, connectorId); 0 means "every
# connector of the station".
Connector = tuple[str, int]
WHOLE_STATION = 0


@dataclass(frozen=True)
class Group:
    name: str
    max_w: float
    # Named directly: (cp id, connectorId or WHOLE_STATION).
    connectors: tuple[Connector, ...]
    # Nested groups, by name.
    groups: tuple[str, ...]
    min_a: float = DEFAULT_MIN_A
    voltage: float = DEFAULT_VOLTAGE

    def min_w(self, phases: int) -> float:
        """The least a charging connector is given: min_a on each phase."""
        return self.min_a * phases * self.voltage


@dataclass(frozen=True)
class Groups:
    by_name: dict[str, Group]
    # A nested group -> the group that names it.
    parent: dict[str, str]
    # (cp id, connectorId) named directly -> its group; (cp id, 0): the station.
    named: dict[Connector, str]

    @property
    def roots(self) -> list[str]:
        return [name for name in self.by_name if name not in self.parent]

    def group_of(self, cp_id: str, connector_id: int) -> str | None:
        """The group that names the connector directly, by itself or by its station."""
        if connector_id == WHOLE_STATION:
            return None
        return self.named.get((cp_id, connector_id)) or self.named.get((cp_id, WHOLE_STATION))

    def stations(self) -> set[str]:
        return {cp_id for cp_id, _ in self.named}

    def enclosing(self, group: str) -> list[str]:
        """The group and every group around it, innermost first."""
        chain = [group]
        while chain[-1] in self.parent:
            chain.append(self.parent[chain[-1]])
        return chain

    def members_count(self, group: str, known: dict[str, int]) -> int:
        """Connectors in the group and its nested groups; a whole station counts
        with `known[cp_id]` connectors (1 while unknown)."""
        entry = self.by_name[group]
        count = sum(
            known.get(cp_id, 1) if connector == WHOLE_STATION else 1
            for cp_id, connector in entry.connectors
        )
        return count + sum(self.members_count(g, known) for g in entry.groups)


NO_GROUPS = Groups({}, {}, {})


def group_id(group: str) -> str:
    """The part of a group's keys that a station id is elsewhere: `@garage`."""
    return GROUP_PREFIX + group


def group_key(group: str, *parts: str) -> str:
    """`@garage__GroupLimit__W`."""
    return SEP.join((group_id(group), *parts))


def parse_groups(raw: str) -> Groups:
    """The document -> Groups; ValueError with every problem, one per line."""
    text = raw.strip()
    if not text:
        return NO_GROUPS
    try:
        decoded = json.loads(text)
    except ValueError:
        raise ValueError(
            'allowed: a JSON object {"<group>": {"max_w": …, "members": […]}}'
        ) from None
    if not isinstance(decoded, dict):
        raise ValueError('allowed: a JSON object {"<group>": {"max_w": …, "members": […]}}')
    if len(decoded) > MAX_GROUPS:
        raise ValueError(f"at most {MAX_GROUPS} groups")
    problems: list[str] = []
    by_name: dict[str, Group] = {}
    for name, body in decoded.items():
        group = _group(name, body, problems)
        if group is not None:
            by_name[name] = group
    parent: dict[str, str] = {}
    named: dict[Connector, str] = {}
    stations: dict[str, str] = {}
    for group in by_name.values():
        for nested in group.groups:
            if nested not in by_name:
                problems.append(f"group {group.name!r}: nests {nested!r}, which is not a group")
            elif nested == group.name:
                problems.append(f"group {group.name!r}: nests itself")
            elif nested in parent:
                problems.append(
                    f"group {group.name!r}: nests {nested!r}, which {parent[nested]!r} nests "
                    "already (groups form a tree)"
                )
            else:
                parent[nested] = group.name
        for member in group.connectors:
            _name_directly(group.name, member, named, stations, problems)
    problems += _cycles(by_name, parent)
    if problems:
        raise ValueError("\n".join(problems))
    return Groups(by_name, parent, named)


def _group(name: Any, body: Any, problems: list[str]) -> Group | None:
    if not isinstance(name, str) or not _NAME.match(name) or "__" in name:
        problems.append(
            f"group {name!r}: a name is 1-64 letters, digits, '-' or '_' (not '__'), "
            "starting and ending with a letter or digit"
        )
        return None
    if not isinstance(body, dict):
        problems.append(f"group {name!r}: must be an object with max_w and members")
        return None
    unknown = sorted(set(body) - {"max_w", "members", "min_a", "voltage"})
    if unknown:
        problems.append(f"group {name!r}: unknown field {unknown[0]!r}")
    before = len(problems)
    max_w = _number(name, body, "max_w", None, (1.0, 1e9), problems)
    min_a = _number(name, body, "min_a", DEFAULT_MIN_A, (0.0, 80.0), problems)
    voltage = _number(name, body, "voltage", DEFAULT_VOLTAGE, (50.0, 500.0), problems)
    members = body.get("members")
    if not isinstance(members, list) or not members:
        problems.append(f"group {name!r}: members must be a non-empty list")
        return None
    if len(members) > MAX_MEMBERS:
        problems.append(f"group {name!r}: at most {MAX_MEMBERS} members")
        return None
    connectors: list[Connector] = []
    groups: list[str] = []
    for member in members:
        if not isinstance(member, str) or not member.strip() or len(member) > 200:
            problems.append(f"group {name!r}: member {member!r} is not a station id")
        elif member.startswith(NESTED):
            groups.append(member[len(NESTED) :])
        else:
            connectors.append(_connector(member))
    if len(problems) > before or max_w is None:
        return None
    return Group(name, max_w, tuple(connectors), tuple(groups), min_a or 0.0, voltage or 0.0)


def _number(
    name: str,
    body: dict[str, Any],
    field: str,
    default: float | None,
    bounds: tuple[float, float],
    problems: list[str],
) -> float | None:
    value = body.get(field, default)
    if value is None:
        problems.append(f"group {name!r}: {field} is missing")
        return None
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(value)
        or not bounds[0] <= value <= bounds[1]
    ):
        problems.append(
            f"group {name!r}: {field} must be a number from {bounds[0]:g} to {bounds[1]:g}"
        )
        return None
    return float(value)


def _connector(member: str) -> Connector:
    """ "CP1" -> ("CP1", 0); "CP1:2" -> ("CP1", 2). An id may hold ':' itself."""
    cp_id, sep, number = member.rpartition(":")
    if sep and number.isdigit() and 0 < int(number) < 1000 and cp_id:
        return (cp_id, int(number))
    return (member, WHOLE_STATION)


def _name_directly(
    group: str,
    member: Connector,
    named: dict[Connector, str],
    stations: dict[str, str],
    problems: list[str],
) -> None:
    """`stations`: cp id -> a group that names it or one of its connectors."""
    cp_id, connector = member
    if connector == WHOLE_STATION:
        other = stations.get(cp_id)
    else:
        other = named.get(member) or named.get((cp_id, WHOLE_STATION))
    if other is not None:
        shown = cp_id if connector == WHOLE_STATION else f"{cp_id}:{connector}"
        problems.append(
            f"group {group!r}: {shown!r} is named by group {other!r} already "
            "(a connector belongs to one group that names it)"
        )
        return
    named[member] = group
    stations.setdefault(cp_id, group)


def _cycles(by_name: dict[str, Group], parent: dict[str, str]) -> list[str]:
    problems = []
    for name in by_name:
        seen = {name}
        current = name
        while current in parent:
            current = parent[current]
            if current in seen:
                problems.append(f"group {name!r}: nested groups form a cycle")
                break
            seen.add(current)
    return problems
