"""Drops implausible falls of the energy register (README "Charging control").

Stations glitch: a register that reads 0 for one sample, or a session value
reported where the register belongs. Passed on, one such value makes a
building's energy balance jump by the whole register. A value lower than the
last one published for the same key is dropped; after a BootNotification or
a new transaction on the connector, the next value is accepted again.
"""

from __future__ import annotations

from connector.core.datapoints import SEP, Datapoint

REGISTER = f"{SEP}Energy.Active.Import.Register{SEP}"


class EnergyGuard:
    def __init__(self, enabled: bool = True) -> None:
        self.enabled = enabled
        # connectorId -> key -> last value published
        self._last: dict[int, dict[str, float]] = {}

    def filter(
        self, connector_id: int, points: list[Datapoint]
    ) -> tuple[list[Datapoint], list[Datapoint]]:
        """(kept, dropped), in the order given."""
        if not self.enabled:
            return points, []
        kept: list[Datapoint] = []
        dropped: list[Datapoint] = []
        last = self._last.setdefault(connector_id, {})
        for point in points:
            value = point.value
            if (
                REGISTER in point.key
                and isinstance(value, int | float)
                and not isinstance(value, bool)
            ):
                previous = last.get(point.key)
                if previous is not None and value < previous:
                    dropped.append(point)
                    continue
                last[point.key] = value
            kept.append(point)
        return kept, dropped

    def reset(self, connector_id: int | None = None) -> None:
        """Accept the next value again: of one connector, or of all after a boot."""
        if connector_id is None:
            self._last.clear()
        else:
            self._last.pop(connector_id, None)
