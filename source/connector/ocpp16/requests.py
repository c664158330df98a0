"""Pure: the requests of OCPP 1.6 that more than one part builds.

Each actuator builds its own request (actuators/); charging control's
profiles and the triggers of the set-up are built here and in the adapter.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from connector.core.charging_profiles import Rate, Target
from connector.core.commands import format_time

TRIGGER_MESSAGES: tuple[str, ...] = (
    "BootNotification",
    "DiagnosticsStatusNotification",
    "FirmwareStatusNotification",
    "Heartbeat",
    "MeterValues",
    "StatusNotification",
)


def trigger_payload(message: str, connector_id: int | None) -> dict[str, Any]:
    request: dict[str, Any] = {"requestedMessage": message}
    if connector_id is not None:
        request["connectorId"] = connector_id
    return request


def set_charging_profile(
    target: Target, rate: Rate, level: int, now: datetime | None = None
) -> dict[str, Any]:
    """A SetChargingProfile request that holds until replaced or cleared.

    Absolute with a start a minute in the past, so a station whose clock runs
    slightly behind ours applies it at once.
    """
    start = (now or datetime.now(UTC)) - timedelta(minutes=1)
    period: dict[str, Any] = {"startPeriod": 0, "limit": rate.limit}
    if rate.number_phases is not None:
        period["numberPhases"] = rate.number_phases
    profile: dict[str, Any] = {
        "chargingProfileId": target.profile_id,
        "stackLevel": level,
        "chargingProfilePurpose": target.purpose,
        "chargingProfileKind": "Absolute",
        "chargingSchedule": {
            "startSchedule": format_time(start),
            "chargingRateUnit": rate.unit,
            "chargingSchedulePeriod": [period],
        },
    }
    if target.transaction_id is not None:
        profile["transactionId"] = target.transaction_id
    return {"connectorId": target.connector_id, "csChargingProfiles": profile}
