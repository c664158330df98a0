"""BEMCom's datapoint map: parsed, and checked for maps that would feed back (pure).

A map is `{"sensor": {key: topic}, "actuator": {topic: key}}`. Two kinds of
entries make the connector hear itself, and loop without end:
- an actuator topic that is also a mapped sensor topic: every value the
  connector publishes there comes back as a command (a user who maps one
  topic both ways, as home automation often does);
- an entry on one of the connector's own topics under `<name>/` (logs,
  heartbeat, the map itself, kept state): a log line about a refused command
  arrives as the next command, or a value overwrites the map.

BEMCom's API maps datapoints under `<name>/messages/`, so that part of the
connector's namespace is open to maps; the rest of `<name>/` is the
connector's own.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from connector.core.mqtt_topics import topic_problem

# The one part of `<name>/` that belongs to maps (BEMCom's datapoint topics).
MAP_NAMESPACE = "messages/"


class InvalidMap(ValueError):
    pass


def parse_datapoint_map(payload: bytes) -> tuple[dict[str, str], dict[str, str]]:
    """Validate `{"sensor": {key: topic}, "actuator": {topic: key}}`."""
    try:
        decoded = json.loads(payload.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise InvalidMap("it is not JSON") from None
    if not isinstance(decoded, dict):
        raise InvalidMap("it is not a JSON object")
    unknown = set(decoded) - {"sensor", "actuator"}
    if unknown:
        raise InvalidMap(f"unknown part {sorted(unknown)[0]!r}; allowed: sensor, actuator")
    sensor = decoded.get("sensor", {})
    actuator = decoded.get("actuator", {})
    for part, mapping in (("sensor", sensor), ("actuator", actuator)):
        if not isinstance(mapping, dict):
            raise InvalidMap(f"{part!r} is not an object")
        for left, right in mapping.items():
            if not isinstance(right, str) or not right:
                raise InvalidMap(f"{part!r} entry {left!r} does not map to a non-empty string")
    for topic in list(sensor.values()) + list(actuator):
        problem = topic_problem(topic)
        if problem is not None:
            # Subscribing to or publishing on it would make the broker drop us.
            raise InvalidMap(f"topic {topic[:100]!r} is not a valid topic name: {problem}")
    return sensor, actuator


@dataclass(frozen=True)
class CheckedMap:
    """The entries that apply, and one line per conflicting topic left out."""

    sensor: dict[str, str]
    actuator: dict[str, str]
    conflicts: list[str] = field(default_factory=list)


def is_own_topic(name: str, topic: str) -> bool:
    """True for the connector's own topics: `<name>/…` outside `<name>/messages/`."""
    prefix = f"{name}/"
    return topic.startswith(prefix) and not topic.startswith(prefix + MAP_NAMESPACE)


def check_map(name: str, sensor: dict[str, str], actuator: dict[str, str]) -> CheckedMap:
    """Leave out the entries that would make the connector hear itself.

    - Entries on the connector's own topics are left out, sensor and actuator.
    - Where an actuator topic is also a sensor topic, the sensor entry is left
      out: the command the user meant keeps working, and the connector never
      writes to a topic it takes commands from.
    """
    conflicts: list[str] = []
    kept_actuator: dict[str, str] = {}
    for topic, key in actuator.items():
        if is_own_topic(name, topic):
            conflicts.append(
                f"actuator topic {topic!r} (for {key}) is one of the connector's own "
                f"topics under '{name}/'; left out"
            )
        else:
            kept_actuator[topic] = key
    kept_sensor: dict[str, str] = {}
    for key, topic in sensor.items():
        if is_own_topic(name, topic):
            conflicts.append(
                f"sensor topic {topic!r} (for {key}) is one of the connector's own "
                f"topics under '{name}/'; left out"
            )
        elif topic in kept_actuator:
            conflicts.append(
                f"topic {topic!r} is both the sensor topic of {key} and the actuator topic "
                f"of {kept_actuator[topic]}; the sensor entry is left out, give {key} a topic "
                "of its own"
            )
        else:
            kept_sensor[key] = topic
    return CheckedMap(kept_sensor, kept_actuator, conflicts)
