"""Site budgets across several instances (README "Sharing a supply"): a face (face.py).

The leader (the lowest live instance, cluster.py) computes every group; the
instance that holds a station applies its part. Through the broker:

- `<name>/groups/members/<cp>` (retained): what the holder knows of a member
  station: its connection, each member connector's session, what it accepted,
  its phases and what its car leaves unused. Written by the holder only.
- `<name>/groups/apply/<n>`: the leader asks instance n for one profile.
- `<name>/groups/results/<n>`: instance n's leader hears whether it was accepted.

What arrives here is untrusted like every topic of ours (deploy/mosquitto.acl
keeps others out): sizes, types and ranges are checked before use, and a
message that fails is dropped with a WARNING.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Callable
from typing import Any
from urllib.parse import quote, unquote

from connector.core.strict_json import dumps
from connector.mqtt.face import Face
from connector.mqtt.hub import MqttHub

log = logging.getLogger(__name__)

MAX_PAYLOAD = 64 * 1024
MAX_CONNECTORS = 64
PURPOSES = ("TxProfile", "TxDefaultProfile")


def _number(value: Any, low: float, high: float) -> bool:
    return (
        not isinstance(value, bool)
        and isinstance(value, int | float)
        and math.isfinite(value)
        and low <= value <= high
    )


def _optional(value: Any, low: float, high: float) -> bool:
    return value is None or _number(value, low, high)


def valid_report(report: Any) -> bool:
    """`{"instance", "connected", "learned", "one_phase", "connectors": {"<n>": {...}}}`."""
    if not isinstance(report, dict) or not _number(report.get("instance"), 0, 63):
        return False
    if not all(isinstance(report.get(k), bool) for k in ("connected", "learned", "one_phase")):
        return False
    connectors = report.get("connectors")
    if not isinstance(connectors, dict) or len(connectors) > MAX_CONNECTORS:
        return False
    for number, entry in connectors.items():
        if not (isinstance(number, str) and number.isdigit() and 0 < int(number) < 1000):
            return False
        if not isinstance(entry, dict) or not _number(entry.get("phases"), 1, 3):
            return False
        if not _optional(entry.get("turn"), 0, 1e12):
            return False
        for field in ("accepted", "default", "cap", "measured"):
            if not _optional(entry.get(field), 0, 1e7):
                return False
        sent = entry.get("sent_phases")
        if sent not in (None, 1, 3) or isinstance(sent, bool):
            return False
    return True


def valid_apply(message: Any) -> bool:
    return (
        isinstance(message, dict)
        and isinstance(message.get("id"), str)
        and len(message["id"]) <= 64
        and _number(message.get("from"), 0, 63)
        and isinstance(message.get("cp"), str)
        and 0 < len(message["cp"]) <= 200
        and _number(message.get("c"), 1, 999)
        and _number(message.get("w"), 0, 1e7)
        and message.get("purpose") in PURPOSES
        and message.get("phases") in (None, 1, 3)
        and not isinstance(message.get("phases"), bool)
    )


def valid_result(message: Any) -> bool:
    return (
        isinstance(message, dict)
        and isinstance(message.get("id"), str)
        and isinstance(message.get("ok"), bool)
    )


def _decode(payload: bytes) -> Any:
    if len(payload) > MAX_PAYLOAD:
        return None
    try:
        return json.loads(payload)
    except (ValueError, RecursionError):
        return None


class GroupsLink(Face):
    def __init__(
        self,
        hub: MqttHub,
        instance: int,
        on_report: Callable[[str, dict[str, Any] | None], None],
        on_apply: Callable[[dict[str, Any]], None],
        on_result: Callable[[str, bool], None],
    ) -> None:
        self._hub = hub
        self.instance = instance
        base = f"{hub.name}/groups/"
        self.topic_members = base + "members/"
        self.topic_apply = base + "apply/"
        self.topic_results = base + "results/"
        self._on_report = on_report
        self._on_apply = on_apply
        self._on_result = on_result

    def subscriptions(self) -> list[tuple[str, bool]]:
        return [
            (self.topic_members + "+", False),
            (f"{self.topic_apply}{self.instance}", False),
            (f"{self.topic_results}{self.instance}", False),
        ]

    def message(self, topic: str, payload: bytes, retained: bool) -> bool:
        if topic.startswith(self.topic_members):
            cp_id = unquote(topic[len(self.topic_members) :])
            if not payload:
                self._on_report(cp_id, None)
                return True
            report = _decode(payload)
            if valid_report(report):
                self._on_report(cp_id, report)
            else:
                log.warning("ignored an invalid site budget report on %s", topic)
            return True
        if topic == f"{self.topic_apply}{self.instance}":
            message = _decode(payload)
            if not retained and valid_apply(message):
                self._on_apply(message)
            else:
                log.warning("ignored an invalid site budget request on %s", topic)
            return True
        if topic == f"{self.topic_results}{self.instance}":
            result = _decode(payload)
            if valid_result(result):
                self._on_result(result["id"], result["ok"])
            return True
        return False

    def report(self, cp_id: str, report: dict[str, Any]) -> None:
        self._hub.publish(self.topic_members + quote(cp_id, safe=""), dumps(report), 1, True)

    def apply(self, instance: int, message: dict[str, Any]) -> None:
        self._hub.publish(f"{self.topic_apply}{instance}", dumps(message), 1)

    def result(self, instance: int, request_id: str, ok: bool) -> None:
        self._hub.publish(f"{self.topic_results}{instance}", dumps({"id": request_id, "ok": ok}), 1)
