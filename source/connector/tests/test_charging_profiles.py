"""Pure, table-driven tests of the charging profile planning (README "Charging control")."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from connector.core import charging_profiles as cp
from connector.core.commands import MAX_CONNECTOR_ID, InvalidCommand
from connector.core.datapoints import Datapoint
from connector.ocpp16.requests import set_charging_profile

TXD, TXP, CPM = cp.TX_DEFAULT_PROFILE, cp.TX_PROFILE, cp.CHARGE_POINT_MAX_PROFILE


@pytest.mark.parametrize(
    ("limit_w", "allows_power", "voltage", "phases", "expected"),
    [
        (11000, True, 230, 3, cp.Rate("W", 11000, None)),
        (3700.5, True, 230, 1, cp.Rate("W", 3700.5, None)),
        (0, True, 230, 3, cp.Rate("W", 0, None)),
        # A = W / (V x phases), rounded down to 0.1 A.
        (11000, False, 230, 3, cp.Rate("A", 15.9, 3)),  # 15.94 A
        (7360, False, 230, 1, cp.Rate("A", 32, 1)),
        (4140, False, 230, 3, cp.Rate("A", 6, 3)),  # exactly 6 A stays 6 A
        (11000, False, 240.5, 3, cp.Rate("A", 15.2, 3)),  # 15.246 A
        (1000, False, 230, 3, cp.Rate("A", 1.4, 3)),
        (0, False, 230, 3, cp.Rate("A", 0, 3)),
        (50, False, 230, 3, cp.Rate("A", 0, 3)),  # 0.07 A
    ],
)
def test_to_rate(
    limit_w: float, allows_power: bool, voltage: float, phases: int, expected: cp.Rate
) -> None:
    assert cp.to_rate(limit_w, allows_power, voltage, phases) == expected


@pytest.mark.parametrize(
    ("rate", "warn"),
    [
        (cp.Rate("A", 5.9, 3), True),
        (cp.Rate("A", 0.1, 1), True),
        (cp.Rate("A", 6, 3), False),
        (cp.Rate("A", 0, 3), False),  # 0 pauses on purpose
        (cp.Rate("W", 1000, None), False),
    ],
)
def test_below_minimum_current(rate: cp.Rate, warn: bool) -> None:
    assert cp.below_minimum_current(rate) is warn


@pytest.mark.parametrize(
    ("forced", "station_max", "expected"),
    [(None, None, 0), (None, 8, 8), (None, 0, 0), (3, 8, 3), (0, 8, 0), (5, None, 5)],
)
def test_stack_level(forced: int | None, station_max: int | None, expected: int) -> None:
    assert cp.stack_level(forced, station_max) == expected


@pytest.mark.parametrize(
    ("strategy", "connector_id", "transaction_id", "expected"),
    [
        # auto, connector with a running transaction: TxProfile, then TxDefault.
        (cp.AUTO, 1, 42, [(cp.Target(TXP, 1, 42),), (cp.Target(TXD, 1),)]),
        # auto, connector without one: TxDefault.
        (cp.AUTO, 2, None, [(cp.Target(TXD, 2),)]),
        # auto, station level: ChargePointMax, falling back to TxDefault on 0.
        (cp.AUTO, 0, None, [(cp.Target(CPM, 0), cp.Target(TXD, 0))]),
        (cp.TX_DEFAULT, 1, 42, [(cp.Target(TXD, 1),)]),
        (cp.TX_DEFAULT, 0, None, [(cp.Target(TXD, 0),)]),
        (cp.CHARGE_POINT_MAX, 0, None, [(cp.Target(CPM, 0),)]),
    ],
)
def test_plan(
    strategy: str,
    connector_id: int,
    transaction_id: int | None,
    expected: list[tuple[cp.Target, ...]],
) -> None:
    assert cp.plan(strategy, connector_id, transaction_id) == expected


@pytest.mark.parametrize(
    ("strategy", "connector_id", "expected"),
    [
        (cp.AUTO, 1, [7001, 8001]),
        (cp.AUTO, 0, [9000, 7000]),
        (cp.TX_DEFAULT, 2, [7002]),
        (cp.TX_DEFAULT, 0, [7000]),
        (cp.CHARGE_POINT_MAX, 0, [9000]),
        # A connector limit kept from a run with another strategy can still be cleared.
        (cp.CHARGE_POINT_MAX, 1, [7001, 8001]),
    ],
)
def test_clear_ids(strategy: str, connector_id: int, expected: list[int]) -> None:
    assert cp.clear_ids(strategy, connector_id) == expected


def test_profile_ids_are_distinct_per_purpose_and_connector() -> None:
    ids = {
        cp.profile_id(purpose, connector)
        for purpose in (TXD, TXP, CPM)
        for connector in range(MAX_CONNECTOR_ID + 1)
    }
    assert len(ids) == 3 * (MAX_CONNECTOR_ID + 1)
    assert cp.profile_id(TXD, 1) == 7001  # the id version 0.1.0 used


@pytest.mark.parametrize(
    ("strategy", "connector_id", "allowed"),
    [
        (cp.AUTO, 0, True),
        (cp.AUTO, 999, True),
        (cp.TX_DEFAULT, 3, True),
        (cp.CHARGE_POINT_MAX, 0, True),
        (cp.CHARGE_POINT_MAX, 1, False),
    ],
)
def test_check_target(strategy: str, connector_id: int, allowed: bool) -> None:
    if allowed:
        cp.check_target(strategy, connector_id)
    else:
        with pytest.raises(InvalidCommand):
            cp.check_target(strategy, connector_id)


NOW = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("target", "rate", "level", "expected"),
    [
        (
            cp.Target(TXD, 1),
            cp.Rate("W", 11000, None),
            0,
            {
                "connectorId": 1,
                "csChargingProfiles": {
                    "chargingProfileId": 7001,
                    "stackLevel": 0,
                    "chargingProfilePurpose": "TxDefaultProfile",
                    "chargingProfileKind": "Absolute",
                    "chargingSchedule": {
                        "startSchedule": "2026-01-01T11:59:00Z",
                        "chargingRateUnit": "W",
                        "chargingSchedulePeriod": [{"startPeriod": 0, "limit": 11000}],
                    },
                },
            },
        ),
        (
            cp.Target(TXP, 2, 77),
            cp.Rate("A", 15.9, 3),
            8,
            {
                "connectorId": 2,
                "csChargingProfiles": {
                    "chargingProfileId": 8002,
                    "stackLevel": 8,
                    "chargingProfilePurpose": "TxProfile",
                    "chargingProfileKind": "Absolute",
                    "transactionId": 77,
                    "chargingSchedule": {
                        "startSchedule": "2026-01-01T11:59:00Z",
                        "chargingRateUnit": "A",
                        "chargingSchedulePeriod": [
                            {"startPeriod": 0, "limit": 15.9, "numberPhases": 3}
                        ],
                    },
                },
            },
        ),
        (
            cp.Target(CPM, 0),
            cp.Rate("W", 22000, None),
            2,
            {
                "connectorId": 0,
                "csChargingProfiles": {
                    "chargingProfileId": 9000,
                    "stackLevel": 2,
                    "chargingProfilePurpose": "ChargePointMaxProfile",
                    "chargingProfileKind": "Absolute",
                    "chargingSchedule": {
                        "startSchedule": "2026-01-01T11:59:00Z",
                        "chargingRateUnit": "W",
                        "chargingSchedulePeriod": [{"startPeriod": 0, "limit": 22000}],
                    },
                },
            },
        ),
    ],
)
def test_set_request(
    target: cp.Target, rate: cp.Rate, level: int, expected: dict[str, object]
) -> None:
    assert set_charging_profile(target, rate, level, NOW) == expected


@pytest.mark.parametrize(
    ("statuses", "expected"),
    [
        (["Accepted"], "Accepted"),
        (["Rejected"], "Rejected"),
        (["Accepted", "Rejected"], "Accepted"),  # the TxProfile is in force now
        (["Rejected", "Accepted"], "Accepted"),
        (["CallError:NotSupported", "Timeout"], "CallError:NotSupported"),
    ],
)
def test_combined_outcome(statuses: list[str], expected: str) -> None:
    assert cp.combined_outcome(statuses) == expected


@pytest.mark.parametrize(
    ("statuses", "expected"),
    [
        (["Accepted", "Unknown"], "Accepted"),
        (["Unknown", "Unknown"], "Unknown"),
        (["Unknown", "Timeout"], "Timeout"),
        (["Timeout", "Accepted"], "Accepted"),
    ],
)
def test_combined_clear_outcome(statuses: list[str], expected: str) -> None:
    assert cp.combined_clear_outcome(statuses) == expected


@pytest.mark.parametrize(
    ("connector_id", "limit_w", "rate", "expected"),
    [
        (1, 11000, cp.Rate("W", 11000, None), [("CP__ChargingLimit__1__W", 11000)]),
        (
            0,
            11000,
            cp.Rate("A", 15.9, 3),
            [("CP__ChargingLimit__W", 11000), ("CP__ChargingLimit__A", 15.9)],
        ),
        (2, None, None, [("CP__ChargingLimit__2__W", None), ("CP__ChargingLimit__2__A", None)]),
    ],
)
def test_limit_datapoints(
    connector_id: int,
    limit_w: float | None,
    rate: cp.Rate | None,
    expected: list[tuple[str, float | None]],
) -> None:
    points = cp.limit_datapoints("CP", connector_id, limit_w, rate, 5)
    assert points == [Datapoint(key, value, 5) for key, value in expected]
