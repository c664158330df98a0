"""Pure, table-driven: what site budgets accept from other instances over MQTT
(mqtt/groups_link.py). Anything else is dropped with a WARNING."""

from __future__ import annotations

from typing import Any

import pytest

from connector.mqtt.groups_link import valid_apply, valid_report, valid_result

APPLY = {"id": "0-1", "from": 0, "cp": "CP1", "c": 1, "w": 7360.0, "purpose": "TxProfile"}
REPORT: dict[str, Any] = {
    "instance": 1,
    "connected": True,
    "learned": True,
    "one_phase": False,
    "connectors": {"1": {"phases": 3, "turn": 1.7e9, "accepted": 7360, "default": None}},
}


@pytest.mark.parametrize(
    ("change", "valid"),
    [
        ({}, True),
        ({"phases": 1}, True),
        ({"phases": 3}, True),
        ({"phases": 2.5}, False),
        ({"phases": True}, False),
        ({"w": -1}, False),
        ({"w": float("inf")}, False),
        ({"w": 1e12}, False),
        ({"c": 0}, False),
        ({"purpose": "ChargePointMaxProfile"}, False),
        ({"cp": ""}, False),
        ({"cp": "x" * 201}, False),
        ({"from": 64}, False),
        ({"id": 5}, False),
    ],
)
def test_apply(change: dict[str, Any], valid: bool) -> None:
    assert valid_apply({**APPLY, **change}) is valid


def connector(**change: Any) -> dict[str, Any]:
    return {**REPORT, "connectors": {"1": {**REPORT["connectors"]["1"], **change}}}


@pytest.mark.parametrize(
    ("report", "valid"),
    [
        (REPORT, True),
        ({**REPORT, "instance": 64}, False),
        ({**REPORT, "connected": "yes"}, False),
        ({**REPORT, "connectors": []}, False),
        ({**REPORT, "connectors": {str(n): {"phases": 3} for n in range(1, 66)}}, False),
        ({**REPORT, "connectors": {"x": {"phases": 3}}}, False),
        (connector(phases=4), False),
        (connector(accepted=-5), False),
        (connector(turn="now"), False),
        (connector(sent_phases=2), False),
        (connector(sent_phases=1), True),
        ([], False),
    ],
)
def test_report(report: Any, valid: bool) -> None:
    assert valid_report(report) is valid


def test_result() -> None:
    assert valid_result({"id": "0-1", "ok": True})
    assert not valid_result({"id": "0-1", "ok": 1})
