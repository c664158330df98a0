"""Pure tests of the energy register plausibility check."""

from __future__ import annotations

import pytest

from connector.core.datapoints import Datapoint
from connector.core.energy_guard import EnergyGuard

REGISTER = "CP__MeterValues__1__Energy.Active.Import.Register__Wh"
POWER = "CP__MeterValues__1__Power.Active.Import__W"


def points(*values: tuple[str, float]) -> list[Datapoint]:
    return [Datapoint(key, value, i) for i, (key, value) in enumerate(values)]


@pytest.mark.parametrize(
    ("sequence", "kept_values"),
    [
        ([1000, 1010, 1020], [1000, 1010, 1020]),
        ([1000, 1000, 1001], [1000, 1000, 1001]),  # equal is not a fall
        ([1000, 0, 1020], [1000, 1020]),  # a glitch to 0
        ([12000, 500, 12010], [12000, 12010]),  # a session value as the register
        ([1000, 0, 0, 999, 1001], [1000, 1001]),
    ],
)
def test_falling_register_values_are_dropped(
    sequence: list[float], kept_values: list[float]
) -> None:
    guard = EnergyGuard()
    kept = []
    for value in sequence:
        accepted, _ = guard.filter(1, points((REGISTER, value)))
        kept += [p.value for p in accepted]
    assert kept == kept_values


def test_other_measurands_may_fall() -> None:
    guard = EnergyGuard()
    guard.filter(1, points((POWER, 11000)))
    kept, dropped = guard.filter(1, points((POWER, 0), (REGISTER, 5)))
    assert [p.key for p in kept] == [POWER, REGISTER]
    assert dropped == []


def test_within_one_message_in_order() -> None:
    kept, dropped = EnergyGuard().filter(1, points((REGISTER, 10), (REGISTER, 0), (REGISTER, 11)))
    assert [p.value for p in kept] == [10, 11]
    assert [p.value for p in dropped] == [0]


def test_reset_after_boot_or_new_transaction() -> None:
    guard = EnergyGuard()
    guard.filter(1, points((REGISTER, 1000)))
    guard.filter(2, points((REGISTER.replace("__1__", "__2__"), 1000)))
    guard.reset(1)  # a new transaction on connector 1
    assert guard.filter(1, points((REGISTER, 5)))[0] != []
    assert guard.filter(2, points((REGISTER.replace("__1__", "__2__"), 5)))[0] == []
    guard.reset()  # a BootNotification
    assert guard.filter(2, points((REGISTER.replace("__1__", "__2__"), 5)))[0] != []


def test_disabled() -> None:
    guard = EnergyGuard(enabled=False)
    guard.filter(1, points((REGISTER, 1000)))
    kept, dropped = guard.filter(1, points((REGISTER, 0)))
    assert [p.value for p in kept] == [0]
    assert dropped == []
