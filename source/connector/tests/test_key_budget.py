"""Pure tests of the per-station key budget."""

from __future__ import annotations

import logging

import pytest

from connector.core.key_budget import KeyBudget, station_of


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
