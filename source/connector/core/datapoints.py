"""Pure, version-neutral: datapoint keys and values, and meter values.

No I/O here. Keys follow README "Datapoint keys": `<cp>__<Name>[__<connectorId>][__<field>]`.
Meter values are mapped from the neutral shape of a sampled value (OCPP
1.6's: `value` as sent, `measurand`, `phase`, `location`, `unit`), into
which each version family brings its own (ocpp16/mapping.py takes 1.6's as
it is, ocpp2/mapping.py converts 2.x's), so the same reading gets the same
key whatever the version. The functions never raise on odd content: they
skip it and say why.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, NamedTuple

Scalar = str | int | float | bool | None


class Datapoint(NamedTuple):
    key: str
    value: Scalar
    timestamp: int  # ms since 1970-01-01 UTC


class Mapped(NamedTuple):
    datapoints: list[Datapoint]
    problems: list[str]  # samples that were skipped, and why


SEP = "__"
DEFAULT_MEASURAND = "Energy.Active.Import.Register"
DEFAULT_LOCATION = "Outlet"

# unit as sent (lower case) -> (canonical unit, function to convert the value)
_UNIT_CONVERSIONS: dict[str, tuple[str, Any]] = {
    "wh": ("Wh", lambda v: v),
    "kwh": ("Wh", lambda v: v * 1000),
    "varh": ("varh", lambda v: v),
    "kvarh": ("varh", lambda v: v * 1000),
    "w": ("W", lambda v: v),
    "kw": ("W", lambda v: v * 1000),
    "var": ("var", lambda v: v),
    "kvar": ("var", lambda v: v * 1000),
    "va": ("VA", lambda v: v),
    "kva": ("VA", lambda v: v * 1000),
    "a": ("A", lambda v: v),
    "v": ("V", lambda v: v),
    "hz": ("Hz", lambda v: v),
    "celsius": ("Celsius", lambda v: v),
    "k": ("Celsius", lambda v: v - 273.15),
    "fahrenheit": ("Celsius", lambda v: (v - 32) * 5 / 9),
    "percent": ("Percent", lambda v: v),
}

# OCPP 1.6 says a missing unit means Wh. That is only right for energy; a
# station that leaves the unit out of a voltage reading means volts.
_NATURAL_UNIT: dict[str, str | None] = {
    "Energy.Active.Export.Register": "Wh",
    "Energy.Active.Import.Register": "Wh",
    "Energy.Reactive.Export.Register": "varh",
    "Energy.Reactive.Import.Register": "varh",
    "Energy.Active.Export.Interval": "Wh",
    "Energy.Active.Import.Interval": "Wh",
    "Energy.Reactive.Export.Interval": "varh",
    "Energy.Reactive.Import.Interval": "varh",
    "Power.Active.Export": "W",
    "Power.Active.Import": "W",
    "Power.Offered": "W",
    "Power.Reactive.Export": "var",
    "Power.Reactive.Import": "var",
    "Current.Export": "A",
    "Current.Import": "A",
    "Current.Offered": "A",
    "Voltage": "V",
    "Frequency": "Hz",
    "Temperature": "Celsius",
    "SoC": "Percent",
    # Dimensionless: their keys carry no unit.
    "Power.Factor": None,
    "RPM": None,
}


def parse_timestamp(text: Any) -> int | None:
    """ISO 8601 -> ms since epoch; None when missing or unparseable.

    A timestamp without a zone is taken as UTC, which is what OCPP requires.
    """
    if not isinstance(text, str) or not text:
        return None
    try:
        parsed = datetime.fromisoformat(text.strip())
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return int(parsed.timestamp() * 1000)


def parse_number(text: Any) -> int | float | None:
    """A sampled value string -> int or float; None when not a finite number.

    Everything here costs time bounded by the frame's size: an integer too
    large for a float (400 digits, say) is refused before any arithmetic.
    """
    if isinstance(text, bool):
        return None
    try:
        if isinstance(text, int | float):
            number: float = float(text)
        elif isinstance(text, str):
            number = float(text.strip())
        else:
            return None
    except (ValueError, OverflowError):
        return None
    if not math.isfinite(number):
        return None
    return tidy_number(number)


def shown(value: Any, limit: int = 40) -> str:
    """A station's value for a log line: short, whatever the station sent."""
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 64:
        return f"<an integer of {value.bit_length()} bits>"
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def tidy_number(number: float) -> int | float:
    # Scaling 12.345 kWh by 1000 gives 12345.000000000002; round the float
    # noise away and keep integers as integers.
    rounded = round(number, 6)
    if rounded == int(rounded) and abs(rounded) < 2**53:
        return int(rounded)
    return rounded


def make_key(*parts: Any) -> str:
    """`<cp>__<Name>[__<connectorId>][__<field>]` from its parts."""
    return SEP.join(str(p) for p in parts)


def fields_to_datapoints(
    prefix: str, payload: Mapping[str, Any], timestamp: int, skip: Iterable[str] = ()
) -> list[Datapoint]:
    """One datapoint per scalar field: `<prefix>__<field>`."""
    skipped = set(skip)
    return [
        Datapoint(make_key(prefix, name), value, timestamp)
        for name, value in payload.items()
        if name not in skipped and is_scalar(value)
    ]


def is_scalar(value: Any) -> bool:
    if isinstance(value, float):
        return math.isfinite(value)
    return value is None or isinstance(value, str | int | bool)


def heartbeat(cp_id: str, now: int) -> list[Datapoint]:
    return [Datapoint(make_key(cp_id, "Heartbeat"), now, now)]


def connected(cp_id: str, is_connected: bool, now: int) -> list[Datapoint]:
    return [Datapoint(make_key(cp_id, "connected"), is_connected, now)]


def upstream(cp_id: str, is_connected: bool, now: int) -> list[Datapoint]:
    """`<cp>__upstream`: the station's own backend is connected (README "Keeping a
    station's own backend")."""
    return [Datapoint(make_key(cp_id, "upstream"), is_connected, now)]


def command_status(cp_id: str, command: str, status: str, now: int) -> list[Datapoint]:
    return [Datapoint(make_key(cp_id, command, "status"), status, now)]


def sampled_value_key(cp_id: str, connector_id: int, sampled: Mapping[str, Any]) -> str | None:
    """The key of one sampled value, or None when its unit is unknown."""
    measurand = sampled.get("measurand") or DEFAULT_MEASURAND
    unit = _canonical_unit(measurand, sampled.get("unit"))
    if unit is False:
        return None
    parts: list[Any] = [cp_id, "MeterValues", connector_id, measurand]
    if sampled.get("phase"):
        parts.append(sampled["phase"])
    location = sampled.get("location") or DEFAULT_LOCATION
    if location != DEFAULT_LOCATION:
        parts.append(location)
    if unit:
        parts.append(unit)
    return make_key(*parts)


def _canonical_unit(measurand: str, unit: Any) -> str | bool | None:
    """Canonical unit name; None for dimensionless; False when unknown."""
    if unit is None or unit == "":
        return _NATURAL_UNIT.get(measurand, "Wh")
    if not isinstance(unit, str):
        return False
    conversion = _UNIT_CONVERSIONS.get(unit.lower())
    return conversion[0] if conversion else False


def convert_value(measurand: str, unit: Any, value: float) -> int | float | None:
    """The value in the canonical unit; None when that is no finite number
    (1e308 kWh is more than a float holds in Wh)."""
    if unit is not None and unit != "":
        _, convert = _UNIT_CONVERSIONS[str(unit).lower()]
        value = convert(value)
    if not math.isfinite(value):
        return None
    return tidy_number(value)


def meter_values(
    cp_id: str,
    connector_id: int,
    meter_value: Sequence[Mapping[str, Any]],
    now: int,
    transaction_id: int | str | None = None,
) -> Mapped:
    """Every sampled value of every entry, in time order, unit-normalised.

    Each value carries its entry's own timestamp, or `now` when that is
    missing or cannot be parsed.
    """
    points: list[Datapoint] = []
    problems: list[str] = []
    stamped = [(parse_timestamp(entry.get("timestamp")) or now, entry) for entry in meter_value]
    # sorted() is stable: entries with equal times keep the station's order.
    for timestamp, entry in sorted(stamped, key=lambda pair: pair[0]):
        for sampled in entry.get("sampledValue") or []:
            key = sampled_value_key(cp_id, connector_id, sampled)
            if key is None:
                problems.append(f"unknown unit {shown(sampled.get('unit'))}")
                continue
            number = parse_number(sampled.get("value"))
            if number is None:
                problems.append(f"{key}: value {shown(sampled.get('value'))} is not a number")
                continue
            measurand = sampled.get("measurand") or DEFAULT_MEASURAND
            converted = convert_value(measurand, sampled.get("unit"), number)
            if converted is None:
                problems.append(
                    f"{key}: value {shown(sampled.get('value'))} {sampled.get('unit')} cannot be "
                    "represented in the canonical unit"
                )
                continue
            points.append(Datapoint(key, converted, timestamp))
    if transaction_id is not None:
        points.append(
            Datapoint(
                make_key(cp_id, "MeterValues", connector_id, "transactionId"), transaction_id, now
            )
        )
    return Mapped(points, problems)
