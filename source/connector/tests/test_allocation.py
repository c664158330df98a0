"""Pure, table-driven: OCPP_GROUPS read and checked, the allocation of a group's
limit, and power left unused (README "Sharing a supply")."""

from __future__ import annotations

import json
from typing import Any

import pytest

from connector.core.allocation import Charging, allocate, phases_used
from connector.core.groups import NO_GROUPS, parse_groups
from connector.core.underuse import Underuse
from connector.settings import SettingsError, load_settings
from connector.stations.central_system import id_problem

FUSE_32A = 22080.0  # 32 A on three phases at 230 V


def groups(doc: dict[str, Any]) -> Any:
    return parse_groups(json.dumps(doc))


def charging(
    member: str, priority: float, phases: int = 3, cap: float | None = None, one: bool = False
) -> Charging:
    """`one`: its station can switch it from three phases to one."""
    cp_id, _, connector = member.partition(":")
    return Charging((cp_id, int(connector or 1)), phases, priority, cap, one)


GARAGE = {"garage": {"max_w": FUSE_32A, "members": ["A", "B", "C", "D"]}}
NESTED = {
    "site": {"max_w": FUSE_32A, "members": ["A", "group:garage"]},
    "garage": {"max_w": 6900, "members": ["B", "C"]},
}

ALLOCATIONS = {
    "equal shares": (GARAGE, {"garage": FUSE_32A}, [("A", 1), ("B", 2)], {"A": 11040, "B": 11040}),
    "a connector's own limit caps it, the rest goes to the others": (
        GARAGE,
        {"garage": FUSE_32A},
        [("A", 1, 3, 4140), ("B", 2)],
        {"A": 4140, "B": 17940},
    ),
    "an own limit below the minimum is given, rounded down to 0.1 A": (
        GARAGE,
        {"garage": FUSE_32A},
        [("A", 1, 3, 2000), ("B", 2)],
        {"A": 1932, "B": 20079},
    ),
    "the latest session is paused when not everyone gets 6 A": (
        GARAGE,
        {"garage": 10000},
        [("C", 3), ("A", 1), ("B", 2)],
        {"A": 4968, "B": 4968, "C": 0},
    ),
    "below one minimum, everyone is paused": (GARAGE, {"garage": 3000}, [("A", 1)], {"A": 0}),
    "one phase and three phases share equally, each at its own minimum": (
        GARAGE,
        {"garage": 11040},
        [("A", 1, 3), ("B", 2, 1)],
        {"A": 5520, "B": 5520},
    ),
    "a single-phase car fits where a three-phase one would not": (
        GARAGE,
        {"garage": 5600},
        [("A", 1, 3), ("B", 2, 1)],
        {"A": 4140, "B": 1449},
    ),
    "everyone capped below the limit": (
        GARAGE,
        {"garage": FUSE_32A},
        [("A", 1, 3, 3000), ("B", 2, 3, 5000)],
        {"A": 2967, "B": 4968},
    ),
    "a limit of 0 pauses everyone": (GARAGE, {"garage": 0}, [("A", 1), ("B", 2)], {"A": 0, "B": 0}),
    "nobody charging": (GARAGE, {"garage": FUSE_32A}, [], {}),
    "below the three-phase minimum, switchable connectors charge on one phase": (
        GARAGE,
        {"garage": 5600},
        [("A", 1, 3, None, True), ("B", 2, 3, None, True)],
        {"A": 2783, "B": 2783},
    ),
    "a switchable connector with enough stays on three phases": (
        GARAGE,
        {"garage": 10000},
        [("A", 1, 3, None, True), ("B", 2, 3, None, True)],
        {"A": 4968, "B": 4968},
    ),
    "the later session pauses when not even its one-phase minimum is left": (
        GARAGE,
        {"garage": 5000},
        [("A", 1, 3, None, False), ("B", 2, 3, None, True)],
        {"A": 4968, "B": 0},
    ),
    "the later, switchable session takes one phase beside a three-phase one": (
        GARAGE,
        {"garage": 6000},
        [("A", 1, 3, None, False), ("B", 2, 3, None, True)],
        {"A": 4140, "B": 1840},
    ),
    "a nested group is capped at its limit and shares it within": (
        NESTED,
        {"site": FUSE_32A, "garage": 6900},
        [("A", 1), ("B", 2), ("C", 3)],
        {"A": 15180, "B": 6900, "C": 0},
    ),
    "a nested group whose limit gives nobody 6 A takes nothing": (
        NESTED,
        {"site": FUSE_32A, "garage": 3000},
        [("A", 1), ("B", 2), ("C", 3)],
        {"A": FUSE_32A, "B": 0, "C": 0},
    ),
    "a nested group's limit set lower by an energy manager": (
        NESTED,
        {"site": 12000, "garage": 4140},
        [("A", 5), ("B", 2), ("C", 3)],
        {"A": 7797, "B": 4140, "C": 0},
    ),
    "the nested group shares its half, and pauses its later session": (
        NESTED,
        {"site": 9000, "garage": 6900},
        [("A", 3), ("B", 1), ("C", 2)],
        {"A": 4485, "B": 4485, "C": 0},
    ),
}


@pytest.mark.parametrize("case", ALLOCATIONS.values(), ids=list(ALLOCATIONS))
def test_allocate(case: tuple[Any, ...]) -> None:
    doc, limits, members, expected = case
    parsed = groups(doc)
    by_group: dict[str, list[Charging]] = {}
    for row in members:
        member = charging(*row)
        group = parsed.group_of(*member.connector)
        assert group is not None
        by_group.setdefault(group, []).append(member)
    got = allocate(parsed, limits, by_group)
    assert {cp_id: round(w, 3) for (cp_id, _), w in got.items()} == expected
    for name, limit in limits.items():
        inside = {c for c, g in parsed.named.items() if g in parsed_subtree(parsed, name)}
        total = sum(w for (cp_id, _), w in got.items() if (cp_id, 0) in inside)
        assert total <= limit, (name, total, limit)


def parsed_subtree(parsed: Any, name: str) -> set[str]:
    return {g for g in parsed.by_name if name in parsed.enclosing(g)}


def test_many_connectors_never_exceed_the_limit() -> None:
    """Awkward numbers: 100 connectors, every phase count, caps, limits."""
    doc = {"g": {"max_w": 1e6, "members": [f"CP{i}" for i in range(100)]}}
    parsed = groups(doc)
    for limit in (0.0, 1379.0, 4139.9, 50_000.3, 123_456.7, 1e6):
        members = [
            charging(f"CP{i}", i, phases=1 + i % 3, cap=None if i % 4 else 1000.0 + 37 * i)
            for i in range(100)
        ]
        got = allocate(parsed, {"g": limit}, {"g": members})
        assert sum(got.values()) <= limit
        for member in members:
            given = got[member.connector]
            minimum = min(6 * 230 * member.phases, member.cap_w or 1e9)
            assert given == 0 or given >= minimum - 0.1 * 230 * member.phases
            assert member.cap_w is None or given <= member.cap_w


GROUP_ERRORS = {
    "not an object": ("[1]", "JSON object"),
    "missing max_w": ('{"g": {"members": ["A"]}}', "group 'g': max_w is missing"),
    "max_w not a number": ('{"g": {"max_w": "x", "members": ["A"]}}', "max_w must be a number"),
    "max_w infinite": ('{"g": {"max_w": 1e999, "members": ["A"]}}', "max_w must be a number"),
    "a bad name": ('{"g__x": {"max_w": 1, "members": ["A"]}}', "a name is 1-64"),
    "no members": ('{"g": {"max_w": 1000, "members": []}}', "members must be a non-empty list"),
    "min_a out of range": (
        '{"g": {"max_w": 1000, "members": ["A"], "min_a": 100}}',
        "min_a must be a number from 0 to 80",
    ),
    "an unknown field": ('{"g": {"max_w": 1000, "members": ["A"], "x": 1}}', "unknown field 'x'"),
    "an unknown nested group": (
        '{"g": {"max_w": 1000, "members": ["group:h"]}}',
        "nests 'h', which is not a group",
    ),
    "a group nested twice": (
        '{"g": {"max_w": 9, "members": ["group:h"]}, "f": {"max_w": 9, "members": ["group:h"]},'
        ' "h": {"max_w": 9, "members": ["A"]}}',
        "groups form a tree",
    ),
    "a cycle": (
        '{"g": {"max_w": 9, "members": ["group:h"]}, "h": {"max_w": 9, "members": ["group:g"]}}',
        "form a cycle",
    ),
    "a station in two groups": (
        '{"g": {"max_w": 9, "members": ["A"]}, "h": {"max_w": 9, "members": ["A"]}}',
        "'A' is named by group 'g' already",
    ),
    "a connector and its station in two groups": (
        '{"g": {"max_w": 9, "members": ["A"]}, "h": {"max_w": 9, "members": ["A:2"]}}',
        "'A:2' is named by group 'g' already",
    ),
}


@pytest.mark.parametrize("case", GROUP_ERRORS.values(), ids=list(GROUP_ERRORS))
def test_invalid_group_documents(case: tuple[str, str]) -> None:
    raw, message = case
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace("[", r"\[")):
        parse_groups(raw)


def test_members_and_lookups() -> None:
    parsed = groups(
        {
            "site": {"max_w": 50000, "members": ["CP1", "group:garage"], "voltage": 240},
            "garage": {"max_w": 22080, "members": ["CP2:1", "CP2:2", "id:with:colons"]},
        }
    )
    assert parsed.roots == ["site"]
    assert parsed.group_of("CP1", 3) == "site"
    assert parsed.group_of("CP2", 2) == "garage"
    assert parsed.group_of("CP2", 3) is None
    assert parsed.group_of("id:with:colons", 1) == "garage"
    assert parsed.group_of("CP1", 0) is None  # the station key is no member
    assert parsed.enclosing("garage") == ["garage", "site"]
    assert parsed.by_name["site"].min_w(3) == 6 * 3 * 240
    assert parsed.members_count("site", {"CP1": 2}) == 5
    assert parse_groups("") is NO_GROUPS


# (measured, allocation, seconds since the start) -> expected cap after it
UNDERUSE = {
    "a car drawing its share is never capped": [(11000, 11040, 0, None), (11000, 11040, 120, None)],
    "far below for 60 s: capped at measured + 500 W": [
        (5000, 11040, 0, None),
        (5000, 11040, 59, None),
        (5000, 11040, 60, 5500),
    ],
    "the cap is at least the minimum": [(500, 11040, 0, None), (500, 11040, 60, 4140)],
    "a dip shorter than 60 s resets": [
        (5000, 11040, 0, None),
        (11000, 11040, 30, None),
        (5000, 11040, 40, None),
        (5000, 11040, 99, None),
        (5000, 11040, 100, 5500),
    ],
    "drawing more again: the share comes back": [
        (5000, 11040, 0, None),
        (5000, 11040, 60, 5500),
        (5000, 5500, 61, 5500),  # the reading that set the cap does not clear it
        (5100, 5500, 70, 5500),
        (5300, 5500, 80, None),
    ],
    "a paused connector is never capped": [(0, 0, 0, None), (0, 0, 100, None)],
    "less than 500 W below is no underuse": [(10600, 11040, 0, None), (10600, 11040, 100, None)],
}


@pytest.mark.parametrize("steps", UNDERUSE.values(), ids=list(UNDERUSE))
def test_underuse(steps: list[tuple[float, float, float, float | None]]) -> None:
    state = Underuse()
    for measured, allocation, now, cap in steps:
        state.seen(measured, allocation, 4140, now)
        assert state.cap_w == cap, (measured, allocation, now)


def test_groups_in_the_settings(tmp_path: Any) -> None:
    doc = tmp_path / "groups.json"
    doc.write_text('{"garage": {"max_w": 22080, "members": ["WB1", "WB2"]}}')
    settings = load_settings({"OCPP_GROUPS_FILE": str(doc)}, env_file=None)
    assert settings.ocpp_groups.group_of("WB2", 1) == "garage"
    with pytest.raises(SettingsError) as caught:
        load_settings({"OCPP_GROUPS": '{"g": {"members": ["A"]}, "h": {"max_w": 1}}'}, None)
    (line,) = caught.value.problems
    assert "group 'g': max_w is missing" in line and "group 'h': members" in line
    # Several instances share the groups (the leader computes them).
    shared = load_settings({"OCPP_GROUPS": doc.read_text(), "CONNECTOR_INSTANCE": "1"}, None)
    assert shared.ocpp_groups.by_name["garage"].max_w == 22080


@pytest.mark.parametrize(
    ("cp_id", "refused"), [("@garage", True), ("CP@1", False), ("@", True), ("garage", False)]
)
def test_no_station_id_looks_like_a_group(cp_id: str, refused: bool) -> None:
    assert (id_problem(cp_id) is not None) is refused


@pytest.mark.parametrize(
    ("one", "share", "expected"),
    [(True, 2783, 1), (True, 4140, 3), (True, 0, 3), (False, 2783, 3)],
)
def test_phases_used(one: bool, share: float, expected: int) -> None:
    group = groups(GARAGE).by_name["garage"]
    assert phases_used(group, charging("A", 1, 3, None, one), share) == expected
