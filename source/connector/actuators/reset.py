"""execute_reset: Soft or Hard (README "Actuators"; 2.x: OnIdle, Immediate)."""

from __future__ import annotations

from typing import Any

from connector.actuators import Actuator, Request, Scope
from connector.core.commands import InvalidCommand
from connector.ocpp2.requests import reset_types
from connector.versions import Family, Version


def build_v16(value: Any, connector_id: int | None, version: Version) -> Request:
    if isinstance(value, str) and value.strip().lower() in ("soft", "hard"):
        return Request("Reset", {"type": value.strip().capitalize()})
    raise InvalidCommand("reset must be Soft or Hard")


def build_v2(value: Any, evse_id: int | None, version: Version) -> Request:
    # 1.6's words, and every name of the version's own (2.1 adds ImmediateAndResume).
    types = {"soft": "OnIdle", "hard": "Immediate"}
    types.update({name.lower(): name for name in reset_types(version)})
    if isinstance(value, str) and value.strip().lower() in types:
        return Request("Reset", {"type": types[value.strip().lower()]})
    names = ", ".join(sorted(set(types.values())))
    raise InvalidCommand(f"reset must be Soft or Hard (or {names})")


ACTUATOR = Actuator(
    name="execute_reset",
    scope=Scope.STATION,
    example="Soft",
    builders={Family.OCPP16: build_v16, Family.OCPP2: build_v2},
    away="a Reset hours later would surprise",
)
