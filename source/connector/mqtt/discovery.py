"""Home Assistant discovery (HOMEASSISTANT_DISCOVERY), one face of the connector.

Configurations are retained and published once per entity: when a station
first reports the key behind it, and again only when the device changes (a
BootNotification with another model or firmware, or a restart of the
connector). They are removed (an empty retained message) only when the
operator asks, with execute_forget_station. core/ha_discovery.py builds them;
the controls are those the offered actuators declare (actuators/). The
entities read the direct topics: this face comes with direct.py's.
"""

from __future__ import annotations

import logging
from typing import Any

from connector import actuators
from connector.core import ha_discovery as ha
from connector.core.datapoints import SEP, Datapoint
from connector.core.groups import GROUP_PREFIX, NO_GROUPS, Groups
from connector.core.strict_json import dumps
from connector.mqtt.face import Face
from connector.mqtt.hub import MqttHub

log = logging.getLogger(__name__)

# BootNotification fields that make the device (1.6 and 2.x names).
DEVICE_FIELDS = (
    "chargePointVendor",
    "chargePointModel",
    "firmwareVersion",
    "chargingStation.vendorName",
    "chargingStation.model",
    "chargingStation.firmwareVersion",
)


class Discovery(Face):
    forget_first = True  # the entities go before their state topics empty

    def __init__(
        self, hub: MqttHub, prefix: str, offered: tuple[str, ...], groups: Groups = NO_GROUPS
    ) -> None:
        """`prefix`: HOMEASSISTANT_DISCOVERY_PREFIX; `offered`: the actuators
        offered, whose controls the devices get; `groups`: site budgets' groups,
        a device each."""
        self._controls = actuators.home_assistant_controls(offered)
        self._groups = groups
        self._link = hub.link
        self._name = hub.name
        self._prefix = prefix
        self._value = hub.latest
        # cp -> {config topic: what it was built from: a sensor key, "" for the
        # station's controls, or "<connector>|<status field>" for a connector's}
        self._published: dict[str, dict[str, str]] = {}
        self._devices: dict[str, dict[str, Any]] = {}
        # cp -> the largest EVSE power the station reported (2.x `EVSE@<n>.Power`):
        # the charging limit number's maximum.
        self._max_power: dict[str, float] = {}

    def datapoints(self, points: list[Datapoint], new_keys: list[str]) -> None:
        for key in new_keys:
            self.new_key(key)
        # A BootNotification (new keys or not) may complete or change the device
        # of configurations published before it: they are published again.
        for key, _, _ in points:
            self.value_changed(key)

    def _boot(self, cp_id: str) -> dict[str, Any]:
        return {f: self._value(f"{cp_id}{SEP}BootNotification{SEP}{f}") for f in DEVICE_FIELDS}

    def new_key(self, key: str) -> None:
        """A sensor key seen for the first time."""
        cp_id = key.split(SEP, 1)[0]
        if cp_id.startswith(GROUP_PREFIX):
            self._group(cp_id[len(GROUP_PREFIX) :])
            return
        boot = self._boot(cp_id)
        if cp_id not in self._published:
            self._published[cp_id] = {}
            self._devices[cp_id] = ha.device(cp_id, boot)
            for entity in self._built(cp_id, "", boot):
                self._publish(cp_id, entity, "")
        power = ha.evse_power(key, self._value(key))
        if power is not None and power > self._max_power.get(cp_id, 0):
            self._max_power[cp_id] = power
            for entity in self._built(cp_id, "", boot):
                self._publish(cp_id, entity, "")
        sensor = ha.sensor_entity(self._name, cp_id, key, boot)
        if sensor is not None:
            self._publish(cp_id, sensor, key)
            parts = key.split(SEP)
            if sensor.object_id.startswith("status_") and parts[2] != "0":
                source = f"{parts[2]}|{parts[3]}"
                for control in self._built(cp_id, source, boot):
                    self._publish(cp_id, control, source)

    def _built(self, cp_id: str, source: str, boot: dict[str, Any]) -> list[ha.Entity]:
        """The entities made from one source (see _published)."""
        if "|" in source:
            connector, field = source.split("|")
            return ha.connector_entities(self._name, cp_id, connector, field, boot, self._controls)
        if not source:
            maximum = self._max_power.get(cp_id)
            return ha.control_entities(self._name, cp_id, boot, maximum, self._controls)
        entity = ha.sensor_entity(self._name, cp_id, source, boot)
        return [entity] if entity is not None else []

    def value_changed(self, key: str) -> None:
        """A BootNotification may change the device: publish its entities again."""
        cp_id, _, rest = key.partition(SEP)
        if not rest.startswith("BootNotification") or cp_id not in self._published:
            return
        boot = self._boot(cp_id)
        if ha.device(cp_id, boot) == self._devices.get(cp_id):
            return
        self._devices[cp_id] = ha.device(cp_id, boot)
        for source in set(self._published[cp_id].values()):
            for entity in self._built(cp_id, source, boot):
                self._publish(cp_id, entity, source)

    def forget(self, cp_id: str, keys: list[str]) -> int:
        self._max_power.pop(cp_id, None)
        topics = self._published.pop(cp_id, {})
        self._devices.pop(cp_id, None)
        for topic in topics:
            self._link.publish(topic, b"", qos=1, retain=True)
        return len(topics)

    def _group(self, group: str) -> None:
        """A group's device, once: its limit as a number, its sums as sensors."""
        entry = self._groups.by_name.get(group)
        if entry is None or GROUP_PREFIX + group in self._published:
            return
        self._published[GROUP_PREFIX + group] = {}
        for entity in ha.group_entities(self._name, group, entry.max_w):
            topic = ha.group_config_topic(self._prefix, group, entity)
            self._link.publish(topic, dumps(entity.config), qos=1, retain=True)

    def _publish(self, cp_id: str, entity: ha.Entity, source: str) -> None:
        topic = ha.config_topic(self._prefix, cp_id, entity)
        self._published[cp_id][topic] = source
        self._link.publish(topic, dumps(entity.config), qos=1, retain=True)
