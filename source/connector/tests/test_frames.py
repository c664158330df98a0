"""Pure tests of OCPP-J frame parsing, including the frames that end ocpp 2.1.0's start()."""

from __future__ import annotations

import pytest
from ocpp.messages import Call, CallError, CallResult

from connector.stations.frames import CallResultError, FrameError, Send, parse_frame
from connector.versions import BY_NAME, OCPP16, OCPP21, OCPP201


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
    assert OCPP16.payload_error(library_code, "") == ocpp16


# ---- OCPP 2.0.1 and 2.1 ------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "version", "expected"),
    [
        # SEND (6) and CALLRESULTERROR (5) exist in 2.1 only.
        ('[6,"s1","NotifyPeriodicEventStream",{"id":1}]', "2.1", ("Send", "s1")),
        ('[5,"r1","FormatViolation","bad answer",{}]', "2.1", ("CallResultError", "r1")),
        ('[6,"s1","NotifyPeriodicEventStream",{"id":1}]', "1.6", ("ProtocolError", "s1")),
        ('[6,"s1","X",{}]', "2.0.1", ("MessageTypeNotSupported", "s1")),
        ('[5,"r1","FormatViolation"]', "2.0.1", ("MessageTypeNotSupported", "r1")),
        # A bad SEND is never answered: no message id in the error.
        ('[6,"s2","NotifyPeriodicEventStream"]', "2.1", ("FormatViolation", None)),
        ('[6,"s2",7,{}]', "2.1", ("FormatViolation", None)),
        ('[6,"s2","X",[]]', "2.1", ("FormatViolation", None)),
        ('[5,"r2"]', "2.1", ("FormatViolation", None)),
        # The 2.x spelling of the same problems.
        ('[2,"x","Heartbeat"]', "2.0.1", ("FormatViolation", "x")),
        ('[2,"x","Heartbeat",{}', "2.1", ("FormatViolation", "x")),
        ('[9,"y","Heartbeat",{}]', "2.1", ("MessageTypeNotSupported", "y")),
        ('[2,"x","Heartbeat"]', "1.6", ("FormationViolation", "x")),
    ],
)
def test_frames_by_version(raw: str, version: str, expected: tuple[str, str | None]) -> None:
    result = parse_frame(raw, BY_NAME[version])
    if isinstance(result, FrameError):
        assert (result.code, result.unique_id) == expected
    else:
        assert (type(result).__name__, result.unique_id) == expected


def test_send_and_call_result_error_carry_their_content() -> None:
    send = parse_frame('[6,"s1","NotifyPeriodicEventStream",{"id":1,"pending":0}]', OCPP21)
    assert isinstance(send, Send)
    assert (send.action, send.payload) == ("NotifyPeriodicEventStream", {"id": 1, "pending": 0})
    error = parse_frame('[5,"r1","FormatViolation","bad answer",{}]', OCPP21)
    assert isinstance(error, CallResultError)
    assert (error.error_code, error.error_description) == ("FormatViolation", "bad answer")


@pytest.mark.parametrize(
    ("code", "cause", "expected"),
    [
        ("ProtocolError", "'timestamp' is a required property", "OccurrenceConstraintViolation"),
        ("FormatViolation", "'Bored' is not one of ['PowerUp']", "PropertyConstraintViolation"),
        ("FormatViolation", "-1 is less than the minimum of 0", "PropertyConstraintViolation"),
        (
            "FormatViolation",
            "Additional properties are not allowed ('x' was unexpected)",
            "FormatViolation",
        ),
        ("TypeConstraintViolation", "5 is not of type 'string'", "TypeConstraintViolation"),
    ],
)
def test_payload_errors_get_the_2x_codes(code: str, cause: str, expected: str) -> None:
    assert OCPP201.payload_error(code, cause) == OCPP21.payload_error(code, cause) == expected
