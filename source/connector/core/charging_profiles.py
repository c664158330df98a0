"""Pure: a power limit in W -> the charging profiles a station will accept.

README "Charging control". Nothing here does I/O; charging_control.py sends what this
module plans and reports the outcome.

- Unit: W when the station allows Power, otherwise A = W / (V x phases),
  rounded down to 0.1 A, with numberPhases.
- Strategy `auto`: a connector with a running transaction gets a TxProfile
  for that transaction plus a TxDefaultProfile for later sessions; a
  connector without one gets a TxDefaultProfile; the station as a whole gets
  a ChargePointMaxProfile, falling back to a TxDefaultProfile on connector 0.
- Profile ids are fixed per purpose and connector, and the stack level is
  fixed per station, so each new value replaces the previous profile
  instead of stacking on top of it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from connector.core.commands import InvalidCommand
from connector.core.datapoints import SEP, Datapoint, tidy_number

AUTO = "auto"
TX_DEFAULT = "tx_default"
CHARGE_POINT_MAX = "charge_point_max"
STRATEGIES: tuple[str, ...] = (AUTO, TX_DEFAULT, CHARGE_POINT_MAX)

TX_DEFAULT_PROFILE = "TxDefaultProfile"
TX_PROFILE = "TxProfile"
CHARGE_POINT_MAX_PROFILE = "ChargePointMaxProfile"

# Ids per purpose: 7000 + connector keeps the ids of version 0.1.0, so an
# upgrade replaces the profiles that version set.
_ID_BASE = {TX_DEFAULT_PROFILE: 7000, TX_PROFILE: 8000, CHARGE_POINT_MAX_PROFILE: 9000}

# IEC 61851: most vehicles stop charging when offered less than 6 A.
MIN_CHARGING_CURRENT_A = 6.0
# A measured voltage outside this range is a phase-to-phase or broken reading.
VOLTAGE_RANGE = (50.0, 500.0)

ACCEPTED = "Accepted"
# Answers after which a ChargePointMaxProfile is retried as a TxDefaultProfile.
FALLBACK_STATUSES = frozenset({"Rejected", "CallError:NotSupported", "CallError:NotImplemented"})


@dataclass(frozen=True)
class Rate:
    unit: str  # "W" or "A"
    limit: float
    number_phases: int | None  # sent with A only


@dataclass(frozen=True)
class Target:
    """One profile to send: its purpose, connector, and transaction for a TxProfile."""

    purpose: str
    connector_id: int
    transaction_id: int | str | None = None  # 1.6: ours (int); 2.x: the station's

    @property
    def profile_id(self) -> int:
        return profile_id(self.purpose, self.connector_id)


def profile_id(purpose: str, connector_id: int) -> int:
    return _ID_BASE[purpose] + connector_id


def floor_tenth(value: float) -> float:
    """Round down to a multiple of 0.1, as the schema requires, never above the limit."""
    return tidy_number(math.floor(value * 10 + 1e-9) / 10)


def to_rate(limit_w: float, allows_power: bool, voltage: float, phases: int) -> Rate:
    if allows_power:
        return Rate("W", tidy_number(limit_w), None)
    return Rate("A", floor_tenth(limit_w / (voltage * phases)), phases)


def below_minimum_current(rate: Rate) -> bool:
    return rate.unit == "A" and 0 < rate.limit < MIN_CHARGING_CURRENT_A


def plausible_voltage(volts: float) -> bool:
    return VOLTAGE_RANGE[0] <= volts <= VOLTAGE_RANGE[1]


def stack_level(forced: int | None, station_max: int | None) -> int:
    """OCPP_STACK_LEVEL, else the station's ChargeProfileMaxStackLevel, else 0."""
    if forced is not None:
        return forced
    return station_max if station_max is not None else 0


def check_target(strategy: str, connector_id: int) -> None:
    """Raise InvalidCommand when the strategy cannot limit that connector."""
    if strategy == CHARGE_POINT_MAX and connector_id != 0:
        raise InvalidCommand(
            "OCPP_CHARGING_PROFILE_STRATEGY=charge_point_max limits the whole station only; "
            "use the station-level key, or another strategy"
        )


def plan(
    strategy: str, connector_id: int, transaction_id: int | str | None
) -> list[tuple[Target, ...]]:
    """The steps to send, in order; each step is a list of alternatives.

    The next alternative of a step is tried only when the previous one got an
    answer in FALLBACK_STATUSES.
    """
    if strategy == TX_DEFAULT:
        return [(Target(TX_DEFAULT_PROFILE, connector_id),)]
    if strategy == CHARGE_POINT_MAX or connector_id == 0:
        if strategy == CHARGE_POINT_MAX:
            return [(Target(CHARGE_POINT_MAX_PROFILE, 0),)]
        return [(Target(CHARGE_POINT_MAX_PROFILE, 0), Target(TX_DEFAULT_PROFILE, 0))]
    steps: list[tuple[Target, ...]] = []
    if transaction_id is not None:
        steps.append((Target(TX_PROFILE, connector_id, transaction_id),))
    steps.append((Target(TX_DEFAULT_PROFILE, connector_id),))
    return steps


def clear_ids(strategy: str, connector_id: int) -> list[int]:
    """Every profile id the strategy may have set for this key; clearing is by id,
    so profiles set by others (the station's own, a backend's) stay untouched."""
    if strategy == TX_DEFAULT:
        purposes = [TX_DEFAULT_PROFILE]
    elif strategy == CHARGE_POINT_MAX and connector_id == 0:
        purposes = [CHARGE_POINT_MAX_PROFILE]
    elif connector_id == 0:
        purposes = [CHARGE_POINT_MAX_PROFILE, TX_DEFAULT_PROFILE]
    else:
        purposes = [TX_DEFAULT_PROFILE, TX_PROFILE]
    return [profile_id(p, connector_id if p != CHARGE_POINT_MAX_PROFILE else 0) for p in purposes]


def combined_outcome(statuses: list[str]) -> str:
    """Accepted when any profile was accepted, else the first failure."""
    if ACCEPTED in statuses:
        return ACCEPTED
    return statuses[0] if statuses else ACCEPTED


def combined_clear_outcome(statuses: list[str]) -> str:
    """Accepted when any profile was removed; Unknown when none was there."""
    if ACCEPTED in statuses:
        return ACCEPTED
    failures = [s for s in statuses if s != "Unknown"]
    return failures[0] if failures else "Unknown"


def limit_key(cp_id: str, connector_id: int, unit: str) -> str:
    if connector_id == 0:
        return f"{cp_id}{SEP}ChargingLimit{SEP}{unit}"
    return f"{cp_id}{SEP}ChargingLimit{SEP}{connector_id}{SEP}{unit}"


def limit_datapoints(
    cp_id: str, connector_id: int, limit_w: float | None, rate: Rate | None, now: int
) -> list[Datapoint]:
    """`…ChargingLimit…__W`, and `…__A` where A was sent; both None once cleared."""
    points = [Datapoint(limit_key(cp_id, connector_id, "W"), limit_w, now)]
    if rate is None or rate.unit == "A":
        points.append(
            Datapoint(limit_key(cp_id, connector_id, "A"), rate.limit if rate else None, now)
        )
    return points
