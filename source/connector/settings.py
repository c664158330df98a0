"""Settings from the environment, with `.env` filling in what is unset.

Each setting is declared once, as a field of Settings: its variable, its
type (the annotation), its default, its parser and a line of help. Loading,
the error messages and test_settings.py's check of the README's tables all
read those declarations.

Everything is validated once, at start-up. Every bad variable is reported,
not only the first, so an operator fixes a broken deployment in one go.
"""

from __future__ import annotations

import json
import os
import ssl
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from dotenv import dotenv_values

from connector.core.charging_profiles import STRATEGIES
from connector.core.groups import NO_GROUPS, Groups, parse_groups
from connector.core.measurands import MEASURANDS
from connector.tls import TlsError, client_context, server_context
from connector.versions import VERSIONS

# OCPP-J subprotocols, oldest first: a station offering several gets the newest.
OCPP_SUBPROTOCOLS: tuple[str, ...] = tuple(v.subprotocol for v in VERSIONS)

DEFAULT_ENV_FILE = Path(__file__).resolve().parents[2] / ".env"

Parser = Callable[[str], Any]


class SettingsError(Exception):
    """Raised with one line per bad variable."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


@dataclass(frozen=True)
class Setting:
    """One setting's declaration: how its variable becomes its field's value."""

    # The variable, and its parser; a second pair gives the same field another
    # way (OCPP_BASIC_AUTH_FILE beside OCPP_BASIC_AUTH).
    variables: tuple[tuple[str, Parser], ...]
    help: str
    # Its default as the README's tables show it.
    shown: str
    secret: bool = False


def setting(
    variable: str,
    parse: Parser,
    default: Any,
    help: str,
    *,
    shown: str | None = None,
    secret: bool = False,
    also: tuple[tuple[str, Parser], ...] = (),
) -> Any:
    """A field of Settings, declared with everything about its variable."""
    if shown is None:
        shown = _shown(default)
    declared = Setting(((variable, parse), *also), help, shown, secret)
    return field(default=default, repr=not secret, metadata={"setting": declared})


def _shown(default: Any) -> str:
    if default is None or default == "":
        return "empty"
    if isinstance(default, bool):
        return "TRUE" if default else "FALSE"
    if isinstance(default, float) and default.is_integer():
        return str(int(default))
    if isinstance(default, tuple):
        return ",".join(default)
    return str(default)


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
    """A comma-separated list of OCPP measurands, spelled as OCPP spells them."""
    known = {m.lower(): m for m in MEASURANDS}
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


def parse_user_password(raw: str) -> tuple[str, str]:
    """`user:password`; the message never quotes the value: it is secret."""
    user, colon, password = raw.strip().partition(":")
    if not colon or not user or not password:
        raise ValueError("allowed: user:password, both non-empty")
    return user, password


def _ids_or_all(raw: str) -> frozenset[str] | None:
    """OCPP_UPSTREAM_STATIONS: `*` (None) or a comma-separated list of ids."""
    if raw.strip() == "*":
        return None
    return _id_set(raw)


def parse_upstream_url(raw: str) -> str:
    value = raw.strip()
    if not (value.startswith("ws://") or value.startswith("wss://")) or any(
        c.isspace() for c in value
    ):
        raise ValueError("allowed: a ws:// or wss:// URL, with {cp} for the station id, or empty")
    if "@" in value.split("/")[2]:
        # Credentials in a URL end up in logs; they have a setting of their own.
        raise ValueError("no user or password in the URL: set OCPP_UPSTREAM_BASIC_AUTH")
    return value


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


def _groups_file(raw: str) -> Groups:
    try:
        text = Path(raw.strip()).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        raise ValueError("allowed: the path of a readable UTF-8 file") from None
    return parse_groups(text)


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
    # The names come from the actuators' declarations (actuators/).
    from connector.actuators import DEFAULTS, NAMES

    text = raw.strip()
    if text == "":
        return DEFAULTS
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
        return NAMES
    unknown = [n for n in names if n not in NAMES]
    if unknown:
        raise ValueError(f"unknown actuator {unknown[0]!r}; allowed: {', '.join(NAMES)}, all")
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


@dataclass(frozen=True)
class Settings:
    # ---- README "Configuration", the BEMCom connector's own ----
    connector_name: str = setting(
        "CONNECTOR_NAME", _connector_name, "ocpp-connector", "Prefix of every MQTT topic."
    )
    mqtt_broker_host: str = setting(
        "MQTT_BROKER_HOST", _host, "", "Host of the broker; empty: the embedded broker."
    )
    mqtt_broker_port: int = setting(
        "MQTT_BROKER_PORT", _int_in(1, 65535), 1883, "Port of the broker."
    )
    send_raw_message_to_db: bool = setting(
        "SEND_RAW_MESSAGE_TO_DB", _parse_bool, False, "Publish every frame received."
    )
    debug: bool = setting("DEBUG", _parse_bool, False, "Log at DEBUG.")
    ocpp_host: str = setting("OCPP_HOST", _host, "0.0.0.0", "Address the OCPP server binds to.")
    ocpp_port: int = setting("OCPP_PORT", _int_in(1, 65535), 9000, "Port of the OCPP server.")
    ocpp_config: tuple[str, ...] = setting(
        "OCPP_CONFIG",
        parse_ocpp_config,
        ("execute_send_charging_profile", "execute_trigger_message"),
        "Actuators to offer.",
        shown="`execute_send_charging_profile`, `execute_trigger_message`",
    )
    heartbeat_interval: float = setting(
        "HEARTBEAT_INTERVAL", _positive_float, 30.0, "Seconds between BEMCom heartbeats."
    )
    ocpp_heartbeat_interval: int = setting(
        "OCPP_HEARTBEAT_INTERVAL", _int_in(1, 86400), 300, "Interval given in BootNotification."
    )
    ocpp_response_timeout: float = setting(
        "OCPP_RESPONSE_TIMEOUT", _positive_float, 30.0, "Seconds to wait for a station's answer."
    )
    # Seconds to wait for a BootNotification before re-sending the limits in
    # force to a station that reconnected without booting.
    ocpp_boot_wait: float = setting(
        "OCPP_BOOT_WAIT", _positive_float, 10.0, "Seconds to wait for a BootNotification."
    )
    # ---- charging control (README "Charging control") ----
    ocpp_voltage: float = setting(
        "OCPP_VOLTAGE", _float_in(50, 500), 230.0, "Voltage for W to A, when none is measured."
    )
    ocpp_phases: int = setting(
        "OCPP_PHASES", _int_in(1, 3), 3, "Phases for W to A, when none are measured."
    )
    ocpp_charging_profile_strategy: str = setting(
        "OCPP_CHARGING_PROFILE_STRATEGY", _strategy, "auto", "Which profiles carry limits."
    )
    ocpp_stack_level: int | None = setting(
        "OCPP_STACK_LEVEL", _int_in(0, 1000), None, "Forces a stack level."
    )
    ocpp_meter_values_sampled_data: tuple[str, ...] | None = setting(
        "OCPP_METER_VALUES_SAMPLED_DATA", parse_measurands, None, "Measurands to sample."
    )
    ocpp_meter_value_sample_interval: int | None = setting(
        "OCPP_METER_VALUE_SAMPLE_INTERVAL", _int_in(0, 86400), None, "Seconds between samples."
    )
    ocpp_max_clock_skew: float = setting(
        "OCPP_MAX_CLOCK_SKEW",
        _positive_float,
        300.0,
        "Seconds a station's sample time may be ahead; beyond, the receipt time.",
    )
    ocpp_energy_monotonic: bool = setting(
        "OCPP_ENERGY_MONOTONIC", _parse_bool, True, "Drop a falling energy register."
    )
    # ---- security and reliability (README "Reliability"); secrets are left out of repr() ----
    ocpp_basic_auth: dict[str, str] | None = setting(
        "OCPP_BASIC_AUTH",
        parse_basic_auth,
        None,
        "Security Profile 1: each station's password.",
        secret=True,
        also=(("OCPP_BASIC_AUTH_FILE", _basic_auth_file),),
    )
    ocpp_allowed_charge_points: frozenset[str] | None = setting(
        "OCPP_ALLOWED_CHARGE_POINTS", _id_set, None, "Ids allowed to connect."
    )
    ocpp_tls_cert: str = setting("OCPP_TLS_CERT", _file, "", "Serve wss:// with it.")
    ocpp_tls_key: str = setting("OCPP_TLS_KEY", _file, "", "The key of OCPP_TLS_CERT.")
    ocpp_tls_ca: str = setting("OCPP_TLS_CA", _file, "", "Require client certificates of it.")
    ocpp_id_tags: frozenset[str] | None = setting(
        "OCPP_ID_TAGS", _id_set, None, "Id tags accepted."
    )
    ocpp_max_message_size: int = setting(
        "OCPP_MAX_MESSAGE_SIZE", _int_in(1024, 16 * 1024 * 1024), 65536, "Largest frame."
    )
    ocpp_max_connections: int = setting(
        "OCPP_MAX_CONNECTIONS", _int_in(1, 1_000_000), 10000, "Connections at most."
    )
    ocpp_handshake_share_per_address: int = setting(
        "OCPP_HANDSHAKE_SHARE_PER_ADDRESS",
        _int_in(1, 100),
        50,
        "The share (%) of OCPP_MAX_CONNECTIONS one address may hold in handshakes.",
    )
    ocpp_max_frames_per_second: float = setting(
        "OCPP_MAX_FRAMES_PER_SECOND",
        _float_in(1, 100_000),
        200.0,
        "Frames a second one station is read at, at most (after a burst).",
    )
    # A dead connection is noticed within two of these. 0 turns pings off,
    # for stations that never answer them.
    ocpp_ping_interval: float = setting(
        "OCPP_PING_INTERVAL", _non_negative_float, 60.0, "Seconds between WebSocket pings."
    )
    mqtt_broker_username: str = setting("MQTT_BROKER_USERNAME", str.strip, "", "Broker login.")
    mqtt_broker_password: str = setting(
        "MQTT_BROKER_PASSWORD", str, "", "Broker password.", secret=True
    )
    mqtt_tls: bool = setting("MQTT_TLS", _parse_bool, False, "TLS to the broker.")
    mqtt_tls_ca: str = setting("MQTT_TLS_CA", _file, "", "The CA that verifies the broker.")
    mqtt_max_queued: int = setting(
        "MQTT_MAX_QUEUED", _int_in(1, 100_000_000), 100000, "Values held for the broker."
    )
    ocpp_max_keys_per_station: int = setting(
        "OCPP_MAX_KEYS_PER_STATION", _int_in(1, 10_000_000), 5000, "Keys one station may create."
    )
    ocpp_max_key_bytes_per_station: int = setting(
        "OCPP_MAX_KEY_BYTES_PER_STATION",
        _int_in(1000, 1_000_000_000),
        1_000_000,
        "Bytes one station's keys may take in available_datapoints.",
    )
    ocpp_compression: bool = setting(
        "OCPP_COMPRESSION", _parse_bool, False, "permessage-deflate toward stations."
    )
    # ---- OCPP 2.x (README "OCPP 2.0.1 and 2.1 stations") ----
    ocpp_versions: tuple[str, ...] = setting(
        "OCPP_VERSIONS", parse_ocpp_versions, OCPP_SUBPROTOCOLS, "Subprotocols offered."
    )
    # ---- several instances (README "Several instances") ----
    connector_instance: int | None = setting(
        "CONNECTOR_INSTANCE", _int_in(0, 63), None, "This process's instance number."
    )
    ocpp_workers: int = setting(
        "OCPP_WORKERS", _int_in(1, 64), 1, "Instances to start on this machine."
    )
    # ---- site budgets (README "Sharing a supply") ----
    ocpp_groups: Groups = setting(
        "OCPP_GROUPS",
        parse_groups,
        NO_GROUPS,
        "Groups sharing one limit: a JSON object (README).",
        shown="empty",
        also=(("OCPP_GROUPS_FILE", _groups_file),),
    )
    # ---- a station's own backend (README "Keeping a station's own backend") ----
    ocpp_upstream_url: str = setting(
        "OCPP_UPSTREAM_URL",
        parse_upstream_url,
        "",
        "The backend's URL; {cp}: the station id.",
        secret=True,  # a backend may take a token in its query string
    )
    ocpp_upstream_stations: frozenset[str] | None = setting(
        "OCPP_UPSTREAM_STATIONS", _ids_or_all, None, "Station ids forwarded.", shown="`*`"
    )
    ocpp_upstream_basic_auth: dict[str, str] | None = setting(
        "OCPP_UPSTREAM_BASIC_AUTH",
        parse_basic_auth,
        None,
        "Each station's password toward its backend.",
        secret=True,
        also=(("OCPP_UPSTREAM_BASIC_AUTH_FILE", _basic_auth_file),),
    )
    ocpp_upstream_tls_ca: str = setting(
        "OCPP_UPSTREAM_TLS_CA", _file, "", "The CA that verifies the backend."
    )
    ocpp_upstream_tls_cert: str = setting(
        "OCPP_UPSTREAM_TLS_CERT", _file, "", "A client certificate toward the backend."
    )
    ocpp_upstream_tls_key: str = setting(
        "OCPP_UPSTREAM_TLS_KEY", _file, "", "The key of OCPP_UPSTREAM_TLS_CERT."
    )
    ocpp_upstream_deny: frozenset[str] = setting(
        "OCPP_UPSTREAM_DENY",
        _id_set,
        frozenset(),
        "Backend actions not passed to stations.",
        shown="empty",
    )
    # ---- operations (README "Operations") ----
    http_port: int = setting(
        "HTTP_PORT", _int_in(0, 65535), 8080, "Port of the operator's HTTP server; 0: off."
    )
    http_host: str = setting("HTTP_HOST", _host, "0.0.0.0", "Address it binds to.")
    http_basic_auth: tuple[str, str] | None = setting(
        "HTTP_BASIC_AUTH",
        parse_user_password,
        None,
        "user:password every path but /healthz asks for.",
        secret=True,
    )
    # ---- standalone use (README "Direct topics") ----
    mqtt_direct_topics: bool = setting(
        "MQTT_DIRECT_TOPICS", _parse_bool, False, "Every key on its own topic, and /set."
    )
    homeassistant_discovery: bool = setting(
        "HOMEASSISTANT_DISCOVERY", _parse_bool, False, "Home Assistant MQTT discovery."
    )
    homeassistant_discovery_prefix: str = setting(
        "HOMEASSISTANT_DISCOVERY_PREFIX",
        _topic_prefix,
        "homeassistant",
        "Home Assistant's discovery prefix.",
    )

    @property
    def direct_topics(self) -> bool:
        """Discovery reads the direct topics, so it turns them on."""
        return self.mqtt_direct_topics or self.homeassistant_discovery

    @property
    def embedded_broker(self) -> bool:
        return self.mqtt_broker_host == ""


def declarations() -> list[tuple[str, Setting]]:
    """(field name, its declaration) of every setting, in order."""
    return [(f.name, f.metadata["setting"]) for f in fields(Settings)]


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
    for name, declared in declarations():
        for variable, parse in declared.variables:
            raw = merged.get(variable)
            if raw is None or raw.strip() == "":
                continue  # unset or empty: the default applies
            if name in values:
                problems.append(
                    f"{variable} is set, but so is the other way to give {name}; set one"
                )
                continue
            try:
                values[name] = parse(raw)
            except ValueError as error:
                shown = "<hidden>" if declared.secret else repr(raw)
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
    problems += upstream_problems(settings)
    if settings.mqtt_broker_password and not settings.mqtt_broker_username:
        problems.append("MQTT_BROKER_PASSWORD is set, but MQTT_BROKER_USERNAME is empty")
    return problems


def upstream_problems(settings: Settings) -> list[str]:
    """OCPP_UPSTREAM_*: TLS files that load, and settings that need the URL."""
    problems: list[str] = []
    url = settings.ocpp_upstream_url
    if not url:
        others = [
            name
            for name, value in (
                ("OCPP_UPSTREAM_BASIC_AUTH", settings.ocpp_upstream_basic_auth),
                ("OCPP_UPSTREAM_TLS_CA", settings.ocpp_upstream_tls_ca),
                ("OCPP_UPSTREAM_TLS_CERT", settings.ocpp_upstream_tls_cert),
                ("OCPP_UPSTREAM_DENY", settings.ocpp_upstream_deny),
            )
            if value
        ]
        if others:
            problems.append(f"{', '.join(others)} set, but OCPP_UPSTREAM_URL is empty")
        return problems
    if bool(settings.ocpp_upstream_tls_cert) != bool(settings.ocpp_upstream_tls_key):
        problems.append("OCPP_UPSTREAM_TLS_CERT and OCPP_UPSTREAM_TLS_KEY go together")
    elif url.startswith("wss:"):
        try:
            upstream_context(settings)
        except TlsError as error:
            problems.append(f"OCPP_UPSTREAM_TLS_CA/CERT/KEY: {error}")
    elif settings.ocpp_upstream_tls_ca or settings.ocpp_upstream_tls_cert:
        problems.append("OCPP_UPSTREAM_TLS_* need a wss:// OCPP_UPSTREAM_URL")
    return problems


def upstream_context(settings: Settings) -> ssl.SSLContext:
    """Verifies the backend (its CA, else the system's), with a client certificate if set."""
    context = client_context(settings.ocpp_upstream_tls_ca)
    if settings.ocpp_upstream_tls_cert:
        try:
            context.load_cert_chain(settings.ocpp_upstream_tls_cert, settings.ocpp_upstream_tls_key)
        except (OSError, ssl.SSLError) as error:
            raise TlsError(f"cannot load: {error}") from None
    return context
