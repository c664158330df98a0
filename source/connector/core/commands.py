"""Pure, version-neutral: actuator keys and values from MQTT, checked.

The parts every actuator's value check shares (actuators/ builds each one's
request from them). Nothing here does I/O: every function returns something
safe to send to a station, or raises InvalidCommand with a reason a user can
act on.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from connector.core.datapoints import SEP

# Far above any real charger (a 1 MW HPC is 1e6 W); keeps nonsense out.
MAX_POWER_W = 10_000_000


# Real stations number their connectors from 1 to a few dozen; the bound
# keeps the charging profile ids of each connector apart.
MAX_CONNECTOR_ID = 999

URL_SCHEMES = ("http", "https", "ftp", "ftps")
MAX_URL_LENGTH = 512


class InvalidCommand(ValueError):
    """The value or key cannot become an OCPP call; the message says why."""


@dataclass(frozen=True)
class ActuatorKey:
    cp_id: str
    actuator: str
    connector_id: int | None  # None: the station-level key


def actuator_key(cp_id: str, actuator: str, connector_id: int | None = None) -> str:
    if connector_id is None:
        return f"{cp_id}{SEP}{actuator}"
    return f"{cp_id}{SEP}{actuator}{SEP}{connector_id}"


def parse_actuator_key(key: str, enabled: tuple[str, ...]) -> ActuatorKey:
    parts = key.split(SEP)
    if len(parts) not in (2, 3) or not parts[0]:
        raise InvalidCommand(f"key {key!r} is not <cp>__<actuator>[__<connectorId>]")
    cp_id, actuator = parts[0], parts[1]
    if actuator not in enabled:
        raise InvalidCommand(
            f"key {key!r} names no actuator that is offered (offered: {', '.join(enabled)})"
        )
    connector_id: int | None = None
    if len(parts) == 3:
        if not (parts[2].isascii() and parts[2].isdigit()) or int(parts[2]) > MAX_CONNECTOR_ID:
            raise InvalidCommand(f"key {key!r} has no valid connector id (0 to {MAX_CONNECTOR_ID})")
        connector_id = int(parts[2])
    return ActuatorKey(cp_id, actuator, connector_id)


def parse_actuator_payload(payload: bytes) -> Any:
    """The `value` of a BEMCom actuator message `{"value": ..., "timestamp": ...}`."""
    try:
        message = json.loads(payload.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise InvalidCommand("payload is not JSON") from None
    if not isinstance(message, dict) or "value" not in message:
        raise InvalidCommand('payload is not an object with a "value"')
    return message["value"]


def parse_power_limit(value: Any) -> float | None:
    """W as a number or numeric string; None (or "") clears the limit."""
    if value is None or (isinstance(value, str) and value.strip() == ""):
        return None
    if isinstance(value, bool):
        raise InvalidCommand("power must be a number of W, not a boolean")
    if isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            raise InvalidCommand("power must be a number of W") from None
    elif isinstance(value, int | float):
        number = float(value)
    else:
        raise InvalidCommand("power must be a number of W")
    if not math.isfinite(number):
        raise InvalidCommand("power must be a finite number of W")
    if number < 0:
        raise InvalidCommand("power must not be negative")
    if number > MAX_POWER_W:
        raise InvalidCommand(f"power must be at most {MAX_POWER_W} W")
    # OCPP 1.6 limits are multiples of 0.1; round down so a limit is never exceeded.
    return math.floor(number * 10 + 1e-9) / 10


def checked_text(value: Any, what: str, max_length: int) -> str:
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise InvalidCommand(f"{what} must be a string")
    text = str(value).strip()
    if not text:
        raise InvalidCommand(f"{what} must not be empty")
    if len(text) > max_length:
        raise InvalidCommand(f"{what} must be at most {max_length} characters")
    if any(ord(c) < 32 or ord(c) == 127 for c in text):
        raise InvalidCommand(f"{what} must not contain control characters")
    return text


def checked_whole(value: Any, what: str, low: int, high: int) -> int:
    if isinstance(value, bool):
        raise InvalidCommand(f"{what} must be a whole number")
    if isinstance(value, str):
        value = value.strip()
        if not (value.isascii() and value.lstrip("-").isdigit()):
            raise InvalidCommand(f"{what} must be a whole number")
        value = int(value)
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        value = int(value)
    if not isinstance(value, int):
        raise InvalidCommand(f"{what} must be a whole number")
    if not low <= value <= high:
        raise InvalidCommand(f"{what} must be from {low} to {high}")
    return value


def checked_url(value: Any, what: str) -> str:
    text = checked_text(value, what, MAX_URL_LENGTH)
    if any(c.isspace() for c in text):
        raise InvalidCommand(f"{what} must not contain spaces")
    try:
        parts = urlsplit(text)
    except ValueError:
        raise InvalidCommand(f"{what} is not a valid URL") from None
    if parts.scheme.lower() not in URL_SCHEMES or not parts.netloc:
        raise InvalidCommand(f"{what} must be an http, https, ftp or ftps URL with a host")
    return text


def json_object(value: Any, shape: str) -> dict[str, Any]:
    """An actuator value that is a JSON object, or a string holding one."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except (ValueError, RecursionError):
            raise InvalidCommand(f"the value must be a JSON object {shape}") from None
    if not isinstance(value, dict):
        raise InvalidCommand(f"the value must be a JSON object {shape}")
    return value


def only_fields(message: dict[str, Any], allowed: tuple[str, ...]) -> None:
    unknown = sorted(set(message) - set(allowed))
    if unknown:
        raise InvalidCommand(f"unknown field {unknown[0]!r}; allowed: {', '.join(allowed)}")


def format_time(moment: datetime) -> str:
    """UTC in ISO 8601 with a Z, as OCPP stations expect."""
    utc = moment.astimezone(UTC).replace(tzinfo=None)
    return utc.isoformat(timespec="seconds") + "Z"
