"""Pure: what a station can do for charging control, whatever its version.

Real stations report it in many spellings: `Current,Power`, `power`, `W`,
`["Current"]`, `Current;Power`, nothing at all, numbers with spaces. The
parsers here are lenient and never raise on a station's answer; what cannot
be understood counts as unknown. Each version family reads its own source
(1.6: configuration keys, ocpp16/configuration.py; 2.x: device model
variables, ocpp2/station.py) into a Capabilities.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

_UNIT_WORDS = {"current": "A", "a": "A", "power": "W", "w": "W"}
_LIST_SEPARATORS = re.compile(r"[\s,;|\[\]\"']+")


@dataclass(frozen=True)
class Capabilities:
    """What a station said about itself; None where it said nothing usable."""

    # README "Charging control": a missing rate unit key means Current.
    rate_units: frozenset[str] = frozenset({"A"})
    max_stack_level: int | None = None
    number_of_connectors: int | None = None
    feature_profiles: frozenset[str] | None = None
    sampled_data: tuple[str, ...] | None = None
    sample_interval: int | None = None
    # It can switch a connector from three phases to one (1.6:
    # ConnectorSwitch3to1PhaseSupported; 2.x: SmartChargingCtrlr.Phases3to1).
    switches_to_one_phase: bool = False

    @property
    def allows_power(self) -> bool:
        return "W" in self.rate_units

    @property
    def lacks_smart_charging(self) -> bool:
        """True only when the station listed its profiles without SmartCharging."""
        return self.feature_profiles is not None and "smartcharging" not in self.feature_profiles


def split_list(raw: Any) -> list[str]:
    """`"a,b"`, `"a; b"`, `"a b"`, `'["a","b"]'` -> `["a", "b"]`."""
    if not isinstance(raw, str):
        return []
    return [part for part in _LIST_SEPARATORS.split(raw) if part]


def parse_rate_units(raw: Any) -> frozenset[str]:
    """The chargingRateUnits a station allows; `{"A"}` when it names none we know."""
    units = frozenset(_UNIT_WORDS[p.lower()] for p in split_list(raw) if p.lower() in _UNIT_WORDS)
    return units or frozenset({"A"})


def parse_bool(raw: Any) -> bool:
    """`"true"`, `"True"`, `"1"` -> True; anything else, unknown included, False."""
    return isinstance(raw, str) and raw.strip().lower() in ("true", "1")


def parse_int(raw: Any) -> int | None:
    """`"8"`, `" 8 "`, `"8.0"` -> 8; anything else (or negative) -> None."""
    if not isinstance(raw, str):
        return None
    try:
        number = float(raw.strip())
    except ValueError:
        return None
    if not number.is_integer() or number < 0 or number > 2**31 - 1:
        return None
    return int(number)


# What the connector may write to a station's sampling (station_setup.py):
# OCPP_METER_VALUES_SAMPLED_DATA and OCPP_METER_VALUE_SAMPLE_INTERVAL.
SAMPLED_DATA = "sampled_data"
SAMPLE_INTERVAL = "sample_interval"


def sampling_changes(
    caps: Capabilities,
    sampled_data: tuple[str, ...] | None,
    sample_interval: int | None,
) -> list[tuple[str, str]]:
    """The settings to write so that the station samples what the operator set:
    (SAMPLED_DATA or SAMPLE_INTERVAL, value). Only what differs from what the
    station reported is written, so a station is not told the same thing at
    every boot."""
    changes: list[tuple[str, str]] = []
    if sampled_data is not None and _folded(caps.sampled_data) != _folded(sampled_data):
        changes.append((SAMPLED_DATA, ",".join(sampled_data)))
    if sample_interval is not None and caps.sample_interval != sample_interval:
        changes.append((SAMPLE_INTERVAL, str(sample_interval)))
    return changes


def _folded(items: tuple[str, ...] | None) -> frozenset[str] | None:
    return None if items is None else frozenset(item.lower() for item in items)
