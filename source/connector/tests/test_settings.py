"""Settings: environment over .env, every bad variable reported, exit code 2."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from connector.settings import ACTUATORS, Settings, SettingsError, load_settings, parse_ocpp_config

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
        ('["execute_send_charging_profile","execute_trigger_message"]', ACTUATORS),
        ('["execute_trigger_message"]', ("execute_trigger_message",)),
        ('"execute_trigger_message"', ("execute_trigger_message",)),
        (
            "execute_trigger_message, execute_send_charging_profile",
            ("execute_trigger_message", "execute_send_charging_profile"),
        ),
        ("all", ACTUATORS),
        ("", ACTUATORS),
    ],
)
def test_ocpp_config_forms(raw: str, expected: tuple[str, ...]) -> None:
    assert parse_ocpp_config(raw) == expected


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
