"""Pure tests: secrets a station holds never reach MQTT or the logs (issue 17)."""

from __future__ import annotations

from typing import Any

import pytest

from connector.core.secrets import REDACTED, is_secret, may_hold_secret, redact, redact_text
from connector.ocpp2.mapping import (
    event_variables,
    get_variables_result,
    report_variables,
)


@pytest.mark.parametrize(
    ("name", "secret"),
    [
        ("AuthorizationKey", True),
        ("authorizationkey", True),
        ("BasicAuthPassword", True),
        ("MqttPassword", True),
        ("ClientSecret", True),
        ("TLSPrivateKey", True),
        ("HeartbeatInterval", False),
        ("MeterValuesSampledData", False),
        (None, False),
        (7, False),
    ],
)
def test_secret_names(name: Any, secret: bool) -> None:
    assert is_secret(name) is secret


@pytest.mark.parametrize(
    ("text", "redacted"),
    [
        ("AuthorizationKey=0123abcd", "AuthorizationKey=<redacted>"),
        ('{"value": "authorizationkey = hunter2"}', '{"value": "authorizationkey = <redacted>"}'),
        # A value's own commas and spaces are redacted with it, up to a quote.
        ("SecurityCtrlr.BasicAuthPassword=pw,x y", "SecurityCtrlr.BasicAuthPassword=<redacted>"),
        ('AuthorizationKey=a b"}', 'AuthorizationKey=<redacted>"}'),
        ("HeartbeatInterval=300", "HeartbeatInterval=300"),
        ("İİİ password=x", "İİİ password=<redacted>"),  # lower() changes the length of 'İ'
        ("password, no assignment", "password, no assignment"),
    ],
)
def test_redact_text(text: str, redacted: str) -> None:
    assert redact_text(text) == redacted


def test_redact_a_get_configuration_answer_and_a_2x_report() -> None:
    answer = [
        3,
        "id",
        {
            "configurationKey": [
                {"key": "AuthorizationKey", "readonly": False, "value": "0123abcd"},
                {"key": "HeartbeatInterval", "readonly": False, "value": "300"},
            ]
        },
    ]
    assert may_hold_secret(str(answer))
    assert redact(answer)[2]["configurationKey"] == [
        {"key": "AuthorizationKey", "readonly": False, "value": REDACTED},
        {"key": "HeartbeatInterval", "readonly": False, "value": "300"},
    ]
    report = {
        "reportData": [
            {
                "component": {"name": "SecurityCtrlr"},
                "variable": {"name": "BasicAuthPassword"},
                "variableAttribute": [{"value": "pw", "mutability": "WriteOnly"}],
            },
            {
                "component": {"name": "Vendor"},
                "variable": {"name": "Token"},
                "variableAttribute": [{"value": "t", "mutability": "WriteOnly"}],
            },
            {
                "component": {"name": "TxCtrlr"},
                "variable": {"name": "EVConnectionTimeOut"},
                "variableAttribute": [{"value": "60"}],
            },
        ]
    }
    values = [item["variableAttribute"][0]["value"] for item in redact(report)["reportData"]]
    assert values == [REDACTED, REDACTED, "60"]
    assert not may_hold_secret('[2,"a","Heartbeat",{}]')


def test_2x_mapping_leaves_secrets_out() -> None:
    report = [
        {
            "component": {"name": "SecurityCtrlr"},
            "variable": {"name": "BasicAuthPassword"},
            "variableAttribute": [{"value": "pw"}],
        },
        {
            "component": {"name": "Vendor"},
            "variable": {"name": "Token"},
            "variableAttribute": [{"value": "t", "mutability": "WriteOnly"}],
        },
        {
            "component": {"name": "TxCtrlr"},
            "variable": {"name": "EVConnectionTimeOut"},
            "variableAttribute": [{"value": "60"}],
        },
    ]
    assert list(report_variables("CP", report, 1)) == ["CP__Variable__TxCtrlr__EVConnectionTimeOut"]
    results = [
        {
            "attributeStatus": "Accepted",
            "component": {"name": "SecurityCtrlr"},
            "variable": {"name": "BasicAuthPassword"},
            "attributeValue": "pw",
        }
    ]
    assert get_variables_result("CP", results, 1) == []
    events = [
        {
            "timestamp": "2026-01-01T00:00:00Z",
            "component": {"name": "SecurityCtrlr"},
            "variable": {"name": "BasicAuthPassword"},
            "actualValue": "pw",
        }
    ]
    assert event_variables("CP", events, 1) == []


def test_long_texts_are_redacted_in_one_pass() -> None:
    """A regex with a name on both sides of the word took 22 s on 32 KB (issue 17,
    review); these run in milliseconds now (bench/hostile.py times them)."""
    assert redact_text("password " + "a" * 64_000) == "password " + "a" * 64_000
    assert redact_text("password=" * 7_000) == "password=<redacted>"
    assert redact_text("a" * 64_000 + "Password=x") == "a" * 64_000 + "Password=<redacted>"
