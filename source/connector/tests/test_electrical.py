"""Pure, table-driven tests of reading voltage and phases from meter values."""

from __future__ import annotations

from typing import Any

import pytest

from connector.core.electrical import Electrical, Measured, measure


def sample(measurand: str, value: str, phase: str | None = None, unit: str | None = None) -> dict:
    sampled: dict[str, Any] = {"measurand": measurand, "value": value}
    if phase:
        sampled["phase"] = phase
    if unit:
        sampled["unit"] = unit
    return sampled


def entry(*sampled: dict, timestamp: str = "2026-01-01T00:00:00Z") -> dict:
    return {"timestamp": timestamp, "sampledValue": list(sampled)}


@pytest.mark.parametrize(
    ("meter_value", "expected"),
    [
        ([entry(sample("Energy.Active.Import.Register", "10"))], Measured()),
        ([entry(sample("Voltage", "231.5", "L1-N", "V"))], Measured(231.5, None)),
        ([entry(sample("Voltage", "229"))], Measured(229, None)),  # no unit, no phase
        ([entry(sample("Voltage", "0.23", unit="kW"))], Measured()),  # not a voltage unit
        ([entry(sample("Voltage", "400", "L1-L2", "V"))], Measured()),  # phase to phase
        ([entry(sample("Voltage", "12", "L1-N", "V"))], Measured()),  # implausible
        ([entry(sample("Voltage", "600", "L1-N", "V"))], Measured()),
        (
            [entry(*(sample("Current.Import", "16", p, "A") for p in ("L1", "L2", "L3")))],
            Measured(None, 3),
        ),
        # A single-phase car on a three-phase station: one phase carries current.
        (
            [
                entry(
                    sample("Current.Import", "16", "L1", "A"),
                    sample("Current.Import", "0.2", "L2", "A"),
                    sample("Current.Import", "0", "L3", "A"),
                )
            ],
            Measured(None, 1),
        ),
        # Idle: no phase carries current, so all reported phases count.
        (
            [entry(*(sample("Current.Import", "0", p, "A") for p in ("L1", "L2", "L3")))],
            Measured(None, 3),
        ),
        ([entry(sample("Current.Import", "16", unit="A"))], Measured()),  # no phase: no count
        # No per-phase current: per-phase power, with the same carrying rule.
        (
            [
                entry(
                    sample("Power.Active.Import", "3.6", "L1", "kW"),
                    sample("Power.Active.Import", "0", "L2", "W"),
                    sample("Power.Active.Import", "0", "L3", "W"),
                )
            ],
            Measured(None, 1),
        ),
        # Voltages show the installation's phases, not the car's: not counted.
        (
            [entry(*(sample("Voltage", "230", p, "V") for p in ("L1-N", "L2-N", "L3-N")))],
            Measured(230, None),
        ),
        # Current wins over power.
        (
            [
                entry(
                    sample("Power.Active.Import", "3000", "L1", "W"),
                    *(sample("Current.Import", "10", p, "A") for p in ("L1", "L2", "L3")),
                )
            ],
            Measured(None, 3),
        ),
        # The latest entry wins, whatever order the station sent them in.
        (
            [
                entry(sample("Voltage", "240"), timestamp="2026-01-01T00:01:00Z"),
                entry(sample("Voltage", "230"), timestamp="2026-01-01T00:00:00Z"),
            ],
            Measured(240, None),
        ),
    ],
)
def test_measure(meter_value: list[dict], expected: Measured) -> None:
    assert measure(meter_value) == expected


def test_electrical_keeps_the_latest_per_connector() -> None:
    electrical = Electrical()
    assert electrical.get(1) == Measured()
    electrical.observe(1, Measured(231, 3))
    electrical.observe(1, Measured(None, 1))  # a reading without voltage keeps the old one
    assert electrical.get(1) == Measured(231, 1)
    electrical.observe(2, Measured(229, None))
    # Voltage is shared across the station; phases are per connector.
    assert electrical.get(3) == Measured(229, None)
    assert electrical.get(2) == Measured(229, None)
    assert electrical.get(0) == Measured(229, None)  # the connector seen last
    electrical.observe(1, Measured(None, 2))
    assert electrical.get(0) == Measured(231, 2)
