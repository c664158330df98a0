"""Pure tests of the datapoint map check: which entries would feed back."""

from __future__ import annotations

from typing import Any

import pytest

from connector.core.datapoint_map import check_map, is_own_topic

NAME = "ocpp-connector"
LIMIT = "CP_1__execute_send_charging_profile"
IN_FORCE = "CP_1__ChargingLimit__W"


@pytest.mark.parametrize(
    ("topic", "own"),
    [
        ("ocpp-connector/logs", True),
        ("ocpp-connector/heartbeat", True),
        ("ocpp-connector/datapoint_map", True),
        ("ocpp-connector/available_datapoints", True),
        ("ocpp-connector/state/charging_limits/CP_1", True),
        ("ocpp-connector/anything/else", True),
        # BEMCom's API maps datapoints here.
        ("ocpp-connector/messages/12/value", False),
        ("ocpp-connector/messages/12/setpoint", False),
        ("ocpp-connector", False),
        ("ocpp-connector-2/logs", False),
        ("home/ocpp-connector/logs", False),
        ("ocpp-connector/messages", True),
    ],
)
def test_own_topics(topic: str, own: bool) -> None:
    assert is_own_topic(NAME, topic) is own


CASES = {
    "clean map": (
        {IN_FORCE: "home/cp1/limit_state"},
        {"home/cp1/limit": LIMIT},
        {IN_FORCE: "home/cp1/limit_state"},
        {"home/cp1/limit": LIMIT},
        [],
    ),
    "one topic both ways keeps the command": (
        {IN_FORCE: "home/cp1/limit", "CP_1__connected": "home/cp1/connected"},
        {"home/cp1/limit": LIMIT},
        {"CP_1__connected": "home/cp1/connected"},
        {"home/cp1/limit": LIMIT},
        ["home/cp1/limit"],
    ),
    "log topic as actuator": (
        {},
        {"ocpp-connector/logs": LIMIT, "home/cp1/limit": LIMIT},
        {},
        {"home/cp1/limit": LIMIT},
        ["ocpp-connector/logs"],
    ),
    "own topic as sensor": (
        {IN_FORCE: "ocpp-connector/datapoint_map"},
        {},
        {},
        {},
        ["ocpp-connector/datapoint_map"],
    ),
    "own topic both ways": (
        {IN_FORCE: "ocpp-connector/heartbeat"},
        {"ocpp-connector/heartbeat": LIMIT},
        {},
        {},
        ["ocpp-connector/heartbeat", "ocpp-connector/heartbeat"],
    ),
    "bemcom messages": (
        {IN_FORCE: "ocpp-connector/messages/1/value"},
        {"ocpp-connector/messages/2/value": LIMIT},
        {IN_FORCE: "ocpp-connector/messages/1/value"},
        {"ocpp-connector/messages/2/value": LIMIT},
        [],
    ),
}


@pytest.mark.parametrize("case", CASES.values(), ids=list(CASES))
def test_check_map(case: tuple[Any, ...]) -> None:
    sensor, actuator, kept_sensor, kept_actuator, conflicting_topics = case
    checked = check_map(NAME, sensor, actuator)
    assert checked.sensor == kept_sensor
    assert checked.actuator == kept_actuator
    assert len(checked.conflicts) == len(conflicting_topics)
    for line, topic in zip(checked.conflicts, conflicting_topics, strict=True):
        assert repr(topic) in line
