"""A budget of sensor keys per station (OCPP_MAX_KEYS_PER_STATION).

A real 1.6 station has tens of keys, and a 2.x station's full device model a
few thousand. A station that invents keys (hundreds of connector ids, every
measurand, phase and location) would otherwise grow the connector's memory
and `available_datapoints` without bound. Keys beyond the budget are dropped,
with one WARNING per station; keys already known keep updating.
"""

from __future__ import annotations

import logging

from connector.core.datapoints import SEP

log = logging.getLogger(__name__)


def station_of(key: str) -> str:
    """The station id of a key: ids never contain the separator (CONTRACT §3)."""
    return key.split(SEP, 1)[0]


class KeyBudget:
    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._counts: dict[str, int] = {}
        self._warned: set[str] = set()

    def admit(self, key: str) -> bool:
        """Whether a key not seen before may be added; counts it when it may."""
        cp_id = station_of(key)
        count = self._counts.get(cp_id, 0)
        if count < self.limit:
            self._counts[cp_id] = count + 1
            return True
        if cp_id not in self._warned:
            self._warned.add(cp_id)
            log.warning(
                "%s: reached OCPP_MAX_KEYS_PER_STATION (%d keys); its new keys are dropped, "
                "the known ones keep updating. Raise the budget if the station really "
                "reports this much",
                cp_id,
                self.limit,
            )
        return False
