"""Pure tests of actuator validation and the OCPP requests built from it."""

from __future__ import annotations

import pytest

from connector.actuators.trigger_message import parse_trigger
from connector.core import commands as cmd
from connector.ocpp16.requests import trigger_payload
from connector.versions import OCPP16

SEND_CHARGING_PROFILE = "execute_send_charging_profile"
TRIGGER_MESSAGE = "execute_trigger_message"
ENABLED = (SEND_CHARGING_PROFILE, TRIGGER_MESSAGE)


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        (
            "CP_1__execute_send_charging_profile",
            cmd.ActuatorKey("CP_1", SEND_CHARGING_PROFILE, None),
        ),
        (
            "CP_1__execute_send_charging_profile__2",
            cmd.ActuatorKey("CP_1", SEND_CHARGING_PROFILE, 2),
        ),
        ("CP 1__execute_trigger_message__0", cmd.ActuatorKey("CP 1", TRIGGER_MESSAGE, 0)),
        (
            "CP_1__execute_send_charging_profile__999",
            cmd.ActuatorKey("CP_1", SEND_CHARGING_PROFILE, 999),
        ),
    ],
)
def test_actuator_keys(key: str, expected: cmd.ActuatorKey) -> None:
    assert cmd.parse_actuator_key(key, ENABLED) == expected


@pytest.mark.parametrize(
    "key",
    [
        "CP_1__execute_reset",
        "CP_1__execute_send_charging_profile__x",
        "CP_1__execute_send_charging_profile__-1",
        "CP_1__execute_send_charging_profile__1000",
        "CP_1__execute_send_charging_profile__\u00b2",  # a digit to isdigit(), not to int()
        "CP_1__execute_send_charging_profile__1__2",
        "CP_1",
        "__execute_trigger_message",
    ],
)
def test_bad_actuator_keys(key: str) -> None:
    with pytest.raises(cmd.InvalidCommand):
        cmd.parse_actuator_key(key, ENABLED)


def test_actuator_not_offered() -> None:
    with pytest.raises(cmd.InvalidCommand, match="offered"):
        cmd.parse_actuator_key("CP_1__execute_trigger_message", (SEND_CHARGING_PROFILE,))


@pytest.mark.parametrize(
    ("payload", "value"),
    [
        (b'{"value": 11000, "timestamp": 1}', 11000),
        (b'{"value": "11000"}', "11000"),
        (b'{"value": null}', None),
    ],
)
def test_payloads(payload: bytes, value: object) -> None:
    assert cmd.parse_actuator_payload(payload) == value


@pytest.mark.parametrize(
    "payload", [b"11000", b"not json", b'{"timestamp": 1}', b"\xff", b"[" * 5000, b"[]"]
)
def test_bad_payloads(payload: bytes) -> None:
    with pytest.raises(cmd.InvalidCommand):
        cmd.parse_actuator_payload(payload)


@pytest.mark.parametrize(
    ("value", "limit"),
    [
        (11000, 11000),
        ("11000", 11000),
        (" 3700.55 ", 3700.5),
        (0, 0),
        ("0", 0),
        (1.99, 1.9),
        (None, None),
        ("", None),
        ("  ", None),
    ],
)
def test_power_limits(value: object, limit: float | None) -> None:
    assert cmd.parse_power_limit(value) == limit


@pytest.mark.parametrize("value", [-1, "-5", "abc", True, [1], {"a": 1}, float("nan"), "inf", 1e12])
def test_bad_power_limits(value: object) -> None:
    with pytest.raises(cmd.InvalidCommand):
        cmd.parse_power_limit(value)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (0, "BootNotification"),
        (1, "DiagnosticsStatusNotification"),
        (2, "FirmwareStatusNotification"),
        (3, "Heartbeat"),
        (4, "MeterValues"),
        ("4", "MeterValues"),
        (4.0, "MeterValues"),
        (5, "StatusNotification"),
        ("MeterValues", "MeterValues"),
        ("metervalues", "MeterValues"),
    ],
)
def test_triggers(value: object, message: str) -> None:
    assert parse_trigger(value, OCPP16) == message


@pytest.mark.parametrize("value", [6, -1, "6", "Reset", None, True, 4.5, ""])
def test_bad_triggers(value: object) -> None:
    with pytest.raises(cmd.InvalidCommand):
        parse_trigger(value, OCPP16)


def test_trigger_requests() -> None:
    assert trigger_payload("MeterValues", None) == {"requestedMessage": "MeterValues"}
    assert trigger_payload("MeterValues", 2) == {
        "requestedMessage": "MeterValues",
        "connectorId": 2,
    }
