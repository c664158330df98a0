"""Pure tests: secrets a station holds never reach MQTT or the logs (issue 17)."""

from __future__ import annotations

from typing import Any

import pytest

from connector.core.datapoints_v2 import (
    event_variables,
    get_variables_result,
    report_variables,
)
from connector.core.secrets import REDACTED, is_secret, may_hold_secret, redact, redact_text


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
        (
            "SecurityCtrlr.BasicAuthPassword=pw,x",
            "SecurityCtrlr.BasicAuthPassword=<redacted>,x",
        ),
        ("HeartbeatInterval=300", "HeartbeatInterval=300"),
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
