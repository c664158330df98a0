"""The compiled schema checks agree with the ocpp library's own validation.

Generated payloads, near-valid (one field replaced, removed or added, at any
depth) and arbitrary, for every message a 1.6 station sends and every answer
the connector reads: each is accepted by both or refused by both, with the
same error code.
"""

from __future__ import annotations

import asyncio
import copy
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from ocpp.exceptions import OCPPError
from ocpp.messages import Call, CallResult, validate_payload

from connector.stations import schema_validation
from connector.tests.test_hostile_input import FAST, JSON, JSON_SCALARS
from connector.versions import OCPP16

STAMP = "2026-01-01T00:00:00Z"
# (message type, action) -> a valid payload
VALID: dict[tuple[int, str], dict[str, Any]] = {
    (2, "BootNotification"): {"chargePointVendor": "V", "chargePointModel": "M"},
    (2, "Heartbeat"): {},
    (2, "StatusNotification"): {"connectorId": 1, "errorCode": "NoError", "status": "Available"},
    (2, "MeterValues"): {
        "connectorId": 1,
        "transactionId": 7,
        "meterValue": [
            {
                "timestamp": STAMP,
                "sampledValue": [
                    {"value": "1000", "unit": "Wh"},
                    {"value": "230.1", "measurand": "Voltage", "phase": "L1-N", "unit": "V"},
                ],
            }
        ],
    },
    (2, "StartTransaction"): {"connectorId": 1, "idTag": "T", "meterStart": 0, "timestamp": STAMP},
    (2, "StopTransaction"): {
        "transactionId": 1,
        "meterStop": 10,
        "timestamp": STAMP,
        "transactionData": [{"timestamp": STAMP, "sampledValue": [{"value": "1"}]}],
    },
    (2, "Authorize"): {"idTag": "T"},
    (2, "DataTransfer"): {"vendorId": "V", "messageId": "m", "data": "d"},
    (2, "DiagnosticsStatusNotification"): {"status": "Idle"},
    (2, "FirmwareStatusNotification"): {"status": "Idle"},
    (2, "SetChargingProfile"): {
        "connectorId": 1,
        "csChargingProfiles": {
            "chargingProfileId": 1,
            "stackLevel": 0,
            "chargingProfilePurpose": "TxDefaultProfile",
            "chargingProfileKind": "Absolute",
            "chargingSchedule": {
                "chargingRateUnit": "A",
                "chargingSchedulePeriod": [{"startPeriod": 0, "limit": 15.9}],
            },
        },
    },
    (3, "GetConfiguration"): {"configurationKey": [{"key": "K", "readonly": True, "value": "1"}]},
    (3, "SetChargingProfile"): {"status": "Accepted"},
    (3, "ChangeConfiguration"): {"status": "Accepted"},
    (3, "TriggerMessage"): {"status": "Accepted"},
    (3, "ClearChargingProfile"): {"status": "Accepted"},
    (3, "DataTransfer"): {"status": "Accepted", "data": "x"},
    (3, "GetCompositeSchedule"): {"status": "Accepted", "connectorId": 1},
}
KINDS = sorted(VALID)


def message(kind: tuple[int, str], payload: Any) -> Call | CallResult:
    if kind[0] == 2:
        return Call("id", kind[1], payload)
    return CallResult("id", payload, kind[1])


def outcome(check: Any, kind: tuple[int, str], payload: Any) -> tuple[str, str] | None:
    # Ours takes the version table's entry; the library, the version's name.
    version = OCPP16 if check is schema_validation.validate else OCPP16.name
    try:
        asyncio.run(check(message(kind, copy.deepcopy(payload)), version))
    except OCPPError as error:
        return type(error).__name__, error.code
    return None


def assert_agree(kind: tuple[int, str], payload: Any) -> None:
    ours = outcome(schema_validation.validate, kind, payload)
    library = outcome(validate_payload, kind, payload)
    assert ours == library, (kind, payload)


@pytest.mark.parametrize("kind", KINDS, ids=[f"{t}-{a}" for t, a in KINDS])
def test_valid_examples_pass(kind: tuple[int, str]) -> None:
    assert outcome(schema_validation.validate, kind, VALID[kind]) is None


@st.composite
def near_valid(draw: st.DrawFn) -> tuple[tuple[int, str], Any]:
    """A valid payload with one change somewhere inside it."""
    kind = draw(st.sampled_from(KINDS))
    payload = copy.deepcopy(VALID[kind])
    node: Any = payload
    # Walk down a few levels at random, then change one thing there.
    for _ in range(draw(st.integers(0, 4))):
        children = list(node.items()) if isinstance(node, dict) else list(enumerate(node))
        children = [(k, v) for k, v in children if isinstance(v, dict | list) and v]
        if not children:
            break
        node = draw(st.sampled_from(children))[1]
    change = draw(st.sampled_from(["replace", "remove", "add"]))
    if isinstance(node, dict):
        keys = sorted(node)
        if change == "add" or not keys:
            node[draw(st.text(max_size=12) | st.sampled_from(keys or ["x"]))] = draw(JSON)
        elif change == "remove":
            del node[draw(st.sampled_from(keys))]
        else:
            value = JSON | st.text(min_size=20, max_size=600) | st.integers(-5, 5)
            node[draw(st.sampled_from(keys))] = draw(value)
    elif node:
        index = draw(st.integers(0, len(node) - 1))
        node[index] = draw(JSON_SCALARS | JSON)
    return kind, payload


@settings(FAST, max_examples=2000)
@given(near_valid())
def test_near_valid_payloads_agree(case: tuple[tuple[int, str], Any]) -> None:
    assert_agree(*case)


@settings(FAST, max_examples=500)
@given(st.sampled_from(KINDS), st.dictionaries(st.text(max_size=20), JSON, max_size=5))
def test_arbitrary_payloads_agree(kind: tuple[int, str], payload: dict[str, Any]) -> None:
    assert_agree(kind, payload)
