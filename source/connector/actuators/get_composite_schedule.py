"""execute_get_composite_schedule: a duration in s (README "Actuators", "OCPP 2.0.1 and 2.1
stations").

The first period's limit goes to `<cp>__CompositeSchedule__<connectorId>__limit`.
"""

from __future__ import annotations

from typing import Any

from connector.actuators import Actuator, Request, Scope
from connector.core.commands import checked_whole
from connector.core.datapoints import SEP, Datapoint
from connector.versions import Family, Version

MAX_SCHEDULE_S = 7 * 24 * 3600


def build_v16(value: Any, connector_id: int | None, version: Version) -> Request:
    duration = checked_whole(value, "the duration", 1, MAX_SCHEDULE_S)
    return Request("GetCompositeSchedule", {"connectorId": connector_id or 0, "duration": duration})


def build_v2(value: Any, evse_id: int | None, version: Version) -> Request:
    duration = checked_whole(value, "the duration", 1, MAX_SCHEDULE_S)
    return Request("GetCompositeSchedule", {"evseId": evse_id or 0, "duration": duration})


SCHEDULE = ("CompositeSchedule__{c}__limit", "CompositeSchedule__{c}__chargingRateUnit")


def results(cp_id: str, request: Request, answer: dict[str, Any], now: int) -> list[Datapoint]:
    if answer.get("status") != "Accepted":
        return []
    # 1.6: connectorId and chargingSchedule; 2.x: schedule with evseId.
    schedule = answer.get("chargingSchedule") or answer.get("schedule") or {}
    connector_id = answer.get(
        "connectorId",
        schedule.get("evseId", request.payload.get("connectorId", request.payload.get("evseId"))),
    )
    periods = schedule.get("chargingSchedulePeriod") or [{}]
    prefix = f"{cp_id}{SEP}CompositeSchedule{SEP}{connector_id}{SEP}"
    return [
        Datapoint(prefix + "limit", periods[0].get("limit"), now),
        Datapoint(prefix + "chargingRateUnit", schedule.get("chargingRateUnit"), now),
    ]


ACTUATOR = Actuator(
    name="execute_get_composite_schedule",
    scope=Scope.BOTH,
    example=3600,
    builders={Family.OCPP16: build_v16, Family.OCPP2: build_v2},
    results=results,
    result_names={Family.OCPP16: SCHEDULE, Family.OCPP2: SCHEDULE},
)
