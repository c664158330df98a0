"""Pure: configuration keys and variables that hold secrets, kept out of MQTT and logs.

OCPP 1.6's `AuthorizationKey` (Security Profile 1's password) is write-only
by the security whitepaper, yet some stations return it in GetConfiguration;
OCPP 2.x marks such variables `WriteOnly` (`SecurityCtrlr.BasicAuthPassword`).
Published, a station's password would be retained on the broker for anyone
who may read `<name>/#`. So a key or variable is secret when it is named
in SECRET_NAMES, or its name holds `password`, `secret` or `privatekey`
(case ignored), or a 2.x report marks it write-only. Its value is never
published (no `…__Configuration__AuthorizationKey` key at all), never
logged, and replaced by `<redacted>` in raw messages.
"""

from __future__ import annotations

import json
import re
from typing import Any

REDACTED = "<redacted>"
SECRET_NAMES = frozenset({"authorizationkey", "basicauthpassword"})
_SECRET_WORDS = ("password", "secret", "privatekey")
# Cheap test before any parsing: could this text hold a secret at all?
_MAYBE = re.compile(r"(?i)authorizationkey|password|secret|privatekey|writeonly")
# `Key=Value` as execute_change_configuration takes it (2.x: `Component.Variable=Value`).
_ASSIGNMENT = re.compile(
    r"(?i)([\w.()@-]*(?:authorizationkey|password|secret|privatekey)[\w.()@-]*\s*=\s*)([^,;\"'}\s]*)"
)


def is_secret(name: Any) -> bool:
    if not isinstance(name, str):
        return False
    lowered = name.lower()
    return lowered in SECRET_NAMES or any(word in lowered for word in _SECRET_WORDS)


def may_hold_secret(text: str) -> bool:
    return _MAYBE.search(text) is not None


def redact_text(text: str) -> str:
    """`AuthorizationKey=abc` -> `AuthorizationKey=<redacted>`, anywhere in the text."""
    return _ASSIGNMENT.sub(lambda match: match.group(1) + REDACTED, text)


def redact(value: Any) -> Any:
    """A copy of a decoded OCPP message with every secret value replaced.

    Covers 1.6 configuration entries (`{"key": "AuthorizationKey", "value": …}`),
    2.x variables (`{"variable": {"name": "BasicAuthPassword"}, "attributeValue": …}`,
    reports' `variableAttribute` values, write-only attributes) and plain
    fields named like a secret.
    """
    if isinstance(value, list):
        return [redact(item) for item in value]
    if not isinstance(value, dict):
        return value
    copied = {key: redact(item) for key, item in value.items()}
    variable = copied.get("variable")
    secret_variable = isinstance(variable, dict) and is_secret(variable.get("name"))
    if is_secret(copied.get("key")) or secret_variable:
        for field in ("value", "attributeValue", "actualValue"):
            if field in copied:
                copied[field] = REDACTED
    if isinstance(copied.get("variableAttribute"), list):
        for attribute in copied["variableAttribute"]:
            if (
                isinstance(attribute, dict)
                and "value" in attribute
                and (secret_variable or attribute.get("mutability") == "WriteOnly")
            ):
                attribute["value"] = REDACTED
    for key, item in copied.items():
        if is_secret(key) and isinstance(item, str | int | float):
            copied[key] = REDACTED
    return copied


def redact_frame(text: str) -> str:
    """An OCPP-J frame as received, with secret values replaced; the text itself
    (byte for byte) when it cannot hold one, which is nearly always."""
    if not may_hold_secret(text):
        return text
    try:
        decoded = json.loads(text)
        return json.dumps(redact(decoded), separators=(",", ":"), ensure_ascii=False)
    except (ValueError, RecursionError):
        return redact_text(text)
