"""Pure: what the status page shows (README "Operations"), from the keys the connector holds.

Every figure is read from the latest value of a datapoint key, by its exact
name: nothing is scanned per station, so a page of 100 stations costs the
same at 30 or at 3,000 stations. Stations are listed in id order, filtered
by a part of their id, and paged.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from connector.core.datapoints import SEP

PAGE_SIZE = 100
MAX_PAGE_SIZE = 500
# The keys of a station's identity, in 1.6 and in 2.x words.
VENDOR = ("BootNotification__chargePointVendor", "BootNotification__chargingStation.vendorName")
MODEL = ("BootNotification__chargePointModel", "BootNotification__chargingStation.model")
FIRMWARE = (
    "BootNotification__firmwareVersion",
    "BootNotification__chargingStation.firmwareVersion",
)
STATUS = ("status", "connectorStatus")
ENERGY = "Energy.Active.Import.Register__Wh"
POWER = "Power.Active.Import__W"

Latest = Callable[[str], Any]


@dataclass
class Presence:
    """A station as the connector last saw it (this instance)."""

    version: str
    connected: bool
    since: int  # ms: when it connected or left
    connectors: tuple[int, ...] = ()
    upstream: bool | None = None  # its own backend connected; None: not forwarded


@dataclass
class Group:
    name: str
    limit_w: float | None
    allocated_w: float | None
    measured_w: float | None
    allocations: list[dict[str, Any]] = field(default_factory=list)


def _first(latest: Latest, cp_id: str, names: Iterable[str]) -> Any:
    for name in names:
        value = latest(f"{cp_id}{SEP}{name}")
        if value is not None:
            return value
    return None


def station_entry(cp_id: str, presence: Presence, latest: Latest) -> dict[str, Any]:
    connectors = []
    for number in presence.connectors:
        prefix = f"StatusNotification{SEP}{number}{SEP}"
        meter = f"MeterValues{SEP}{number}{SEP}"
        connectors.append(
            {
                "id": number,
                "status": _first(latest, cp_id, (prefix + s for s in STATUS)),
                "energy_wh": latest(f"{cp_id}{SEP}{meter}{ENERGY}"),
                "power_w": latest(f"{cp_id}{SEP}{meter}{POWER}"),
                "limit_w": latest(f"{cp_id}{SEP}ChargingLimit{SEP}{number}{SEP}W"),
            }
        )
    return {
        "id": cp_id,
        "ocpp": presence.version,
        "connected": presence.connected,
        "since": presence.since,
        "vendor": _first(latest, cp_id, VENDOR),
        "model": _first(latest, cp_id, MODEL),
        "firmware": _first(latest, cp_id, FIRMWARE),
        "upstream": presence.upstream,
        "status": _first(latest, cp_id, (f"StatusNotification{SEP}0{SEP}{s}" for s in STATUS)),
        "limit_w": latest(f"{cp_id}{SEP}ChargingLimit{SEP}W"),
        "connectors": connectors,
    }


def page(
    presence: dict[str, Presence],
    latest: Latest,
    number: int = 1,
    size: int = PAGE_SIZE,
    search: str = "",
) -> dict[str, Any]:
    """One page of stations, in id order; `search`: a part of the id, any case."""
    ids = matching(presence, search)
    chosen, paging = paged(ids, number, size)
    return {
        "total": len(presence),
        "matching": len(ids),
        "connected": sum(1 for p in presence.values() if p.connected),
        **paging,
        "items": [station_entry(cp, presence[cp], latest) for cp in chosen],
    }


def matching(ids: Iterable[str], search: str) -> list[str]:
    """The ids that hold `search` (any case), sorted."""
    needle = search.casefold()
    return sorted(cp for cp in ids if needle in cp.casefold()) if needle else sorted(ids)


def paged(items: list[Any], number: int, size: int) -> tuple[list[Any], dict[str, int]]:
    """One page of `items` (a page beyond the last is the last), and its numbers."""
    size = max(1, min(size, MAX_PAGE_SIZE))
    pages = max(1, -(-len(items) // size))
    number = max(1, min(number, pages))
    chosen = items[(number - 1) * size : number * size]
    return chosen, {"page": number, "pages": pages, "size": size}


def group_entry(group: Group) -> dict[str, Any]:
    return {
        "name": group.name,
        "limit_w": group.limit_w,
        "allocated_w": group.allocated_w,
        "measured_w": group.measured_w,
        "allocations": group.allocations,
    }


def every(presence: dict[str, Presence], latest: Latest, search: str) -> dict[str, Any]:
    """Every station that matches, unpaged: what one worker gives the
    supervisor, which pages over all workers' (merged in `merge`)."""
    ids = matching(presence, search)
    return {
        "total": len(presence),
        "matching": len(ids),
        "connected": sum(1 for p in presence.values() if p.connected),
        "items": [station_entry(cp, presence[cp], latest) for cp in ids],
    }


def merge(parts: list[dict[str, Any]], number: int, size: int, search: str = "") -> dict[str, Any]:
    """The workers' `every`, as one page. A station seen by several workers
    (it moved) is shown as the one that holds it now, else the latest seen."""
    best: dict[str, dict[str, Any]] = {}
    for part in parts:
        for item in part["items"]:
            known = best.get(item["id"])
            if known is None or (item["connected"], item["since"]) > (
                known["connected"],
                known["since"],
            ):
                best[item["id"]] = item
    ids = sorted(best)
    chosen, paging = paged(ids, number, size)
    return {
        # A station that moved is in two workers' totals; without a search
        # the merged list is all of them, exactly.
        "total": len(best) if not search else sum(part["total"] for part in parts),
        "matching": len(ids),
        "connected": sum(1 for item in best.values() if item["connected"]),
        **paging,
        "items": [best[cp] for cp in chosen],
    }
