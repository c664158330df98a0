"""Pure OCPP-J framing: a received text frame -> a message, or a reason to refuse it.

This replaces `ocpp.messages.unpack` on the receiving side, because ocpp 2.1.0
lets bad frames escape as exceptions that end `ChargePoint.start()`:
- deeply nested JSON (`"[" * 5000`) raises RecursionError, not JSONDecodeError;
- a non-string action (`[2,"x",["Heartbeat"],{}]`) raises TypeError on lookup;
- frames with a message id but a broken shape get no CALLERROR at all.
Here every such frame becomes a FrameError, which carries the message id
when one can be recovered, so the station gets a CALLERROR where it can.

OCPP 2.1 adds two message types that the library cannot parse (it drops them
with "Unable to parse"): CALLRESULTERROR (5), a station's error about our
answer, and SEND (6), a message that is never answered (periodic event
streams). They are parsed here for 2.1 only; for 1.6 and 2.0.1 they are
unknown message types (versions.py: Feature.SEND_FRAMES). A bad SEND is a
FrameError without a message id, so it is never answered either.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any, TypeAlias

from ocpp.messages import Call, CallError, CallResult

from connector.versions import OCPP16, Feature, Version

# Error codes every version spells alike; the ones they spell differently
# (a format violation, an unknown message type) come from versions.py.
PROTOCOL_ERROR = "ProtocolError"
PROPERTY_CONSTRAINT_VIOLATION = "PropertyConstraintViolation"
TYPE_CONSTRAINT_VIOLATION = "TypeConstraintViolation"
NOT_SUPPORTED = "NotSupported"
NOT_IMPLEMENTED = "NotImplemented"
INTERNAL_ERROR = "InternalError"
GENERIC_ERROR = "GenericError"
# Placeholders of _parse, given each version's spelling by parse_frame.
_FORMAT = "<format violation>"
_UNKNOWN_TYPE = "<unknown message type>"

MAX_ID_LENGTH = 36  # OCPP-J: the message id is a string of at most 36 characters

# Salvages the id from a frame that is not valid JSON, e.g. one cut short.
_ID_IN_BROKEN_FRAME = re.compile(r'^\s*\[\s*2\s*,\s*"([^"\\]{1,36})"')


@dataclass(frozen=True)
class FrameError:
    unique_id: str | None  # None: no id to answer to
    code: str
    description: str


@dataclass(frozen=True)
class CallResultError:
    """OCPP 2.1 (type 5): the station could not take our CALLRESULT."""

    unique_id: str
    error_code: str
    error_description: str


@dataclass(frozen=True)
class Send:
    """OCPP 2.1 (type 6): a message the receiver never answers."""

    unique_id: str
    action: str
    payload: dict[str, Any]


Message: TypeAlias = Call | CallResult | CallError | CallResultError | Send


def parse_frame(raw: str | bytes, version: Version = OCPP16) -> Message | FrameError:
    """`version`: the station's; it decides the message types known and the
    spelling of the error codes."""
    parsed = _parse(raw, version)
    if isinstance(parsed, FrameError) and parsed.code in (_FORMAT, _UNKNOWN_TYPE):
        code = version.format_violation if parsed.code == _FORMAT else version.unknown_message_type
        return FrameError(parsed.unique_id, code, parsed.description)
    return parsed


def _parse(raw: str | bytes, version: Version) -> Message | FrameError:
    if isinstance(raw, bytes):
        try:
            raw = raw.decode("utf-8")
        except UnicodeDecodeError:
            return FrameError(None, _FORMAT, "frame is not UTF-8 text")
    try:
        frame = json.loads(raw)
    except (ValueError, RecursionError):
        match = _ID_IN_BROKEN_FRAME.match(raw)
        unique_id = match.group(1) if match else None
        return FrameError(unique_id, _FORMAT, "frame is not valid JSON")
    if not isinstance(frame, list) or not frame:
        return FrameError(None, _FORMAT, "frame is not a non-empty JSON array")
    unique_id = frame[1] if len(frame) > 1 and isinstance(frame[1], str) else None
    if unique_id is None:
        return FrameError(None, _FORMAT, "frame has no string message id")
    message_type = frame[0]
    if message_type == 2 and type(message_type) is int:
        return _call(frame, unique_id)
    if message_type == 3 and type(message_type) is int:
        if len(frame) != 3:
            return FrameError(None, _FORMAT, "CALLRESULT must have 3 elements")
        return CallResult(unique_id, frame[2])
    if message_type == 4 and type(message_type) is int:
        return _call_error(frame, unique_id)
    if version.has(Feature.SEND_FRAMES) and message_type == 5 and type(message_type) is int:
        return _call_result_error(frame, unique_id)
    if version.has(Feature.SEND_FRAMES) and message_type == 6 and type(message_type) is int:
        return _send(frame, unique_id)
    # An unknown message type may still be a call from the station's point of
    # view; answer it so the station does not wait for a timeout.
    return FrameError(unique_id, _UNKNOWN_TYPE, f"unknown message type {message_type!r}")


def _call(frame: list[Any], unique_id: str) -> Call | FrameError:
    if len(frame) != 4:
        return FrameError(unique_id, _FORMAT, "CALL must have 4 elements")
    if len(unique_id) > MAX_ID_LENGTH or not unique_id:
        return FrameError(unique_id, _FORMAT, "message id must be 1 to 36 characters")
    action, payload = frame[2], frame[3]
    if not isinstance(action, str):
        return FrameError(unique_id, _FORMAT, "action must be a string")
    if not isinstance(payload, dict):
        return FrameError(unique_id, _FORMAT, "payload must be a JSON object")
    return Call(unique_id, action, payload)


def _call_error(frame: list[Any], unique_id: str) -> CallError | FrameError:
    if len(frame) < 3 or not isinstance(frame[2], str):
        return FrameError(None, _FORMAT, "CALLERROR must carry an error code")
    # Lenient about the rest: a station's error answer is still an answer.
    description = frame[3] if len(frame) > 3 and isinstance(frame[3], str) else ""
    details = frame[4] if len(frame) > 4 and isinstance(frame[4], dict) else {}
    return CallError(unique_id, frame[2], description, details)


def _call_result_error(frame: list[Any], unique_id: str) -> CallResultError | FrameError:
    # Never answered: an error about an answer ends the exchange.
    if len(frame) < 3 or not isinstance(frame[2], str):
        return FrameError(None, _FORMAT, "CALLRESULTERROR must carry an error code")
    description = frame[3] if len(frame) > 3 and isinstance(frame[3], str) else ""
    return CallResultError(unique_id, frame[2], description)


def _send(frame: list[Any], unique_id: str) -> Send | FrameError:
    # A SEND is never answered, not even a bad one: no message id in the error.
    if len(frame) != 4:
        return FrameError(None, _FORMAT, "SEND must have 4 elements")
    action, payload = frame[2], frame[3]
    if not isinstance(action, str) or not isinstance(payload, dict):
        return FrameError(None, _FORMAT, "SEND needs a string action and an object")
    return Send(unique_id, action, payload)


def call_error_json(unique_id: str, code: str, description: str) -> str:
    return json.dumps([4, unique_id, code, description, {}], separators=(",", ":"))


def call_result_json(unique_id: str, payload: dict[str, Any]) -> str:
    return json.dumps([3, unique_id, payload], separators=(",", ":"))


def call_json(unique_id: str, action: str, payload: dict[str, Any]) -> str:
    return json.dumps([2, unique_id, action, payload], separators=(",", ":"))


def frame_action(text: str) -> str | None:
    """The action of a CALL frame kept as text (upstream_store.py), or None."""
    message = _parse(text, OCPP16)
    return message.action if isinstance(message, Call) else None


def frame_payload(text: str) -> dict[str, Any] | None:
    """The payload of a CALL or CALLRESULT frame kept as text, or None."""
    message = _parse(text, OCPP16)
    if isinstance(message, (Call, CallResult)) and isinstance(message.payload, dict):
        return message.payload
    return None
