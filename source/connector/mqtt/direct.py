"""The direct topics (MQTT_DIRECT_TOPICS), one face of the connector (face.py).

Every sensor key on a topic of its own, retained, and commands on
`…/set` topics, for Home Assistant, openHAB and Node-RED users who have no
datapoint map (README, "Direct topics"); core/direct_topics.py spells the
topics.
"""

from __future__ import annotations

from collections.abc import Callable

from connector.core import direct_topics as direct
from connector.core.datapoints import Datapoint
from connector.core.strict_json import dumps
from connector.mqtt.face import Face
from connector.mqtt.hub import MqttHub

QOS_VALUES = 1


class DirectTopics(Face):
    def __init__(self, hub: MqttHub, on_actuator: Callable[[str, str, bytes], None]) -> None:
        """`on_actuator(topic, key, payload)`: a command, as a BEMCom value payload."""
        self._link = hub.link
        self._on_actuator = on_actuator
        self.prefix = f"{hub.name}/direct/"
        # Key -> its topic, built once per key: escaping costs a few µs.
        self._topics: dict[str, str] = {}

    def subscriptions(self) -> list[tuple[str, bool]]:
        return [(topic, True) for topic in direct.command_subscriptions(self.prefix)]

    def message(self, topic: str, payload: bytes, retained: bool) -> bool:
        if not topic.startswith(self.prefix):
            return False
        key = direct.command_key(self.prefix, topic)
        # A sensor topic of ours may end in /set too (no key); a kept command is no command.
        if key is not None and not retained:
            self._on_actuator(topic, key, direct.command_payload(payload))
        return True

    def datapoints(self, points: list[Datapoint], new_keys: list[str]) -> None:
        topics = self._topics
        publish = self._link.publish
        for key, value, timestamp in points:
            topic = topics.get(key)
            if topic is None:
                topic = topics[key] = direct.sensor_topic(self.prefix, key)
            publish(
                topic, dumps({"value": value, "timestamp": timestamp}), qos=QOS_VALUES, retain=True
            )

    def forget(self, cp_id: str, keys: list[str]) -> int:
        for key in keys:
            topic = self._topics.pop(key, None) or direct.sensor_topic(self.prefix, key)
            self._link.publish(topic, b"", qos=QOS_VALUES, retain=True)
        return len(keys)
