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
# Words that mark a text that may hold a secret (tested on the lowered text:
# plain substring searches, linear, and several times faster than a regex).
_MARKERS = ("authorizationkey", "password", "secret", "privatekey", "writeonly")
_SECRET_WORD = re.compile(r"authorizationkey|password|secret|privatekey")
_NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789_.()@-")
# What ends a redacted value in a text: a quote (its JSON string ends), or a line.
_VALUE_ENDS = frozenset("\"'\n\r")
# Lower case for ASCII only: str.lower() may change a text's length ('İ'), and
# the positions found in the lowered text index the original.
_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


def is_secret(name: Any) -> bool:
    if not isinstance(name, str):
        return False
    lowered = name.lower()
    return lowered in SECRET_NAMES or any(word in lowered for word in _SECRET_WORDS)


def may_hold_secret(text: str) -> bool:
    lowered = text.translate(_ASCII_LOWER)
    return any(marker in lowered for marker in _MARKERS)


def redact_text(text: str) -> str:
    """`AuthorizationKey=abc` -> `AuthorizationKey=<redacted>`, anywhere in the text.

    In one pass over the text (a regex with a name on both sides of the
    secret word took seconds on 16 KB): after each secret word, the rest of
    the name, `=`, and the value up to a quote or the end of the line are
    replaced; a value's own commas and spaces are redacted with it."""
    lowered = text.translate(_ASCII_LOWER)
    parts: list[str] = []
    done = 0
    for match in _SECRET_WORD.finditer(lowered):
        if match.start() < done:
            continue
        position = match.end()
        while position < len(text) and lowered[position] in _NAME_CHARS:
            position += 1
        while position < len(text) and text[position] in " \t":
            position += 1
        if position >= len(text) or text[position] != "=":
            continue
        position += 1
        while position < len(text) and text[position] in " \t":
            position += 1
        end = position
        while end < len(text) and text[end] not in _VALUE_ENDS:
            end += 1
        parts.append(text[done:position])
        parts.append(REDACTED)
        done = end
    if not parts:
        return text
    parts.append(text[done:])
    return "".join(parts)


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
