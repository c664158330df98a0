"""Pure tests of OCPP-J frame parsing, including the frames that end ocpp 2.1.0's start()."""

from __future__ import annotations

import pytest
from ocpp.messages import Call, CallError, CallResult

from connector.frames import FrameError, ocpp16_code, parse_frame


@pytest.mark.parametrize(
    ("raw", "unique_id", "code"),
    [
        ("[" * 5000, None, "FormationViolation"),  # RecursionError in json.loads
        ('[2,"x",["Heartbeat"],{}]', "x", "FormationViolation"),  # non-string action
        ('[2,"x","Heartbeat"]', "x", "FormationViolation"),
        ('[2,"x","Heartbeat",[]]', "x", "FormationViolation"),
        ('[2,"x","Heartbeat",{}', "x", "FormationViolation"),  # cut short: id salvaged
        ("not json", None, "FormationViolation"),
        ("{}", None, "FormationViolation"),
        ("[]", None, "FormationViolation"),
        ("[2]", None, "FormationViolation"),
        ('[2,5,"Heartbeat",{}]', None, "FormationViolation"),
        ('[9,"y","Heartbeat",{}]', "y", "ProtocolError"),
        ('["2","y","Heartbeat",{}]', "y", "ProtocolError"),
        ('[true,"y","Heartbeat",{}]', "y", "ProtocolError"),
        ('[2,"' + "a" * 37 + '","Heartbeat",{}]', "a" * 37, "FormationViolation"),
        (b"\xff\xfe", None, "FormationViolation"),
        ('[3,"z"]', None, "FormationViolation"),
        ('[4,"z"]', None, "FormationViolation"),
    ],
)
def test_bad_frames(raw: str | bytes, unique_id: str | None, code: str) -> None:
    result = parse_frame(raw)
    assert isinstance(result, FrameError)
    assert (result.unique_id, result.code) == (unique_id, code)
    assert result.description


def test_call() -> None:
    result = parse_frame('[2,"1","Heartbeat",{}]')
    assert isinstance(result, Call)
    assert (result.unique_id, result.action, result.payload) == ("1", "Heartbeat", {})


def test_call_result_and_error() -> None:
    result = parse_frame('[3,"1",{"status":"Accepted"}]')
    assert isinstance(result, CallResult) and result.payload == {"status": "Accepted"}
    error = parse_frame('[4,"1","NotSupported","no",{}]')
    assert isinstance(error, CallError) and error.error_code == "NotSupported"
    lenient = parse_frame('[4,"1","GenericError"]')
    assert isinstance(lenient, CallError) and lenient.error_details == {}


@pytest.mark.parametrize(
    ("library_code", "ocpp16"),
    [
        ("FormatViolation", "FormationViolation"),
        ("OccurrenceConstraintViolation", "OccurenceConstraintViolation"),
        ("ProtocolError", "ProtocolError"),
        ("TypeConstraintViolation", "TypeConstraintViolation"),
    ],
)
def test_error_codes_use_the_ocpp16_spelling(library_code: str, ocpp16: str) -> None:
    assert ocpp16_code(library_code) == ocpp16
