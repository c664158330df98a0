"""Pure: the voltage and the number of phases a station's meter values show.

Used to turn a limit in W into A for stations that only accept A (README "Charging control").

- Voltage: the latest phase-to-neutral (or unlabelled) Voltage between 50 and
  500 V. Phase-to-phase readings (`L1-L2`, 400 V) would overstate it.
- Phases: the distinct phases L1-L3 in the latest entry that reports any, from
  per-phase Current.Import, else per-phase Power.Active.Import. When some
  phases carry current (1 A, or 100 W, or more) and others do not, only those
  carrying count: a single-phase car on a three-phase station draws on one
  phase. Voltages are not counted: they show the installation's phases, not
  the car's, and too few phases would raise the current above the limit.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from connector.core.charging_profiles import plausible_voltage
from connector.core.datapoints import parse_number, parse_timestamp

_PHASES = {"L1": "L1", "L2": "L2", "L3": "L3", "L1-N": "L1", "L2-N": "L2", "L3-N": "L3"}
_LINE_TO_LINE = {"L1-L2", "L2-L3", "L3-L1"}
# Units that make sense per measurand (empty: the natural unit) -> factor to
# the natural unit.
_UNITS: dict[str, dict[str, float]] = {
    "Voltage": {"": 1, "v": 1},
    "Current.Import": {"": 1, "a": 1},
    "Power.Active.Import": {"": 1, "w": 1, "kw": 1000},
}
# Per measurand, in order of trust for counting phases: the level at which a
# phase counts as carrying.
_PHASE_SOURCES: tuple[tuple[str, float], ...] = (
    ("Current.Import", 1.0),
    ("Power.Active.Import", 100.0),
)


@dataclass(frozen=True)
class Measured:
    voltage: float | None = None
    phases: int | None = None


def measure(meter_value: Sequence[Mapping[str, Any]]) -> Measured:
    """What the latest entries of one MeterValues say; None where they say nothing."""
    voltage: float | None = None
    phases: int | None = None
    stamped = [(parse_timestamp(e.get("timestamp")) or 0, i, e) for i, e in enumerate(meter_value)]
    for _, _, entry in sorted(stamped):  # later entries overwrite earlier ones
        # measurand -> phase -> value
        per_phase: dict[str, dict[str, float]] = {}
        for sampled in entry.get("sampledValue") or []:
            measurand = sampled.get("measurand") or ""
            phase = sampled.get("phase")
            number = parse_number(sampled.get("value"))
            factor = _UNITS.get(measurand, {}).get(str(sampled.get("unit") or "").lower())
            if number is None or factor is None:
                continue  # not a reading we use, or in a unit that makes no sense for it
            value = float(number) * factor
            if measurand == "Voltage" and (phase in _LINE_TO_LINE or not plausible_voltage(value)):
                continue
            if measurand == "Voltage":
                voltage = value
            if phase in _PHASES and measurand != "Voltage":
                readings = per_phase.setdefault(measurand, {})
                readings[_PHASES[phase]] = max(readings.get(_PHASES[phase], 0.0), value)
        for measurand, carrying_at in _PHASE_SOURCES:
            found = per_phase.get(measurand)
            if found:
                carrying = [p for p, v in found.items() if v >= carrying_at]
                phases = len(carrying) if carrying else len(found)
                break
    return Measured(voltage, phases)


class Electrical:
    """Per station: the latest voltage and phases seen on each connector."""

    def __init__(self) -> None:
        self._by_connector: dict[int, Measured] = {}
        self._latest: int | None = None

    def observe(self, connector_id: int, measured: Measured) -> None:
        if measured.voltage is None and measured.phases is None:
            return
        old = self._by_connector.get(connector_id, Measured())
        self._by_connector[connector_id] = Measured(
            measured.voltage if measured.voltage is not None else old.voltage,
            measured.phases if measured.phases is not None else old.phases,
        )
        self._latest = connector_id

    def get(self, connector_id: int) -> Measured:
        """A connector's values. The grid voltage is shared, so a connector
        without a reading of its own uses the one seen last on the station;
        phases are the connector's own (the station level uses the latest)."""
        own = self._by_connector.get(connector_id, Measured())
        latest = (
            self._by_connector.get(self._latest, Measured())
            if self._latest is not None
            else Measured()
        )
        voltage = own.voltage if own.voltage is not None else latest.voltage
        phases = own.phases
        if phases is None and connector_id == 0:
            phases = latest.phases
        return Measured(voltage, phases)
