"""OCPP JSON schema validation, compiled once per action and version.

The ocpp library validates every frame with jsonschema, which interprets the
schema anew each time: about 235 µs for a MeterValues with four sampled
values, a third of the event loop's time under load. fastjsonschema turns
each schema into Python code once; the same check then takes about 11 µs.

The result is the library's, exactly:
- the library's own schema files are compiled, as draft 4 (the library reads
  every version's schemas with Draft4Validator), without format checks and
  without filling in defaults, as the library does;
- a payload the compiled check refuses is validated again by the library, so
  the error code and text are the library's own (jsonschema reports the first
  error in its own order), and a payload the library accepts is accepted;
- the few messages whose numbers the library reads as decimals (1.6
  SetChargingProfile and RemoteStartTransaction, GetCompositeSchedule's
  answer) always go to the library; they are rare.
test_schema_validation.py shows that both agree on generated payloads.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from typing import Any

import fastjsonschema
import ocpp
from ocpp.exceptions import FormatViolationError
from ocpp.messages import Call, CallResult, get_validator, validate_payload

from connector.stations.frames import Send
from connector.versions import Version

Check = Callable[[Any], Any]

DRAFT4 = "http://json-schema.org/draft-04/schema#"

_compiled: dict[tuple[int, str, Version], Check | None] = {}


def _compile(message_type_id: int, action: str, version: Version) -> Check | None:
    """The compiled check, or None where the library must decide."""
    if (message_type_id, action) in version.decimal_messages:
        return None
    try:
        schema = dict(get_validator(message_type_id, action, version.name).schema)
    except (OSError, ValueError):
        return None  # no schema: the library raises what it raises
    schema["$schema"] = DRAFT4
    return fastjsonschema.compile(
        schema, use_formats=False, use_default=False, detailed_exceptions=False
    )


async def validate(message: Call | CallResult, version: Version) -> None:
    """Validate the payload; raise the ocpp library's OCPPError when it is not valid."""
    key = (message.message_type_id, message.action, version)
    try:
        check = _compiled[key]
    except KeyError:
        check = _compiled[key] = _compile(*key)
    if check is not None:
        try:
            check(message.payload)
            return
        except fastjsonschema.JsonSchemaException:
            pass  # the library finds the same problem and names it its way
    await validate_payload(message, version.name)


_send_checks: dict[tuple[str, Version], Check | None] = {}


def _compile_send(action: str, version: Version) -> Check | None:
    # ocpp 2.1.0 names this schema without the `Request` suffix it looks for
    # with a CALL, and has no SEND message type: the file is read here.
    folder = "v" + version.name.replace(".", "")
    path = os.path.join(os.path.dirname(ocpp.__file__), folder, "schemas", f"{action}.json")
    try:
        with open(path, encoding="utf-8-sig") as file:
            schema = json.load(file)
    except OSError:
        return None
    schema["$schema"] = DRAFT4
    return fastjsonschema.compile(schema, use_formats=False, use_default=False)


def validate_send(message: Send, version: Version) -> None:
    """Validate a SEND's payload (OCPP 2.1); raise FormatViolationError when it
    is not valid, or when no schema exists for its action."""
    key = (message.action, version)
    if key not in _send_checks:
        _send_checks[key] = _compile_send(*key)
    check = _send_checks[key]
    if check is None:
        raise FormatViolationError(details={"cause": f"no SEND message {message.action!r}"})
    try:
        check(message.payload)
    except fastjsonschema.JsonSchemaException as error:
        raise FormatViolationError(details={"cause": str(error)}) from None
