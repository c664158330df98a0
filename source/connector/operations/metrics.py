"""Prometheus metrics (README "Operations"), with prometheus_client.

Counted as it happens, on the hot path: frames received from stations and
calls sent to them, by action and outcome, and each call's round trip. Read
when scraped, from what the connector holds anyway: stations by OCPP
version, MQTT's publishes, backlog and drops, the backend connections
(README "Keeping a station's own backend"), the groups' limits and
allocations (README "Sharing a supply"), the process.

No label takes a value a station chooses freely: an action is one of its
version's, or `other`; an outcome is one of a few words. Group names come
from OCPP_GROUPS, which the operator writes. So the number of series is
bounded however many stations connect and whatever they send.

Each Bridge has a registry of its own (a test runs many in one process).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.process_collector import ProcessCollector
from prometheus_client.registry import Collector

OTHER = "other"
# Outcomes of a station's call: the answer it got.
RESULT = "result"
ERROR = "error"
# Outcomes of our calls: the status words stations answer, and how a call can fail.
CALL_OUTCOMES = frozenset(
    {
        "Accepted",
        "Rejected",
        "NotSupported",
        "Unknown",
        "Scheduled",
        "Blocked",
        "Occupied",
        "Faulted",
        "RebootRequired",
        "UnknownVariable",
        "Timeout",
        "Disconnected",
        "InvalidResponse",
        "CallError",
    }
)
# Seconds: a station on a LAN answers in milliseconds, one on a mobile link in seconds.
ROUND_TRIP_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)


@dataclass
class Snapshot:
    """What is read at a scrape, gathered by the bridge."""

    stations: dict[str, int] = field(default_factory=dict)  # OCPP version -> connected
    mqtt: dict[str, Any] = field(default_factory=dict)  # MqttLink.stats()
    upstream: list[dict[str, Any]] = field(default_factory=list)  # Bridge.upstream_status()
    # group -> (limit W or None, allocated W, measured W)
    groups: dict[str, tuple[float | None, float, float]] = field(default_factory=dict)


def outcome_of_status(status: str) -> str:
    """A call's outcome as a label: `CallError:NotSupported` -> `CallError`."""
    word = status.split(":", 1)[0]
    return word if word in CALL_OUTCOMES else OTHER


class _Live(Collector):
    def __init__(self, snapshot: Callable[[], Snapshot]) -> None:
        self._snapshot = snapshot

    def collect(self) -> Iterable[Metric]:
        snap = self._snapshot()
        stations = GaugeMetricFamily(
            "ocpp_stations_connected", "Stations connected, by OCPP version", labels=["version"]
        )
        for version, count in sorted(snap.stations.items()):
            stations.add_metric([version], count)
        yield stations
        mqtt = snap.mqtt
        yield GaugeMetricFamily(
            "mqtt_connected",
            "1 while the broker is connected",
            value=int(bool(mqtt.get("connected"))),
        )
        for name, key, text in (
            ("mqtt_publishes", "publishes", "Messages handed to the broker connection"),
            ("mqtt_dropped", "dropped", "Messages dropped (queue full, or refused)"),
        ):
            yield CounterMetricFamily(name, text, value=mqtt.get(key, 0))
        for name, key, text in (
            ("mqtt_backlog", "backlog", "Messages waiting for the broker"),
            ("mqtt_unacknowledged", "unacked", "Messages sent, not yet acknowledged"),
        ):
            yield GaugeMetricFamily(name, text, value=mqtt.get(key, 0))
        up = snap.upstream
        connected = GaugeMetricFamily(
            "ocpp_upstream_connections",
            "Forwarded stations' backend connections, by state",
            labels=["state"],
        )
        connected.add_metric(["connected"], sum(1 for u in up if u["connected"]))
        connected.add_metric(["away"], sum(1 for u in up if not u["connected"]))
        yield connected
        yield GaugeMetricFamily(
            "ocpp_upstream_kept_messages",
            "Transaction messages kept for backends that are away",
            value=sum(u["kept"] for u in up),
        )
        for name, key, text in (
            ("ocpp_upstream_frames_to_backend", "frames_to_backend", "Frames sent to backends"),
            ("ocpp_upstream_frames_from_backend", "frames_from_backend", "Frames from backends"),
            ("ocpp_upstream_answered_locally", "answered_locally", "Station calls answered here"),
            ("ocpp_upstream_kept_sent", "kept_sent", "Kept messages sent to backends"),
            (
                "ocpp_upstream_refused",
                "refused",
                "Backend calls refused (deny list, invalid, busy)",
            ),
            ("ocpp_upstream_failures", "failures", "Backend connection attempts that failed"),
        ):
            yield CounterMetricFamily(name, text, value=sum(u[key] for u in up))
        limit = GaugeMetricFamily(
            "ocpp_group_limit_watts", "Each group's limit (NaN: none set)", labels=["group"]
        )
        allocated = GaugeMetricFamily(
            "ocpp_group_allocated_watts",
            "Power allocated to a group's connectors",
            labels=["group"],
        )
        measured = GaugeMetricFamily(
            "ocpp_group_measured_watts", "Power a group's connectors draw", labels=["group"]
        )
        for group, (limit_w, allocated_w, measured_w) in sorted(snap.groups.items()):
            limit.add_metric([group], float("nan") if limit_w is None else limit_w)
            allocated.add_metric([group], allocated_w)
            measured.add_metric([group], measured_w)
        yield limit
        yield allocated
        yield measured


class Metrics:
    def __init__(self, snapshot: Callable[[], Snapshot]) -> None:
        self.registry = CollectorRegistry()
        self._frames = Counter(
            "ocpp_frames_received",
            "Calls received from stations, by the answer they got",
            ["version", "action", "outcome"],
            registry=self.registry,
        )
        self._refused = Counter(
            "ocpp_frames_refused",
            "Frames from stations that were no OCPP-J message",
            ["version"],
            registry=self.registry,
        )
        self._calls = Counter(
            "ocpp_calls_sent",
            "Calls the connector sent to stations, by outcome",
            ["version", "action", "outcome"],
            registry=self.registry,
        )
        self._round_trip = Histogram(
            "ocpp_call_round_trip_seconds",
            "Round trip of the connector's calls to stations",
            ["version", "action"],
            buckets=ROUND_TRIP_BUCKETS,
            registry=self.registry,
        )
        self.registry.register(_Live(snapshot))
        ProcessCollector(registry=self.registry)
        # (version, action, outcome) -> the child counter: labels() costs more
        # than the increment on the hot path.
        self._frame_children: dict[tuple[str, str, str], Any] = {}

    def frame(self, version: str, action: str, ok: bool) -> None:
        key = (version, action, RESULT if ok else ERROR)
        child = self._frame_children.get(key)
        if child is None:
            child = self._frame_children[key] = self._frames.labels(*key)
        child.inc()

    def refused(self, version: str) -> None:
        self._refused.labels(version).inc()

    def call(self, version: str, action: str, status: str, seconds: float | None) -> None:
        self._calls.labels(version, action, outcome_of_status(status)).inc()
        if seconds is not None:
            self._round_trip.labels(version, action).observe(seconds)
