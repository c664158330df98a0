"""Pure: the rules of the Local Controller (README "Keeping a station's own backend").

The connector sits between a station and the backend that bills its
sessions. What this module decides, without any I/O:
- the backend's URL for a station, and whether a station is forwarded;
- how long to wait before the next connection attempt (1 s to 60 s, jittered);
- which of a station's messages the backend must not miss (transaction
  messages), and so are kept while it is away;
- a 1.6 transaction that started while the backend was away has our id at
  the station and the backend's id at the backend: frames are rewritten
  between the two, both ways, and only those frames;
- the records kept on the broker for a restart: a kept message, the map of
  transaction ids. Anyone who may write the broker can write them: each is
  validated, and a bad one is ignored.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

from connector.core.strict_json import dumps

# Reconnects back off from 1 s to 60 s (README, CONTRACT §12).
MIN_BACKOFF = 1.0
MAX_BACKOFF = 60.0
# A connection that stayed open this long starts the back-off afresh when it drops.
STABLE_AFTER = 30.0
# Messages kept per station while its backend is away. Beyond it the oldest
# meter values of a transaction go first; starts and stops are never dropped.
MAX_KEPT = 10_000
# 1.6 transactions whose ids are mapped at once, per station (a station runs
# one per connector; more are forgotten oldest first).
MAX_MAPPED = 64
# A frame kept on the broker, at most (OCPP_MAX_MESSAGE_SIZE is at most 16 MiB).
MAX_FRAME_CHARS = 16 * 1024 * 1024

TransactionIds = dict[int, int]


def backend_url(template: str, cp_id: str) -> str:
    """`{cp}` -> the station id, percent-encoded but for letters, digits and `-_.~`."""
    return template.replace("{cp}", quote(cp_id, safe=""))


def is_forwarded(stations: frozenset[str] | None, cp_id: str) -> bool:
    """OCPP_UPSTREAM_STATIONS: None is `*`, every station."""
    return stations is None or cp_id in stations


def backoff(attempt: int, random: float) -> float:
    """Seconds before attempt `attempt + 1`; `random` in [0, 1) jitters it by
    -25 % to +25 %, so stations that lost one backend do not return at once."""
    base = min(MAX_BACKOFF, MIN_BACKOFF * 2.0 ** min(attempt, 16))
    return min(MAX_BACKOFF, max(MIN_BACKOFF, base * (0.75 + 0.5 * random)))


def is_kept(
    action: str,
    payload: Mapping[str, Any],
    always: frozenset[str],
    with_transaction: frozenset[str],
) -> bool:
    """A transaction message: kept in order while the backend is away.

    `always`: actions that are one (1.6 StartTransaction, StopTransaction; 2.x
    TransactionEvent); `with_transaction`: actions that are one when they
    carry a transactionId (1.6 MeterValues)."""
    if action in always:
        return True
    return action in with_transaction and payload.get("transactionId") is not None


def droppable(frame: str) -> bool:
    """A kept frame of meter values (a cheap look: called once per kept message)."""
    parsed = _frame(frame)
    if parsed is None:
        return False
    return bool(
        parsed[2] == "MeterValues"
        or (parsed[2] == "TransactionEvent" and parsed[3].get("eventType") == "Updated")
    )


def _frame(text: str) -> list[Any] | None:
    try:
        frame = json.loads(text)
    except (ValueError, RecursionError):
        return None
    if isinstance(frame, list) and len(frame) == 4 and isinstance(frame[3], dict):
        return frame
    return None


def _compact(frame: list[Any]) -> str:
    return json.dumps(frame, separators=(",", ":"), ensure_ascii=False)


def _integer(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def to_backend(text: str, ids: TransactionIds) -> str:
    """A station's 1.6 CALL with the backend's transaction id where ours is
    mapped; any other frame unchanged, byte for byte."""
    if not ids:
        return text
    frame = _frame(text)
    if frame is None:
        return text
    ours = frame[3].get("transactionId")
    if not _integer(ours) or ours not in ids:
        return text
    frame[3]["transactionId"] = ids[ours]
    return _compact(frame)


def to_station(text: str, action: str, ids: TransactionIds) -> str:
    """A backend's 1.6 CALL with our transaction id where the backend names a
    transaction by its id for one we mapped (RemoteStopTransaction, a
    TxProfile of SetChargingProfile); anything else unchanged."""
    if not ids:
        return text
    reverse = {backend: ours for ours, backend in ids.items()}
    frame = _frame(text)
    if frame is None:
        return text
    payload = frame[3]
    if action == "RemoteStopTransaction":
        holder: Any = payload
    elif action == "SetChargingProfile":
        holder = payload.get("csChargingProfiles")
    else:
        return text
    if not isinstance(holder, dict):
        return text
    theirs = holder.get("transactionId")
    if not _integer(theirs) or theirs not in reverse:
        return text
    holder["transactionId"] = reverse[theirs]
    return _compact(frame)


def transaction_id_of(text: str) -> int | None:
    """The integer transactionId of a 1.6 CALL's payload, if any."""
    frame = _frame(text)
    if frame is None:
        return None
    value = frame[3].get("transactionId")
    return value if _integer(value) else None


# ---- what is kept on the broker ---------------------------------------------


def encode_kept(frame: str, local_id: int | None) -> bytes:
    """One kept message: the frame as the station sent it, and for a 1.6
    StartTransaction the id the station was given meanwhile (ours)."""
    record: dict[str, Any] = {"frame": frame}
    if local_id is not None:
        record["local"] = local_id
    return dumps(record).encode()


def decode_kept(payload: bytes) -> tuple[str, int | None] | None:
    """(frame, our id) of a kept message, or None when it is not one."""
    try:
        record = json.loads(payload.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        return None
    if not isinstance(record, dict):
        return None
    frame = record.get("frame")
    local = record.get("local")
    if not isinstance(frame, str) or len(frame) > MAX_FRAME_CHARS:
        return None
    parsed = _frame(frame)
    if parsed is None or parsed[0] != 2 or not isinstance(parsed[1], str):
        return None
    if local is not None and not (_integer(local) and -(2**31) <= local < 2**31):
        return None
    return frame, local


def encode_ids(ids: TransactionIds) -> dict[str, int]:
    return {str(ours): backend for ours, backend in ids.items()}


def decode_ids(payload: bytes) -> TransactionIds | None:
    """The map of a station's transaction ids, ours -> the backend's."""
    try:
        record = json.loads(payload.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        return None
    if not isinstance(record, dict) or len(record) > MAX_MAPPED:
        return None
    ids: TransactionIds = {}
    for ours, backend in record.items():
        try:
            key = int(ours)
        except ValueError:
            return None
        if not _integer(backend) or not math.isfinite(backend):
            return None
        ids[key] = backend
    return ids
