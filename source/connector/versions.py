"""The OCPP versions the connector speaks: one table.

The settings (OCPP_VERSIONS), the WebSocket server (subprotocols), the frame
parser (message types and error spellings), the schema validation, the
actuators (a request builder per family) and the simulators read it. No
other module names a version or compares one: each asks its Version.

A family is the versions that share one adapter folder and one set of
request builders: OCPP 1.6 (`ocpp16/`), and OCPP 2.0.1 and 2.1 (`ocpp2/`),
where 2.1's additions are features.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from functools import cache
from typing import Any


class Family(StrEnum):
    OCPP16 = "ocpp16"
    OCPP2 = "ocpp2"


class Feature(StrEnum):
    # OCPP 2.1's message types 5 (CALLRESULTERROR) and 6 (SEND).
    SEND_FRAMES = "send_frames"
    # OCPP 2.1's periodic event streams (and their actuators).
    PERIODIC_EVENT_STREAMS = "periodic_event_streams"


@dataclass(frozen=True, eq=False)  # one object per version: equal when the same
class Version:
    # The ocpp library's name of the version, which its schemas and enums use.
    name: str
    # The ocpp library's module for the version (its call and call_result classes).
    library: str
    subprotocol: str
    family: Family
    # `module:Class` of the station adapter and of the simulated station
    # (imported when first asked for: the table sits below both).
    station: str
    simulator: str
    # Error codes where the versions spell them differently.
    format_violation: str
    occurrence_violation: str
    unknown_message_type: str
    # The ocpp library's code for a payload that breaks the schema -> this
    # version's (the library names them as neither version quite does).
    payload_codes: Mapping[str, str] = field(default_factory=dict)
    # (message type, action) whose numbers the ocpp library validates as
    # decimal.Decimal: its own validation decides those (schema_validation.py).
    decimal_messages: frozenset[tuple[int, str]] = frozenset()
    features: frozenset[Feature] = field(default_factory=frozenset)

    def has(self, feature: Feature) -> bool:
        return feature in self.features

    def payload_error(self, code: str, cause: str) -> str:
        """A payload error as the ocpp library names it -> this version's code.

        An additional property is a format violation in both versions' words;
        the rest the table renames (payload_codes)."""
        if code == "FormatViolation" and cause.startswith("Additional properties"):
            return self.format_violation
        return self.payload_codes.get(code, code)

    @property
    def station_class(self) -> Any:
        return _load(self.station)

    @property
    def simulator_class(self) -> Any:
        return _load(self.simulator)

    def __str__(self) -> str:
        return self.name


@cache
def _load(path: str) -> Any:
    module, _, name = path.partition(":")
    return getattr(importlib.import_module(module), name)


OCPP16 = Version(
    name="1.6",
    library="ocpp.v16",
    subprotocol="ocpp1.6",
    family=Family.OCPP16,
    station="connector.ocpp16.station:StationV16",
    simulator="connector.simulator.v16:SimulatedChargePoint",
    # OCPP 1.6 spells it so; the ocpp library raises the 2.0 spelling.
    format_violation="FormationViolation",
    occurrence_violation="OccurenceConstraintViolation",
    unknown_message_type="ProtocolError",
    payload_codes={
        "FormatViolation": "FormationViolation",
        "OccurrenceConstraintViolation": "OccurenceConstraintViolation",
    },
    decimal_messages=frozenset(
        {(2, "SetChargingProfile"), (2, "RemoteStartTransaction"), (3, "GetCompositeSchedule")}
    ),
)
# The library names a missing field a ProtocolError and a bad value a
# FormatViolation, as 1.6 words them; OCPP 2.x has a code for each (an
# occurrence or a property constraint), and keeps those two for broken frames.
_PAYLOAD_CODES_2X = {
    "ProtocolError": "OccurrenceConstraintViolation",
    "FormatViolation": "PropertyConstraintViolation",
}
OCPP201 = Version(
    name="2.0.1",
    library="ocpp.v201",
    subprotocol="ocpp2.0.1",
    family=Family.OCPP2,
    station="connector.ocpp2.station:StationV201",
    simulator="connector.simulator.v2:SimulatedStationV2",
    format_violation="FormatViolation",
    occurrence_violation="OccurrenceConstraintViolation",
    unknown_message_type="MessageTypeNotSupported",
    payload_codes=_PAYLOAD_CODES_2X,
)
OCPP21 = Version(
    name="2.1",
    library="ocpp.v21",
    subprotocol="ocpp2.1",
    family=Family.OCPP2,
    station="connector.ocpp2.station:StationV21",
    simulator="connector.simulator.v2:SimulatedStationV2",
    format_violation="FormatViolation",
    occurrence_violation="OccurrenceConstraintViolation",
    unknown_message_type="MessageTypeNotSupported",
    payload_codes=_PAYLOAD_CODES_2X,
    features=frozenset({Feature.SEND_FRAMES, Feature.PERIODIC_EVENT_STREAMS}),
)

# Oldest first: a station that offers several gets the newest both speak.
VERSIONS: tuple[Version, ...] = (OCPP16, OCPP201, OCPP21)
BY_NAME: dict[str, Version] = {version.name: version for version in VERSIONS}
BY_SUBPROTOCOL: dict[str, Version] = {version.subprotocol: version for version in VERSIONS}
FAMILIES: dict[Family, tuple[Version, ...]] = {
    family: tuple(v for v in VERSIONS if v.family is family) for family in Family
}
