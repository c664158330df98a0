"""Pure tests of the per-station key budget."""

from __future__ import annotations

import logging

import pytest

from connector.core.key_budget import (
    EXAMPLE_MAX_BYTES,
    MAX_KEY_LENGTH,
    KeyBudget,
    example,
    station_of,
)
from connector.core.strict_json import dumps


@pytest.mark.parametrize(
    ("key", "station"),
    [
        ("CP_1__connected", "CP_1"),
        ("CP_1__MeterValues__1__Voltage__L1__V", "CP_1"),
        ("a_b__Heartbeat", "a_b"),
        ("lonely", "lonely"),
    ],
)
def test_station_of(key: str, station: str) -> None:
    assert station_of(key) == station


def test_budget_is_per_station_and_warns_once(caplog: pytest.LogCaptureFixture) -> None:
    budget = KeyBudget(3)
    with caplog.at_level(logging.WARNING, "connector.core.key_budget"):
        admitted = [budget.admit(f"CP_1__k{n}") for n in range(6)]
        assert budget.admit("CP_2__k0") is True
    assert admitted == [True, True, True, False, False, False]
    warnings = [r.getMessage() for r in caplog.records]
    assert len(warnings) == 1
    assert "CP_1" in warnings[0] and "OCPP_MAX_KEYS_PER_STATION (3 keys)" in warnings[0]


def test_a_key_longer_than_any_real_one_is_never_admitted(
    caplog: pytest.LogCaptureFixture,
) -> None:
    budget = KeyBudget(5000)
    long_key = "CP_1__BootNotification__customData." + "k" * 60_000
    with caplog.at_level(logging.WARNING, "connector.core.key_budget"):
        assert budget.admit(long_key) is False
        assert budget.admit(long_key + "2") is False
        assert budget.admit("CP_1__" + "k" * (MAX_KEY_LENGTH - 6)) is True
    # One WARNING, naming the station and only the start of the name.
    assert len(caplog.records) == 1
    assert "CP_1" in caplog.records[0].getMessage()
    assert len(caplog.records[0].getMessage()) < 400


def test_the_budget_counts_bytes_not_only_keys(caplog: pytest.LogCaptureFixture) -> None:
    budget = KeyBudget(5000, byte_limit=10_000)
    with caplog.at_level(logging.WARNING, "connector.core.key_budget"):
        admitted = [budget.admit(f"CP_1__k{n}__" + "x" * 300) for n in range(100)]
        assert budget.admit("CP_2__k") is True  # another station's budget is its own
    # Each key costs its JSON (about 312 bytes) and its largest example (68): 26 fit.
    assert admitted.count(True) == 10_000 // (len(dumps("CP_1__k10__" + "x" * 300)) + 68)
    assert admitted == sorted(admitted, reverse=True)  # once full, nothing more
    assert "OCPP_MAX_KEY_BYTES_PER_STATION (10000 bytes" in caplog.text


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        (1.5, 1.5),
        ("short", "short"),
        ("Charging", "Charging"),
        ("x" * 60_000, "x" * (EXAMPLE_MAX_BYTES - 8) + "…"),
        (None, None),
        (2**63, 2**63),
    ],
)
def test_examples_are_short(value: object, shown: object) -> None:
    assert example(value) == shown


@pytest.mark.parametrize(
    "value",
    ["😀" * 100, "\x01" * 100, '"' * 100, "é" * 100, "a" * 62, "a" * 63, "😀", "x\ud800" * 40],
)
def test_an_example_takes_at_most_its_bytes_in_json(value: str) -> None:
    """Whatever a string value becomes later, its example cannot grow the document
    beyond what the key was charged (issue 17: 12 bytes a character in JSON)."""
    shown = example(value)
    assert len(dumps(shown)) <= EXAMPLE_MAX_BYTES
    assert value.startswith(shown.rstrip("…"))
