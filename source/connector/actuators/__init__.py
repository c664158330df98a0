"""The actuators: one declaration each, one module each (README "Actuators",
"OCPP 2.0.1 and 2.1 stations").

An actuator module declares `ACTUATOR = Actuator(...)`: its name, the keys it
is offered on, an example value, one request builder per version family
(all with one signature: value, connector or EVSE id, version -> Request),
the datapoints an answer carries, what follows an answer, and how the bridge
routes it. This package collects every module's declaration; OCPP_CONFIG,
`available_datapoints`, the direct topics, Home Assistant discovery and the
README's command tables (checked by test_actuators.py) all read them here.

Adding an actuator is adding a module here (and a README row).
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from connector.core.commands import InvalidCommand
from connector.core.datapoints import SEP, Datapoint
from connector.core.ha_discovery import Control
from connector.versions import OCPP16, VERSIONS, Family, Feature, Version


class Scope(StrEnum):
    """Which keys an actuator is offered on."""

    STATION = "station"  # <cp>__<actuator> only
    CONNECTOR = "connector"  # <cp>__<actuator>__<connectorId> only
    BOTH = "both"


class Route(StrEnum):
    """Who carries a request out (bridge.py)."""

    # Sent to the station as it is; dropped, with a WARNING, while it is away.
    COMMAND = "command"
    # A charging limit: charging control keeps it while the station is away.
    LIMIT = "limit"
    # Charging control clears the profiles it set; dropped while the station is away.
    CLEAR = "clear"
    # No OCPP call: the connector acts on its own MQTT state.
    LOCAL = "local"


@dataclass(frozen=True)
class Request:
    action: str
    payload: dict[str, Any]
    # The actuator that built it: its answer's datapoints and follow-up. Two
    # requests are the same when they send the same call, whoever built them.
    actuator: str = field(default="", compare=False)


# (value, connectorId or EVSE id or None for the station key, version) -> Request
Builder = Callable[[Any, int | None, Version], Request]
# (cp id, request, answer, time) -> datapoints the answer carries
Results = Callable[[str, Request, dict[str, Any], int], list[Datapoint]]
# (station, request, status, answer) -> what follows an answer (a read-back, ...)
FollowUp = Callable[[Any, Request, str, dict[str, Any]], Awaitable[None]]
# (station, request, connectorId) -> the request to send now, or None for nothing
Prepare = Callable[[Any, Request, int | None], Request | None]


@dataclass(frozen=True)
class Actuator:
    name: str
    scope: Scope
    example: Any
    builders: Mapping[Family, Builder]
    # A family's own example where the values differ (2.x variable paths).
    examples: Mapping[Family, Any] = field(default_factory=dict)
    # A feature the station's version must have (versions.py).
    requires: Feature | None = None
    results: Results | None = None
    # The keys `results` makes, after `<cp>__`, with `{c}` for the connector:
    # offered with a null example from the start (README "Datapoint keys").
    result_names: Mapping[Family, tuple[str, ...]] = field(default_factory=dict)
    # Just before it is sent: fill in what only the station's state knows.
    prepare: Prepare | None = None
    follow_up: Mapping[Family, FollowUp] = field(default_factory=dict)
    route: Route = Route.COMMAND
    # Why it is dropped rather than kept while its station is away (a WARNING).
    away: str = "a command hours later would surprise"
    # Offered when OCPP_CONFIG is unset.
    by_default: bool = False
    # Offered whenever direct topics are on, whatever OCPP_CONFIG says.
    with_direct_topics: bool = False
    # Its Home Assistant controls (HOMEASSISTANT_DISCOVERY).
    home_assistant: tuple[Control, ...] = ()

    def example_for(self, version: Version) -> Any:
        """The example of its key in `available_datapoints`, for a station of the version."""
        return self.examples.get(version.family, self.example)

    def serves(self, version: Version) -> bool:
        return version.family in self.builders and (
            self.requires is None or version.has(self.requires)
        )

    def offered_on(self, connector_id: int | None, version: Version) -> bool:
        """Whether it has a key for the station (None) or a connector, on a
        station of that version."""
        if not self.serves(version):
            return False
        if connector_id is None:
            return self.scope is not Scope.CONNECTOR
        return self.scope is not Scope.STATION

    def result_keys(self, cp_id: str, connector_id: int | None, version: Version) -> list[str]:
        """The sensor keys its answers make, so that BEMCom can map them
        before the first command: `<cp>__<Action>__status`, the limit keys of
        charging control, and the actuator's own (`result_names`)."""
        if self.route is Route.LOCAL:
            return []
        try:
            request = self.build(self.example_for(version), connector_id, version)
        except InvalidCommand:
            return []
        number = connector_id or 0
        action = {Route.LIMIT: "SetChargingProfile", Route.CLEAR: "ClearChargingProfile"}.get(
            self.route, request.action
        )
        keys = [f"{cp_id}{SEP}{action}{SEP}status"]
        if self.route is Route.LIMIT:
            where = f"{SEP}{number}" if number else ""
            keys += [f"{cp_id}{SEP}ChargingLimit{where}{SEP}{unit}" for unit in ("W", "A")]
        names = self.result_names.get(version.family, ())
        keys += [f"{cp_id}{SEP}{name.format(c=number)}" for name in names]
        return keys

    def build(self, value: Any, connector_id: int | None, version: Version) -> Request:
        """The request for a value, for a station of that version; InvalidCommand
        when it cannot be sent. Connector 0 means the station, as its key does."""
        if connector_id == 0:
            connector_id = None
        if not self.serves(version):
            needs = [v.name for v in VERSIONS if self.serves(v)]
            raise InvalidCommand(
                f"{self.name} needs OCPP {' or '.join(needs)}; the station speaks {version}"
            )
        if not self.offered_on(connector_id, version):
            if connector_id is None:
                raise InvalidCommand(
                    f"{self.name} needs a connector key: <cp>__{self.name}__<connectorId>, from 1"
                )
            raise InvalidCommand(f"{self.name} applies to the whole station: use <cp>__{self.name}")
        request = self.builders[version.family](value, connector_id, version)
        return Request(request.action, request.payload, self.name)


def _collect() -> dict[str, Actuator]:
    found: dict[str, Actuator] = {}
    for module in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        if module.name.startswith("_"):
            continue
        declared = getattr(importlib.import_module(f"{__name__}.{module.name}"), "ACTUATOR", None)
        if isinstance(declared, Actuator):
            found[declared.name] = declared
    return found


# Every actuator, by name, in the order of their modules' names.
ACTUATORS: dict[str, Actuator] = _collect()
NAMES: tuple[str, ...] = tuple(ACTUATORS)
DEFAULTS: tuple[str, ...] = tuple(name for name, a in ACTUATORS.items() if a.by_default)


def build(name: str, value: Any, connector_id: int | None, version: Version = OCPP16) -> Request:
    actuator = ACTUATORS.get(name)
    if actuator is None:
        raise InvalidCommand(f"{name} is not an actuator")
    return actuator.build(value, connector_id, version)


def offered_on(name: str, connector_id: int | None, version: Version = OCPP16) -> bool:
    actuator = ACTUATORS.get(name)
    return actuator is not None and actuator.offered_on(connector_id, version)


def result_datapoints(
    cp_id: str, request: Request, answer: dict[str, Any], now: int
) -> list[Datapoint]:
    """What an answer carries beyond its status (the actuator's `results`)."""
    actuator = ACTUATORS.get(request.actuator)
    if actuator is None or actuator.results is None:
        return []
    return actuator.results(cp_id, request, answer, now)


async def follow_up(station: Any, request: Request, status: str, answer: dict[str, Any]) -> None:
    """What follows an answer for the station's family (a read-back, ...)."""
    actuator = ACTUATORS.get(request.actuator)
    if actuator is not None:
        step = actuator.follow_up.get(station.version.family)
        if step is not None:
            await step(station, request, status, answer)


def home_assistant_controls(offered: Iterable[str]) -> list[tuple[str, Control]]:
    """(actuator, control) for the actuators offered, in the order offered."""
    return [
        (name, control)
        for name in offered
        if name in ACTUATORS
        for control in ACTUATORS[name].home_assistant
    ]
