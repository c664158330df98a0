"""execute_update_firmware: a URL, to be retrieved now (README "Actuators", "OCPP 2.0.1 and 2.1
stations")."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from connector.actuators import Actuator, Request, Scope
from connector.core.commands import checked_url, format_time
from connector.ocpp2.requests import fresh_id
from connector.versions import Family, Version


def build_v16(
    value: Any, connector_id: int | None, version: Version, now: datetime | None = None
) -> Request:
    location = checked_url(value, "the firmware URL")
    retrieve = format_time(now or datetime.now(UTC))
    return Request("UpdateFirmware", {"location": location, "retrieveDate": retrieve})


def build_v2(value: Any, evse_id: int | None, version: Version) -> Request:
    firmware = {
        "location": checked_url(value, "the firmware URL"),
        "retrieveDateTime": format_time(datetime.now(UTC)),
    }
    return Request("UpdateFirmware", {"requestId": fresh_id(), "firmware": firmware})


ACTUATOR = Actuator(
    name="execute_update_firmware",
    scope=Scope.STATION,
    example="https://example.com/firmware.bin",
    builders={Family.OCPP16: build_v16, Family.OCPP2: build_v2},
)
