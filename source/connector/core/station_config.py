"""Pure: a station's configuration keys -> what it can do for charging control.

Real stations answer GetConfiguration in many spellings: `Current,Power`,
`power`, `W`, `["Current"]`, `Current;Power`, a missing key, numbers with
spaces. Everything here is lenient and never raises on a station's answer;
what cannot be understood counts as unknown.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from connector.core.datapoints import SEP, Datapoint
from connector.core.secrets import is_secret

RATE_UNIT_KEY = "ChargingScheduleAllowedChargingRateUnit"
MAX_STACK_LEVEL_KEY = "ChargeProfileMaxStackLevel"
CONNECTORS_KEY = "NumberOfConnectors"
FEATURE_PROFILES_KEY = "SupportedFeatureProfiles"
SAMPLED_DATA_KEY = "MeterValuesSampledData"
SAMPLE_INTERVAL_KEY = "MeterValueSampleInterval"

# Asked for by name when the answer for all keys leaves them out: some
# stations only report smart-charging keys when asked for them explicitly.
LEARNED_KEYS: tuple[str, ...] = (
    RATE_UNIT_KEY,
    MAX_STACK_LEVEL_KEY,
    CONNECTORS_KEY,
    FEATURE_PROFILES_KEY,
    SAMPLED_DATA_KEY,
    SAMPLE_INTERVAL_KEY,
)

_UNIT_WORDS = {"current": "A", "a": "A", "power": "W", "w": "W"}
_LIST_SEPARATORS = re.compile(r"[\s,;|\[\]\"']+")


@dataclass(frozen=True)
class Capabilities:
    """What a station said about itself; None where it said nothing usable."""

    # CONTRACT §5: a missing rate unit key means Current.
    rate_units: frozenset[str] = frozenset({"A"})
    max_stack_level: int | None = None
    number_of_connectors: int | None = None
    feature_profiles: frozenset[str] | None = None
    sampled_data: tuple[str, ...] | None = None
    sample_interval: int | None = None

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


def read_configuration(answer: Mapping[str, Any]) -> dict[str, str | None]:
    """A GetConfiguration answer -> {key: value}; a key without a value maps to None."""
    entries = answer.get("configurationKey") or []
    return {entry["key"]: entry.get("value") for entry in entries if isinstance(entry, dict)}


def lookup(config: Mapping[str, str | None], key: str) -> str | None:
    """A value by key, ignoring case: a few stations spell keys their own way."""
    if key in config:
        return config[key]
    lowered = key.lower()
    for name, value in config.items():
        if name.lower() == lowered:
            return value
    return None


def missing_keys(config: Mapping[str, str | None]) -> list[str]:
    lowered = {name.lower() for name in config}
    return [key for key in LEARNED_KEYS if key.lower() not in lowered]


def capabilities(config: Mapping[str, str | None]) -> Capabilities:
    profiles = lookup(config, FEATURE_PROFILES_KEY)
    sampled = lookup(config, SAMPLED_DATA_KEY)
    return Capabilities(
        rate_units=parse_rate_units(lookup(config, RATE_UNIT_KEY)),
        max_stack_level=parse_int(lookup(config, MAX_STACK_LEVEL_KEY)),
        number_of_connectors=parse_int(lookup(config, CONNECTORS_KEY)),
        feature_profiles=(
            frozenset(p.lower() for p in split_list(profiles)) if profiles is not None else None
        ),
        sampled_data=tuple(split_list(sampled)) if sampled is not None else None,
        sample_interval=parse_int(lookup(config, SAMPLE_INTERVAL_KEY)),
    )


def configuration_datapoints(
    cp_id: str, config: Mapping[str, str | None], now: int
) -> list[Datapoint]:
    """`<cp>__Configuration__<key>`, with the value as the station sent it (a string).
    Keys that hold secrets (`AuthorizationKey`, core/secrets.py) are left out."""
    return [
        Datapoint(f"{cp_id}{SEP}Configuration{SEP}{key}", value, now)
        for key, value in config.items()
        if not is_secret(key)
    ]


def metering_changes(
    caps: Capabilities,
    sampled_data: tuple[str, ...] | None,
    sample_interval: int | None,
) -> list[tuple[str, str]]:
    """The ChangeConfiguration calls that make the station sample what the operator set.

    Only keys that differ from what the station reported are written, so a
    station is not told the same thing at every boot.
    """
    changes: list[tuple[str, str]] = []
    if sampled_data is not None and _folded(caps.sampled_data) != _folded(sampled_data):
        changes.append((SAMPLED_DATA_KEY, ",".join(sampled_data)))
    if sample_interval is not None and caps.sample_interval != sample_interval:
        changes.append((SAMPLE_INTERVAL_KEY, str(sample_interval)))
    return changes


def _folded(items: Iterable[str] | None) -> frozenset[str] | None:
    return None if items is None else frozenset(item.lower() for item in items)
