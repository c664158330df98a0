"""The connector's own state, kept retained on the broker: a restart needs no volume.

`<name>/state/<name>`: the last transaction id, boot records, the charging
limits asked for (README, "MQTT topics"). What the broker hands over is
retained state of an earlier run or of another instance; the bridge
validates each value before it trusts it (bridge.py, `_on_state`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from connector.core.strict_json import dumps
from connector.mqtt.face import Face
from connector.mqtt.hub import MqttHub


class StateStore(Face):
    def __init__(self, hub: MqttHub, on_state: Callable[[str, bytes], None]) -> None:
        self._hub = hub
        self._on_state = on_state
        self.topic = f"{hub.name}/state/"

    def subscriptions(self) -> list[tuple[str, bool]]:
        return [(self.topic + "#", False)]

    def message(self, topic: str, payload: bytes, retained: bool) -> bool:
        if not topic.startswith(self.topic):
            return False
        # Only what the broker kept: the echo of our own publishes comes back
        # unretained and may be older than the state we hold by then.
        if retained:
            self._on_state(topic[len(self.topic) :], payload)
        return True

    def publish(self, name: str, value: Any) -> None:
        """Keep `value` retained at `<name>/state/<name>`; None removes it."""
        payload = b"" if value is None else dumps(value).encode()
        self._hub.publish(self.topic + name, payload, qos=1, retain=True)
