"""Settings from the environment, with `.env` filling in what is unset.

Everything is validated once, at start-up. Every bad variable is reported,
not only the first, so an operator fixes a broken deployment in one go.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dotenv import dotenv_values
from ocpp.v16.enums import Measurand

from connector.charging_profiles import STRATEGIES

# The two actuators of CONTRACT §3. Later issues add more names here.
ACTUATORS: tuple[str, ...] = (
    "execute_send_charging_profile",
    "execute_trigger_message",
)

DEFAULT_ENV_FILE = Path(__file__).resolve().parents[2] / ".env"


class SettingsError(Exception):
    """Raised with one line per bad variable."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


@dataclass(frozen=True)
class Settings:
    connector_name: str = "ocpp-connector"
    mqtt_broker_host: str = ""
    mqtt_broker_port: int = 1883
    send_raw_message_to_db: bool = False
    debug: bool = False
    ocpp_host: str = "0.0.0.0"
    ocpp_port: int = 9000
    ocpp_config: tuple[str, ...] = ACTUATORS
    heartbeat_interval: float = 30.0
    ocpp_heartbeat_interval: int = 300
    ocpp_response_timeout: float = 30.0
    # Seconds to wait for a BootNotification before re-sending the limits in
    # force to a station that reconnected without booting.
    ocpp_boot_wait: float = 10.0
    # Charging control (CONTRACT §5).
    ocpp_voltage: float = 230.0
    ocpp_phases: int = 3
    ocpp_charging_profile_strategy: str = "auto"
    ocpp_stack_level: int | None = None
    ocpp_meter_values_sampled_data: tuple[str, ...] | None = None
    ocpp_meter_value_sample_interval: int | None = None
    ocpp_energy_monotonic: bool = True

    @property
    def embedded_broker(self) -> bool:
        return self.mqtt_broker_host == ""


def _parse_bool(raw: str) -> bool:
    value = raw.strip().upper()
    if value in ("TRUE", "1", "YES"):
        return True
    if value in ("FALSE", "0", "NO", ""):
        return False
    raise ValueError("allowed: TRUE or FALSE")


def _int_in(low: int, high: int) -> Callable[[str], int]:
    def parse(raw: str) -> int:
        try:
            value = int(raw.strip())
        except ValueError:
            raise ValueError(f"allowed: an integer from {low} to {high}") from None
        if not low <= value <= high:
            raise ValueError(f"allowed: an integer from {low} to {high}")
        return value

    return parse


def _positive_float(raw: str) -> float:
    try:
        value = float(raw.strip())
    except ValueError:
        raise ValueError("allowed: a number of seconds greater than 0") from None
    if not value > 0 or value != value or value == float("inf"):
        raise ValueError("allowed: a number of seconds greater than 0")
    return value


def _float_in(low: float, high: float) -> Callable[[str], float]:
    def parse(raw: str) -> float:
        try:
            value = float(raw.strip())
        except ValueError:
            raise ValueError(f"allowed: a number from {low:g} to {high:g}") from None
        if not low <= value <= high:
            raise ValueError(f"allowed: a number from {low:g} to {high:g}")
        return value

    return parse


def _strategy(raw: str) -> str:
    value = raw.strip().lower()
    if value not in STRATEGIES:
        raise ValueError(f"allowed: {', '.join(STRATEGIES)}")
    return value


def parse_measurands(raw: str) -> tuple[str, ...]:
    """A comma-separated list of OCPP 1.6 measurands, spelled as OCPP spells them."""
    known = {m.value.lower(): m.value for m in Measurand}
    names = [part.strip() for part in raw.split(",") if part.strip()]
    unknown = [n for n in names if n.lower() not in known]
    if unknown or not names:
        raise ValueError(
            f"unknown measurand {unknown[0]!r}; allowed: a comma-separated list of "
            "OCPP 1.6 measurands such as Energy.Active.Import.Register,Power.Active.Import"
            if unknown
            else "allowed: a comma-separated list of OCPP 1.6 measurands"
        )
    return tuple(dict.fromkeys(known[n.lower()] for n in names))


def _connector_name(raw: str) -> str:
    value = raw.strip()
    if not value or any(c in value for c in "+#/") or "\x00" in value:
        raise ValueError("allowed: a non-empty MQTT topic level without '/', '+' or '#'")
    return value


def _host(raw: str) -> str:
    value = raw.strip()
    if any(c.isspace() for c in value):
        raise ValueError("allowed: a host name or IP address, or empty")
    return value


def parse_ocpp_config(raw: str) -> tuple[str, ...]:
    """Accept a JSON list, a JSON string, or a comma-separated list."""
    text = raw.strip()
    if text == "":
        return ACTUATORS
    names: list[Any]
    try:
        decoded = json.loads(text)
    except ValueError:
        names = [part.strip() for part in text.split(",") if part.strip()]
    else:
        if isinstance(decoded, str):
            names = [part.strip() for part in decoded.split(",") if part.strip()]
        elif isinstance(decoded, list):
            names = decoded
        else:
            raise ValueError("allowed: a JSON list, a JSON string or a comma-separated list")
    if any(n == "all" for n in names):
        return ACTUATORS
    unknown = [n for n in names if n not in ACTUATORS]
    if unknown:
        raise ValueError(f"unknown actuator {unknown[0]!r}; allowed: {', '.join(ACTUATORS)}, all")
    # Keep the order given, without repeats.
    return tuple(dict.fromkeys(names))


# variable -> (field name, parser)
_FIELDS: dict[str, tuple[str, Callable[[str], Any]]] = {
    "CONNECTOR_NAME": ("connector_name", _connector_name),
    "MQTT_BROKER_HOST": ("mqtt_broker_host", _host),
    "MQTT_BROKER_PORT": ("mqtt_broker_port", _int_in(1, 65535)),
    "SEND_RAW_MESSAGE_TO_DB": ("send_raw_message_to_db", _parse_bool),
    "DEBUG": ("debug", _parse_bool),
    "OCPP_HOST": ("ocpp_host", _host),
    "OCPP_PORT": ("ocpp_port", _int_in(1, 65535)),
    "OCPP_CONFIG": ("ocpp_config", parse_ocpp_config),
    "HEARTBEAT_INTERVAL": ("heartbeat_interval", _positive_float),
    "OCPP_HEARTBEAT_INTERVAL": ("ocpp_heartbeat_interval", _int_in(1, 86400)),
    "OCPP_RESPONSE_TIMEOUT": ("ocpp_response_timeout", _positive_float),
    "OCPP_BOOT_WAIT": ("ocpp_boot_wait", _positive_float),
    "OCPP_VOLTAGE": ("ocpp_voltage", _float_in(50, 500)),
    "OCPP_PHASES": ("ocpp_phases", _int_in(1, 3)),
    "OCPP_CHARGING_PROFILE_STRATEGY": ("ocpp_charging_profile_strategy", _strategy),
    "OCPP_STACK_LEVEL": ("ocpp_stack_level", _int_in(0, 1000)),
    "OCPP_METER_VALUES_SAMPLED_DATA": ("ocpp_meter_values_sampled_data", parse_measurands),
    "OCPP_METER_VALUE_SAMPLE_INTERVAL": ("ocpp_meter_value_sample_interval", _int_in(0, 86400)),
    "OCPP_ENERGY_MONOTONIC": ("ocpp_energy_monotonic", _parse_bool),
}


def load_settings(
    environ: Mapping[str, str] | None = None, env_file: Path | None = DEFAULT_ENV_FILE
) -> Settings:
    """Build the settings; the environment wins over the `.env` file.

    Raises SettingsError naming every bad variable, its value and what is allowed.
    """
    merged: dict[str, str] = {}
    if env_file is not None and env_file.is_file():
        merged.update({k: v for k, v in dotenv_values(env_file).items() if v is not None})
    merged.update(os.environ if environ is None else environ)

    values: dict[str, Any] = {}
    problems: list[str] = []
    for variable, (name, parse) in _FIELDS.items():
        raw = merged.get(variable)
        if raw is None or (raw.strip() == "" and name not in ("mqtt_broker_host",)):
            continue  # unset or empty: the default applies
        try:
            values[name] = parse(raw)
        except ValueError as error:
            problems.append(f"{variable}={raw!r} is not valid: {error}")
    if problems:
        raise SettingsError(problems)
    return Settings(**values)
