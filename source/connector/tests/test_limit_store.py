"""Pure tests of the limit store and its retained state on the broker."""

from __future__ import annotations

import json

import pytest

from connector.core import limit_store as ls


@pytest.mark.parametrize(
    ("cp_id", "name"),
    [
        ("CP_1", "charging_limits/CP_1"),
        ("a/b+c#d", "charging_limits/a%2Fb%2Bc%23d"),
        ("Zapfsäule 1", "charging_limits/Zapfs%C3%A4ule%201"),
    ],
)
def test_state_names_round_trip(cp_id: str, name: str) -> None:
    assert ls.state_name(cp_id) == name
    assert ls.cp_id_of(name) == cp_id


@pytest.mark.parametrize("name", ["last_transaction_id", "charging_limits/", "other/CP_1"])
def test_other_state_names(name: str) -> None:
    assert ls.cp_id_of(name) is None


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        (b'{"1": 7400, "0": null}', {1: 7400, 0: None}),
        (b'{"2": 3700.5}', {2: 3700.5}),
        (b"{}", {}),
        (b"not json", None),
        (b"[1]", None),
        (b'{"x": 1}', None),
        (b'{"1": -5}', None),
        (b'{"1": "7400"}', None),
        (b'{"1": true}', None),
        (b'{"1000": 5}', None),
        (b"\xff", None),
    ],
)
def test_decode(payload: bytes, expected: dict[int, float | None] | None) -> None:
    assert ls.decode(payload) == expected


def test_encode_round_trips() -> None:
    limits: dict[int, float | None] = {1: 7400, 0: None}
    assert ls.encode(limits) == {"0": None, "1": 7400}
    assert ls.decode(json.dumps(ls.encode(limits)).encode()) == limits


def test_generations_tell_an_overtaken_value() -> None:
    store = ls.LimitStore()
    first = store.set("CP", 1, 1000)
    second = store.set("CP", 1, 2000)
    assert not store.is_current("CP", 1, first)
    assert store.get("CP", 1) == (2000, second)
    assert store.get("CP", 2) is None


def test_a_clear_is_forgotten_once_it_reached_the_station() -> None:
    store = ls.LimitStore()
    pending = store.set("CP", 1, None)
    newer = store.set("CP", 1, 500)
    assert not store.cleared("CP", 1, pending)  # a newer value came meanwhile
    assert store.of_station("CP") == {1: 500}
    clear = store.set("CP", 1, None)
    assert newer != clear
    assert store.cleared("CP", 1, clear)
    assert store.of_station("CP") == {}
    assert store.connectors("CP") == []


def test_restore_never_overrides_this_run() -> None:
    store = ls.LimitStore()
    assert store.restore("CP", {1: 7400})
    assert store.of_station("CP") == {1: 7400}
    assert not store.restore("CP", {1: 1000})
    assert store.of_station("CP") == {1: 7400}
    assert not store.restore("OTHER", {})
