"""A budget of sensor keys per station, in keys and in bytes.

A real 1.6 station has tens of keys, and a 2.x station's full device model a
few thousand. A station that invents keys (hundreds of connector ids, every
measurand, phase and location) or long names (a `customData` field of
60,000 characters) would otherwise grow the connector's memory and
`available_datapoints` without bound: that document lists every key with an
example. So:

- a key longer than MAX_KEY_LENGTH characters is never admitted (no real
  key is: a station id has 64 at most, an OCPP 2.x name 50);
- a station may have OCPP_MAX_KEYS_PER_STATION keys, whose entries take at
  most OCPP_MAX_KEY_BYTES_PER_STATION bytes in `available_datapoints`;
- an example there is the key's latest value, a string shortened so that its
  JSON takes at most EXAMPLE_MAX_BYTES, so a long value (or one that JSON
  escapes to 12 bytes a character) cannot grow the document later. Each key
  is charged its JSON and the largest example it can have: a station's
  share of the document is bounded in bytes, whatever its values become.

Keys beyond the budget are dropped, with one WARNING per station and reason;
keys already known keep updating.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from connector.core.datapoints import SEP

log = logging.getLogger(__name__)

MAX_KEY_LENGTH = 400
EXAMPLE_MAX_BYTES = 64
# What a key's entry costs beyond its name: its largest example, `: ` and `, `.
ENTRY_OVERHEAD = EXAMPLE_MAX_BYTES + 4


def station_of(key: str) -> str:
    """The station id of a key: ids never contain the separator nor end in `_`
    (README "Datapoint keys"), so the first separator ends the id."""
    return key.split(SEP, 1)[0]


def _plain(text: str) -> bool:
    """One JSON byte a character."""
    return text.isascii() and text.isprintable() and '"' not in text and "\\" not in text


def _json_bytes(char: str) -> int:
    if " " <= char < "\x7f":
        return 2 if char in '"\\' else 1
    return 12 if ord(char) > 0xFFFF else 6  # \\uXXXX, or a surrogate pair of them


def example(value: Any) -> Any:
    """A key's example in `available_datapoints`: its value; a string shortened so
    that its JSON takes at most EXAMPLE_MAX_BYTES."""
    if not isinstance(value, str):
        return value  # a number, a boolean or null: short in JSON
    if len(value) <= EXAMPLE_MAX_BYTES - 2 and _plain(value):
        return value  # nearly always: C-speed checks only
    if _plain(value):
        return value[: EXAMPLE_MAX_BYTES - 8] + "…"
    size, kept = 2, list[str]()
    for char in value:
        size += _json_bytes(char)
        if size > EXAMPLE_MAX_BYTES - 6:
            return "".join(kept) + "…"
        kept.append(char)
    return value


class KeyBudget:
    def __init__(self, limit: int, byte_limit: int = 1_000_000) -> None:
        self.limit = limit
        self.byte_limit = byte_limit
        self._counts: dict[str, int] = {}
        self._bytes: dict[str, int] = {}
        self._warned: set[tuple[str, str]] = set()

    def admit(self, key: str) -> bool:
        """Whether a key not seen before may be added; counts it when it may."""
        cp_id = station_of(key)
        if len(key) > MAX_KEY_LENGTH:
            self._warn(
                cp_id,
                "length",
                "%s: dropped a key of %d characters (more than %d): %s…; a station's names "
                "this long are no real datapoints",
                len(key),
                MAX_KEY_LENGTH,
                key[:80],
            )
            return False
        count = self._counts.get(cp_id, 0)
        if count >= self.limit:
            self._warn(
                cp_id,
                "keys",
                "%s: reached OCPP_MAX_KEYS_PER_STATION (%d keys); its new keys are dropped, "
                "the known ones keep updating. Raise the budget if the station really "
                "reports this much",
                self.limit,
            )
            return False
        size = len(json.dumps(key)) + ENTRY_OVERHEAD
        used = self._bytes.get(cp_id, 0)
        if used + size > self.byte_limit:
            self._warn(
                cp_id,
                "bytes",
                "%s: reached OCPP_MAX_KEY_BYTES_PER_STATION (%d bytes of keys and examples); "
                "its new keys are dropped, the known ones keep updating",
                self.byte_limit,
            )
            return False
        self._counts[cp_id] = count + 1
        self._bytes[cp_id] = used + size
        return True

    def forget(self, cp_id: str) -> None:
        """The station was forgotten (execute_forget_station): its budget is whole again."""
        self._counts.pop(cp_id, None)
        self._bytes.pop(cp_id, None)

    def _warn(self, cp_id: str, reason: str, message: str, *args: Any) -> None:
        # Once per station and reason; bounded by the stations ever seen.
        if (cp_id, reason) not in self._warned:
            self._warned.add((cp_id, reason))
            log.warning(message, cp_id, *args)
