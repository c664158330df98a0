"""The charging limits users asked for, per station and connector.

A limit is a number of W, or None while a clear still has to reach the
station. Each station's limits are kept retained on the broker at
`<name>/state/charging_limits/<cp id, percent-encoded>`, so a restarted
connector (a new container, no volume) applies them again. One topic per
station keeps each update as small as that station's limits, however many
stations the site has.
"""

from __future__ import annotations

import json
import math
from typing import Any
from urllib.parse import quote, unquote

from connector.core.commands import MAX_CONNECTOR_ID, MAX_POWER_W

STATE_PREFIX = "charging_limits/"


def state_name(cp_id: str) -> str:
    # A percent-decoded station id may hold '/', '+' or '#', which would
    # change the topic's meaning.
    return STATE_PREFIX + quote(cp_id, safe="")


def cp_id_of(name: str) -> str | None:
    """The station id of a state name, or None when it is not one of ours."""
    if not name.startswith(STATE_PREFIX) or len(name) == len(STATE_PREFIX):
        return None
    return unquote(name[len(STATE_PREFIX) :])


def decode(payload: bytes) -> dict[int, float | None] | None:
    """A retained state payload -> limits; None when it is not valid."""
    try:
        decoded = json.loads(payload.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        return None
    if not isinstance(decoded, dict):
        return None
    limits: dict[int, float | None] = {}
    for key, value in decoded.items():
        if not (
            isinstance(key, str)
            and key.isascii()
            and key.isdigit()
            and int(key) <= MAX_CONNECTOR_ID
        ):
            return None
        if value is not None and (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not math.isfinite(value)
            or not 0 <= value <= MAX_POWER_W
        ):
            return None
        limits[int(key)] = value
    return limits


def encode(limits: dict[int, float | None]) -> dict[str, Any]:
    return {str(connector_id): limit for connector_id, limit in sorted(limits.items())}


class LimitStore:
    def __init__(self) -> None:
        self._limits: dict[str, dict[int, float | None]] = {}
        # Bumped on every change of a (station, connector), so an apply that
        # was overtaken by a newer value can tell and step aside.
        self._generation: dict[tuple[str, int], int] = {}

    def set(self, cp_id: str, connector_id: int, limit: float | None) -> int:
        self._limits.setdefault(cp_id, {})[connector_id] = limit
        key = (cp_id, connector_id)
        self._generation[key] = self._generation.get(key, 0) + 1
        return self._generation[key]

    def get(self, cp_id: str, connector_id: int) -> tuple[float | None, int] | None:
        """(limit, generation), or None when there is nothing to apply."""
        limits = self._limits.get(cp_id, {})
        if connector_id not in limits:
            return None
        return limits[connector_id], self._generation.get((cp_id, connector_id), 0)

    def is_current(self, cp_id: str, connector_id: int, generation: int) -> bool:
        return self._generation.get((cp_id, connector_id), 0) == generation

    def cleared(self, cp_id: str, connector_id: int, generation: int) -> bool:
        """Forget a clear that reached the station; False if a new value came meanwhile."""
        if not self.is_current(cp_id, connector_id, generation):
            return False
        limits = self._limits.get(cp_id, {})
        limits.pop(connector_id, None)
        if not limits:
            self._limits.pop(cp_id, None)
        return True

    def connectors(self, cp_id: str) -> list[int]:
        return sorted(self._limits.get(cp_id, {}))

    def of_station(self, cp_id: str) -> dict[int, float | None]:
        return dict(self._limits.get(cp_id, {}))

    def restore(self, cp_id: str, limits: dict[int, float | None]) -> bool:
        """Take limits kept on the broker, unless this run already has its own."""
        if cp_id in self._limits or not limits:
            return False
        for connector_id, limit in limits.items():
            self.set(cp_id, connector_id, limit)
        return True
