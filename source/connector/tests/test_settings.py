"""Settings: environment over .env, every bad variable reported, exit code 2."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from connector.actuators import DEFAULTS as DEFAULT_ACTUATORS
from connector.actuators import NAMES as ACTUATORS
from connector.settings import (
    Settings,
    SettingsError,
    declarations,
    load_settings,
    parse_ocpp_config,
    parse_ocpp_versions,
)

ROOT = Path(__file__).resolve().parents[3]


def test_defaults_without_env_file() -> None:
    assert load_settings({}, env_file=None) == Settings()


def test_environment_wins_over_env_file(tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text("CONNECTOR_NAME=from-file\nOCPP_PORT=9100\nDEBUG=TRUE\n")
    settings = load_settings({"CONNECTOR_NAME": "from-env"}, env_file=env_file)
    assert (settings.connector_name, settings.ocpp_port, settings.debug) == ("from-env", 9100, True)


def test_the_repositorys_env_file_holds_the_defaults() -> None:
    assert load_settings({}, env_file=ROOT / ".env") == Settings()


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ('["execute_send_charging_profile","execute_trigger_message"]', DEFAULT_ACTUATORS),
        ('["execute_trigger_message"]', ("execute_trigger_message",)),
        ('"execute_trigger_message"', ("execute_trigger_message",)),
        (
            "execute_trigger_message, execute_send_charging_profile",
            ("execute_trigger_message", "execute_send_charging_profile"),
        ),
        ("all", ACTUATORS),
        ("", DEFAULT_ACTUATORS),
        ("execute_reset,execute_unlock_connector", ("execute_reset", "execute_unlock_connector")),
    ],
)
def test_ocpp_config_forms(raw: str, expected: tuple[str, ...]) -> None:
    assert parse_ocpp_config(raw) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("", ("ocpp1.6", "ocpp2.0.1", "ocpp2.1")),
        ("ocpp2.1, ocpp1.6", ("ocpp1.6", "ocpp2.1")),  # kept oldest first: newest wins
        ("ocpp2.0.1", ("ocpp2.0.1",)),
    ],
)
def test_ocpp_versions(raw: str, expected: tuple[str, ...]) -> None:
    assert parse_ocpp_versions(raw) == expected


def test_an_unknown_ocpp_version_is_reported() -> None:
    with pytest.raises(SettingsError, match=r"OCPP_VERSIONS.*ocpp2\.0'"):
        load_settings({"OCPP_VERSIONS": "ocpp1.6,ocpp2.0"}, env_file=None)


def test_every_bad_variable_is_reported() -> None:
    with pytest.raises(SettingsError) as caught:
        load_settings(
            {
                "MQTT_BROKER_PORT": "eighty",
                "OCPP_PORT": "70000",
                "DEBUG": "maybe",
                "OCPP_CONFIG": '["execute_fly"]',
                "HEARTBEAT_INTERVAL": "-1",
                "CONNECTOR_NAME": "a/b",
            },
            env_file=None,
        )
    problems = caught.value.problems
    assert len(problems) == 6
    for variable, value in [
        ("MQTT_BROKER_PORT", "eighty"),
        ("OCPP_PORT", "70000"),
        ("DEBUG", "maybe"),
        ("OCPP_CONFIG", "execute_fly"),
        ("HEARTBEAT_INTERVAL", "-1"),
        ("CONNECTOR_NAME", "a/b"),
    ]:
        line = next(p for p in problems if p.startswith(variable + "="))
        assert value in line and "allowed" in line


def test_main_exits_2_with_one_line_per_bad_variable() -> None:
    env = {**os.environ, "OCPP_PORT": "x", "SEND_RAW_MESSAGE_TO_DB": "perhaps"}
    result = subprocess.run(
        [sys.executable, "source/connector/main.py"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 2
    assert any("OCPP_PORT='x'" in line for line in lines)
    assert any("SEND_RAW_MESSAGE_TO_DB='perhaps'" in line for line in lines)


def test_charging_control_settings() -> None:
    settings = load_settings(
        {
            "OCPP_VOLTAGE": "240",
            "OCPP_PHASES": "1",
            "OCPP_CHARGING_PROFILE_STRATEGY": "TX_DEFAULT",
            "OCPP_STACK_LEVEL": "0",
            "OCPP_METER_VALUES_SAMPLED_DATA": "energy.active.import.register, Power.Active.Import",
            "OCPP_METER_VALUE_SAMPLE_INTERVAL": "60",
            "OCPP_ENERGY_MONOTONIC": "FALSE",
        },
        env_file=None,
    )
    assert settings.ocpp_voltage == 240
    assert settings.ocpp_phases == 1
    assert settings.ocpp_charging_profile_strategy == "tx_default"
    assert settings.ocpp_stack_level == 0  # 0 forces level 0, unlike empty
    assert settings.ocpp_meter_values_sampled_data == (
        "Energy.Active.Import.Register",
        "Power.Active.Import",
    )
    assert settings.ocpp_meter_value_sample_interval == 60
    assert settings.ocpp_energy_monotonic is False
    assert load_settings({"OCPP_STACK_LEVEL": ""}, env_file=None).ocpp_stack_level is None


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("OCPP_VOLTAGE", "12"),
        ("OCPP_VOLTAGE", "high"),
        ("OCPP_PHASES", "4"),
        ("OCPP_CHARGING_PROFILE_STRATEGY", "fastest"),
        ("OCPP_STACK_LEVEL", "-1"),
        ("OCPP_METER_VALUES_SAMPLED_DATA", "Energy,Power"),
        ("OCPP_METER_VALUE_SAMPLE_INTERVAL", "often"),
        ("OCPP_ENERGY_MONOTONIC", "sometimes"),
    ],
)
def test_bad_charging_control_settings(variable: str, value: str) -> None:
    with pytest.raises(SettingsError) as caught:
        load_settings({variable: value}, env_file=None)
    (line,) = caught.value.problems
    assert line.startswith(f"{variable}={value!r}") and "allowed" in line


def test_security_settings(tmp_path: Path) -> None:
    passwords = tmp_path / "passwords.json"
    passwords.write_text('{"CP_1": "pass-1x", "CP 2": "pass-2y"}')
    settings = load_settings(
        {
            "OCPP_BASIC_AUTH_FILE": str(passwords),
            "OCPP_ALLOWED_CHARGE_POINTS": "CP_1, CP 2",
            "OCPP_ID_TAGS": "TAG1,TAG2",
            "OCPP_MAX_MESSAGE_SIZE": "4096",
            "OCPP_MAX_CONNECTIONS": "500",
            "OCPP_PING_INTERVAL": "0",
            "MQTT_BROKER_HOST": "broker",
            "MQTT_BROKER_USERNAME": "bemcom",
            "MQTT_BROKER_PASSWORD": "pw",
            "MQTT_MAX_QUEUED": "1000",
        },
        env_file=None,
    )
    assert settings.ocpp_basic_auth == {"CP_1": "pass-1x", "CP 2": "pass-2y"}
    assert settings.ocpp_allowed_charge_points == {"CP_1", "CP 2"}
    assert settings.ocpp_id_tags == {"TAG1", "TAG2"}
    assert (settings.ocpp_max_message_size, settings.ocpp_max_connections) == (4096, 500)
    assert settings.ocpp_ping_interval == 0
    assert (settings.mqtt_broker_username, settings.mqtt_max_queued) == ("bemcom", 1000)
    # Secrets never show in a repr, a log line or an error.
    assert "pass-1x" not in repr(settings) and "pw" not in repr(settings)
    inline = load_settings({"OCPP_BASIC_AUTH": '{"CP_1": "x"}'}, env_file=None)
    assert inline.ocpp_basic_auth == {"CP_1": "x"}


@pytest.mark.parametrize(
    ("environ", "fragment"),
    [
        ({"OCPP_BASIC_AUTH": '{"CP_1": 5}'}, "OCPP_BASIC_AUTH=<hidden>"),
        ({"OCPP_BASIC_AUTH": "hunter2"}, "OCPP_BASIC_AUTH=<hidden>"),
        ({"OCPP_BASIC_AUTH_FILE": "/nonexistent"}, "OCPP_BASIC_AUTH_FILE"),
        ({"OCPP_BASIC_AUTH": "{}", "OCPP_BASIC_AUTH_FILE": "/x"}, "set one"),
        ({"OCPP_TLS_CERT": "/etc/hostname"}, "OCPP_TLS_CERT"),
        ({"OCPP_TLS_CA": "/etc/hostname"}, "OCPP_TLS_CA needs"),
        ({"OCPP_MAX_MESSAGE_SIZE": "10"}, "OCPP_MAX_MESSAGE_SIZE"),
        ({"OCPP_PING_INTERVAL": "-1"}, "OCPP_PING_INTERVAL"),
        ({"MQTT_TLS": "TRUE"}, "embedded broker has no TLS"),
        ({"MQTT_BROKER_HOST": "b", "MQTT_TLS_CA": "/etc/hostname"}, "MQTT_TLS is not TRUE"),
        ({"MQTT_BROKER_HOST": "b", "MQTT_BROKER_PASSWORD": "pw"}, "USERNAME is empty"),
        ({"MQTT_BROKER_PASSWORD": "hunter2", "MQTT_MAX_QUEUED": "0"}, "MQTT_MAX_QUEUED"),
    ],
)
def test_bad_security_settings(environ: dict[str, str], fragment: str) -> None:
    with pytest.raises(SettingsError) as caught:
        load_settings(environ, env_file=None)
    message = "\n".join(caught.value.problems)
    assert fragment in message
    assert "hunter2" not in message


def readme_rows() -> dict[str, str]:
    """Every variable in the README's tables -> the default its row shows."""
    rows: dict[str, str] = {}
    for line in (ROOT / "README.md").read_text(encoding="utf-8").splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) < 3 or not cells[0].startswith("`") or cells[0].startswith("`<"):
            continue
        variables = [part.strip(" `") for part in cells[0].replace("/", ",").split(",")]
        defaults = [part.strip() for part in cells[1].split(", ")]
        if len(defaults) != len(variables):
            defaults = [cells[1]] * len(variables)
        for variable, default in zip(variables, defaults, strict=True):
            if variable.isupper():
                rows[variable] = default
    return rows


def test_the_readme_lists_every_setting_with_its_default() -> None:
    """Each setting is declared once (settings.py); the README's tables follow it."""
    rows = readme_rows()
    for field_name, declared in declarations():
        for variable, _ in declared.variables:
            assert variable in rows, f"{variable} ({field_name}) is not in the README's tables"
            if variable == declared.variables[0][0]:  # OCPP_BASIC_AUTH_FILE shares a row
                shown = rows[variable].replace("`", "")
                assert shown == declared.shown.replace("`", ""), (variable, rows[variable])
