"""Settings from the environment, with `.env` filling in what is unset.

Everything is validated once, at start-up. Every bad variable is reported,
not only the first, so an operator fixes a broken deployment in one go.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dotenv import dotenv_values
from ocpp.v16.enums import Measurand

from connector.core.charging_profiles import STRATEGIES
from connector.stations.tls import TlsError, client_context, server_context

# Every actuator (CONTRACT §3 and §6); OCPP_CONFIG picks from these.
ACTUATORS: tuple[str, ...] = (
    "execute_send_charging_profile",
    "execute_trigger_message",
    "execute_remote_start_transaction",
    "execute_remote_stop_transaction",
    "execute_change_availability",
    "execute_reset",
    "execute_unlock_connector",
    "execute_clear_charging_profile",
    "execute_change_configuration",
    "execute_get_configuration",
    "execute_data_transfer",
    "execute_get_composite_schedule",
    "execute_update_firmware",
    "execute_get_diagnostics",
    # OCPP 2.x monitoring and 2.1 periodic event streams (CONTRACT §8).
    "execute_set_variable_monitoring",
    "execute_clear_variable_monitoring",
    "execute_adjust_periodic_event_stream",
    "execute_get_periodic_event_stream",
)
# Offered when OCPP_CONFIG is unset or empty.
DEFAULT_ACTUATORS: tuple[str, ...] = ACTUATORS[:2]

# OCPP-J subprotocols, oldest first: a station offering several gets the newest.
OCPP_SUBPROTOCOLS: tuple[str, ...] = ("ocpp1.6", "ocpp2.0.1", "ocpp2.1")

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
    ocpp_config: tuple[str, ...] = DEFAULT_ACTUATORS
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
    # Security and reliability (CONTRACT §7). Secrets are left out of repr().
    ocpp_basic_auth: dict[str, str] | None = field(default=None, repr=False)
    ocpp_allowed_charge_points: frozenset[str] | None = None
    ocpp_tls_cert: str = ""
    ocpp_tls_key: str = ""
    ocpp_tls_ca: str = ""
    ocpp_id_tags: frozenset[str] | None = None
    ocpp_max_message_size: int = 65536
    ocpp_max_connections: int = 10000
    # The share (%) of OCPP_MAX_CONNECTIONS one address may hold in handshakes.
    ocpp_handshake_share_per_address: int = 50
    # Frames a second one station is read at, at most (after a burst).
    ocpp_max_frames_per_second: float = 200.0
    # Seconds between WebSocket pings; a dead connection is noticed within
    # two of them. 0 turns pings off, for stations that never answer them.
    ocpp_ping_interval: float = 60.0
    mqtt_broker_username: str = ""
    mqtt_broker_password: str = field(default="", repr=False)
    mqtt_tls: bool = False
    mqtt_tls_ca: str = ""
    mqtt_max_queued: int = 100000
    # Sensor keys one station may create; beyond it, new keys are dropped.
    ocpp_max_keys_per_station: int = 5000
    # ... and bytes its keys and examples may take in available_datapoints.
    ocpp_max_key_bytes_per_station: int = 1_000_000
    # permessage-deflate toward stations that ask for it.
    ocpp_compression: bool = False
    # Subprotocols offered to stations (CONTRACT §8).
    ocpp_versions: tuple[str, ...] = OCPP_SUBPROTOCOLS
    # CONTRACT §9: this process's instance number (None: a single instance),
    # and the processes to start on this machine.
    connector_instance: int | None = None
    ocpp_workers: int = 1
    # CONTRACT §10: every key on <name>/direct/..., and /set commands.
    mqtt_direct_topics: bool = False
    homeassistant_discovery: bool = False
    homeassistant_discovery_prefix: str = "homeassistant"

    @property
    def direct_topics(self) -> bool:
        """Discovery reads the direct topics, so it turns them on."""
        return self.mqtt_direct_topics or self.homeassistant_discovery

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


def _non_negative_float(raw: str) -> float:
    try:
        value = float(raw.strip())
    except ValueError:
        raise ValueError("allowed: a number of seconds, 0 or more") from None
    if not 0 <= value < float("inf"):
        raise ValueError("allowed: a number of seconds, 0 or more")
    return value


def _id_set(raw: str) -> frozenset[str]:
    names = frozenset(part.strip() for part in raw.split(",") if part.strip())
    if not names:
        raise ValueError("allowed: a comma-separated list, or empty")
    return names


def _file(raw: str) -> str:
    path = raw.strip()
    if not Path(path).is_file():
        raise ValueError("allowed: the path of a readable file, or empty")
    return path


def parse_basic_auth(raw: str) -> dict[str, str]:
    """`{"<cp id>": "<password>"}`. The message never quotes the value: it is secret."""
    try:
        decoded = json.loads(raw)
    except ValueError:
        raise ValueError('allowed: a JSON object {"<cp id>": "<password>"}') from None
    if not isinstance(decoded, dict) or not all(
        isinstance(k, str) and k and isinstance(v, str) and v for k, v in decoded.items()
    ):
        raise ValueError('allowed: a JSON object {"<cp id>": "<password>"} of non-empty strings')
    return decoded


def _basic_auth_file(raw: str) -> dict[str, str]:
    try:
        text = Path(raw.strip()).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        raise ValueError("allowed: the path of a readable UTF-8 file") from None
    return parse_basic_auth(text)


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
        return DEFAULT_ACTUATORS
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


def _topic_prefix(raw: str) -> str:
    value = raw.strip().strip("/")
    if not value or any(c in value for c in "+#") or any(c.isspace() for c in value):
        raise ValueError("allowed: an MQTT topic prefix without wildcards or spaces")
    return value


def parse_ocpp_versions(raw: str) -> tuple[str, ...]:
    """A comma-separated list of subprotocols, kept in the order of OCPP_SUBPROTOCOLS."""
    names = {part.strip() for part in raw.split(",") if part.strip()}
    if not names:
        return OCPP_SUBPROTOCOLS
    unknown = sorted(names - set(OCPP_SUBPROTOCOLS))
    if unknown:
        raise ValueError(f"unknown version {unknown[0]!r}; allowed: {', '.join(OCPP_SUBPROTOCOLS)}")
    return tuple(v for v in OCPP_SUBPROTOCOLS if v in names)


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
    "OCPP_BASIC_AUTH": ("ocpp_basic_auth", parse_basic_auth),
    "OCPP_BASIC_AUTH_FILE": ("ocpp_basic_auth", _basic_auth_file),
    "OCPP_ALLOWED_CHARGE_POINTS": ("ocpp_allowed_charge_points", _id_set),
    "OCPP_TLS_CERT": ("ocpp_tls_cert", _file),
    "OCPP_TLS_KEY": ("ocpp_tls_key", _file),
    "OCPP_TLS_CA": ("ocpp_tls_ca", _file),
    "OCPP_ID_TAGS": ("ocpp_id_tags", _id_set),
    "OCPP_MAX_MESSAGE_SIZE": ("ocpp_max_message_size", _int_in(1024, 16 * 1024 * 1024)),
    "OCPP_MAX_CONNECTIONS": ("ocpp_max_connections", _int_in(1, 1_000_000)),
    "OCPP_HANDSHAKE_SHARE_PER_ADDRESS": ("ocpp_handshake_share_per_address", _int_in(1, 100)),
    "OCPP_MAX_FRAMES_PER_SECOND": ("ocpp_max_frames_per_second", _float_in(1, 100_000)),
    "OCPP_PING_INTERVAL": ("ocpp_ping_interval", _non_negative_float),
    "MQTT_BROKER_USERNAME": ("mqtt_broker_username", str.strip),
    "MQTT_BROKER_PASSWORD": ("mqtt_broker_password", str),
    "MQTT_TLS": ("mqtt_tls", _parse_bool),
    "MQTT_TLS_CA": ("mqtt_tls_ca", _file),
    "MQTT_MAX_QUEUED": ("mqtt_max_queued", _int_in(1, 100_000_000)),
    "OCPP_MAX_KEYS_PER_STATION": ("ocpp_max_keys_per_station", _int_in(1, 10_000_000)),
    "OCPP_MAX_KEY_BYTES_PER_STATION": (
        "ocpp_max_key_bytes_per_station",
        _int_in(1000, 1_000_000_000),
    ),
    "OCPP_COMPRESSION": ("ocpp_compression", _parse_bool),
    "OCPP_VERSIONS": ("ocpp_versions", parse_ocpp_versions),
    "CONNECTOR_INSTANCE": ("connector_instance", _int_in(0, 63)),
    "OCPP_WORKERS": ("ocpp_workers", _int_in(1, 64)),
    "MQTT_DIRECT_TOPICS": ("mqtt_direct_topics", _parse_bool),
    "HOMEASSISTANT_DISCOVERY": ("homeassistant_discovery", _parse_bool),
    "HOMEASSISTANT_DISCOVERY_PREFIX": ("homeassistant_discovery_prefix", _topic_prefix),
}

# Their values never appear in a message.
_SECRETS = {"OCPP_BASIC_AUTH", "MQTT_BROKER_PASSWORD"}


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
        if name in values:
            problems.append(f"{variable} is set, but so is the other way to give {name}; set one")
            continue
        try:
            values[name] = parse(raw)
        except ValueError as error:
            shown = "<hidden>" if variable in _SECRETS else repr(raw)
            problems.append(f"{variable}={shown} is not valid: {error}")
    if problems:
        raise SettingsError(problems)
    settings = Settings(**values)
    problems = tls_problems(settings)
    if problems:
        raise SettingsError(problems)
    return settings


def tls_problems(settings: Settings) -> list[str]:
    """Settings that only make sense together, and files TLS cannot load."""
    problems: list[str] = []
    if bool(settings.ocpp_tls_cert) != bool(settings.ocpp_tls_key):
        problems.append("OCPP_TLS_CERT and OCPP_TLS_KEY go together: set both, or neither")
    elif settings.ocpp_tls_ca and not settings.ocpp_tls_cert:
        problems.append("OCPP_TLS_CA needs OCPP_TLS_CERT and OCPP_TLS_KEY (wss:// first)")
    elif settings.ocpp_tls_cert:
        try:
            server_context(settings.ocpp_tls_cert, settings.ocpp_tls_key, settings.ocpp_tls_ca)
        except TlsError as error:
            problems.append(f"OCPP_TLS_CERT/OCPP_TLS_KEY/OCPP_TLS_CA: {error}")
    first = settings.connector_instance or 0
    if settings.ocpp_workers > 1 and first + settings.ocpp_workers > 64:
        problems.append(
            f"OCPP_WORKERS={settings.ocpp_workers} from CONNECTOR_INSTANCE={first} needs "
            "instance numbers above 63"
        )
    if settings.mqtt_tls and settings.embedded_broker:
        problems.append("MQTT_TLS needs MQTT_BROKER_HOST: the embedded broker has no TLS")
    elif settings.mqtt_tls_ca and not settings.mqtt_tls:
        problems.append("MQTT_TLS_CA is set, but MQTT_TLS is not TRUE")
    elif settings.mqtt_tls:
        try:
            client_context(settings.mqtt_tls_ca)
        except TlsError as error:
            problems.append(f"MQTT_TLS_CA: {error}")
    if settings.mqtt_broker_password and not settings.mqtt_broker_username:
        problems.append("MQTT_BROKER_PASSWORD is set, but MQTT_BROKER_USERNAME is empty")
    return problems
