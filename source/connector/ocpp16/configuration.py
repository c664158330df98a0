"""Pure: an OCPP 1.6 station's configuration keys -> what it can do (core/capabilities.py).

Real stations answer GetConfiguration in many spellings; everything here is
lenient and never raises on a station's answer. Keys that hold secrets are
never published (core/secrets.py).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from connector.core.capabilities import (
    Capabilities,
    parse_bool,
    parse_int,
    parse_rate_units,
    split_list,
)
from connector.core.datapoints import SEP, Datapoint
from connector.core.secrets import is_secret

RATE_UNIT_KEY = "ChargingScheduleAllowedChargingRateUnit"
MAX_STACK_LEVEL_KEY = "ChargeProfileMaxStackLevel"
CONNECTORS_KEY = "NumberOfConnectors"
FEATURE_PROFILES_KEY = "SupportedFeatureProfiles"
SAMPLED_DATA_KEY = "MeterValuesSampledData"
SAMPLE_INTERVAL_KEY = "MeterValueSampleInterval"
# Read when the station lists it; not asked for by name (most stations lack it).
PHASE_SWITCH_KEY = "ConnectorSwitch3to1PhaseSupported"

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
        switches_to_one_phase=parse_bool(lookup(config, PHASE_SWITCH_KEY)),
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
