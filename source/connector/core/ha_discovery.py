"""Pure: Home Assistant MQTT discovery for each station (README "Home Assistant in five minutes").

One device per station (name = its id; manufacturer, model and firmware from
its BootNotification), whose entities read the direct topics (direct_topics.py)
and command through their `/set` topics:
- a `binary_sensor` for `connected` (device class `connectivity`), and one for
  `upstream` where the station has its own backend;
- a `sensor` per connector (EVSE) for its status;
- `sensor`s for energy (`energy`, `total_increasing`, Wh), power (`power`, W),
  current (`current`, A), voltage (`voltage`, V) and SoC (`battery`, %), each
  as the station first reports it;
- the limit in force (`power`, W);
- the controls the actuators offered declare (actuators/: the charging limit
  as a `number` in W, a `button` that triggers MeterValues, per connector
  start and stop buttons and an availability switch), commanding through
  their keys' direct `/set` topics.
Every entity but `connected` is available when both the station's
`connected` and `<name>/status` say so (`availability_mode: all`).

Field names are Home Assistant's full names (no abbreviations), as its MQTT
integration documents them for each platform.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from dataclasses import field as dataclass_field
from typing import Any

from connector.core.datapoints import SEP
from connector.core.direct_topics import sensor_topic
from connector.core.groups import GROUP_PREFIX, LIMIT_ACTUATOR

DEFAULT_MAX_POWER_W = 22_000
# Templates that tolerate an empty payload (a retained topic being removed,
# execute_forget_station): the state becomes unknown, not a template error.
VALUE_TEMPLATE = "{{ value_json.value if value_json is defined else none }}"
BINARY_TEMPLATE = "{{ ('ON' if value_json.value else 'OFF') if value_json is defined else none }}"
AVAILABLE_TEMPLATE = (
    "{{ ('online' if value_json.value else 'offline') if value_json is defined else 'offline' }}"
)
# Connector statuses: 1.6 StatusNotification.status, 2.x connectorStatus.
STATUSES_16 = (
    "Available",
    "Preparing",
    "Charging",
    "SuspendedEVSE",
    "SuspendedEV",
    "Finishing",
    "Reserved",
    "Unavailable",
    "Faulted",
)
STATUSES_2 = ("Available", "Occupied", "Reserved", "Unavailable", "Faulted")
SHOWN_STATUS = {"Unavailable": "Out of service"}
STATUS_TEMPLATE = (
    "{% if value_json is defined %}{{ 'Out of service' if value_json.value == 'Unavailable' "
    "else value_json.value }}{% else %}{{ none }}{% endif %}"
)
_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")
# What a hashed id ends in: an id that already looks like one is hashed too.
_LOOKS_HASHED = re.compile(r"_[0-9a-f]{8}$")

# (measurand, unit) -> (device_class, state_class, unit shown)
_METERS: dict[tuple[str, str], tuple[str, str, str]] = {
    ("Energy.Active.Import.Register", "Wh"): ("energy", "total_increasing", "Wh"),
    ("Power.Active.Import", "W"): ("power", "measurement", "W"),
    ("Current.Import", "A"): ("current", "measurement", "A"),
    ("Voltage", "V"): ("voltage", "measurement", "V"),
    ("SoC", "Percent"): ("battery", "measurement", "%"),
}


@dataclass(frozen=True)
class Control:
    """A Home Assistant control for an actuator, as the actuator declares it
    (actuators/): a `number`, `button` or `switch` commanding through the
    direct `/set` topic of its station key, or of each connector's key."""

    component: str
    # `{connector}` is filled in for a connector's control.
    object_id: str
    name: str
    # Platform fields beyond name, ids, topics, device and availability.
    # STATION_MAX_POWER as a value stands for the station's largest power.
    fields: Mapping[str, Any] = dataclass_field(default_factory=dict)
    # The sensor key (after `<cp>__`) whose direct topic shows the state;
    # `{connector}` and `{status_field}` are filled in.
    state_key: str | None = None
    per_connector: bool = False


# A field value that stands for the largest EVSE power the station reported
# (DEFAULT_MAX_POWER_W until it reports one).
STATION_MAX_POWER: Any = object()


@dataclass(frozen=True)
class Entity:
    component: str  # sensor, binary_sensor, number, button
    object_id: str  # unique within the station
    config: dict[str, Any]


# Where a 2.x station says an EVSE's largest power: the maxLimit of EVSE.Power
# in a report, or its MaxSet attribute (its Actual value is what it draws now).
EVSE_MAX_POWER = ("__Power__maxLimit", "__Power__MaxSet")


def evse_power(key: str, value: Any) -> float | None:
    """An EVSE's largest power (2.x device model `EVSE@<n>.Power`, in W), or None."""
    if not key.endswith(EVSE_MAX_POWER) or "__Variable__EVSE@" not in key:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value <= 1e7:
        return None
    return float(value)


def station_object_id(cp_id: str) -> str:
    """The id in topics and unique ids: letters, digits, `_` and `-` only; an id
    that needed changing gets a short hash, so two ids never share a topic.

    An id that already ends the way a hashed one does (`CP_1_03fddec0`, which
    is what `CP 1` becomes) is hashed too: it could otherwise take over every
    entity of the station whose changed id it spells."""
    safe = _UNSAFE.sub("_", cp_id)
    # `group_…` is where site budgets' groups are (group_config_topic).
    if safe != cp_id or _LOOKS_HASHED.search(cp_id) or cp_id.startswith("group_"):
        safe += "_" + hashlib.sha256(cp_id.encode("utf-8", "surrogatepass")).hexdigest()[:8]
    return safe


def config_topic(prefix: str, cp_id: str, entity: Entity) -> str:
    return f"{prefix}/{entity.component}/ocpp_{station_object_id(cp_id)}/{entity.object_id}/config"


def device(cp_id: str, boot: dict[str, Any]) -> dict[str, Any]:
    """The device, from the station's BootNotification keys (1.6 or 2.x names)."""
    info: dict[str, Any] = {
        "identifiers": [f"ocpp_{station_object_id(cp_id)}"],
        "name": cp_id,
    }
    for field, names in (
        ("manufacturer", ("chargePointVendor", "chargingStation.vendorName")),
        ("model", ("chargePointModel", "chargingStation.model")),
        ("sw_version", ("firmwareVersion", "chargingStation.firmwareVersion")),
    ):
        for name in names:
            if isinstance(boot.get(name), str):
                info[field] = boot[name]
                break
    return info


def _number(connector: str) -> str:
    """A connector's number in a name: none for connector 1, so a station with
    one connector has "Energy", "Power", "Status" (its second: "Energy 2")."""
    return "" if connector == "1" else f" {connector}"


def _availability(name: str, direct: str, cp_id: str) -> dict[str, Any]:
    return {
        "availability": [
            {
                "topic": sensor_topic(direct, f"{cp_id}{SEP}connected"),
                "value_template": AVAILABLE_TEMPLATE,
            },
            {"topic": f"{name}/status"},
        ],
        "availability_mode": "all",
    }


def entity_for_key(key: str) -> tuple[str, str, dict[str, Any]] | None:
    """(component, object id, platform fields) for a sensor key that gets an
    entity, or None. The key is `<cp>__<rest>`."""
    parts = key.split(SEP)[1:]
    fields: dict[str, Any]
    if parts == ["connected"]:
        fields = {"name": "Connected", "device_class": "connectivity"}
        return "binary_sensor", "connected", {**fields, "entity_category": "diagnostic"}
    if parts == ["upstream"]:  # its own backend (README "Keeping a station's own backend")
        fields = {
            "name": "Backend",
            "device_class": "connectivity",
            "entity_category": "diagnostic",
        }
        return "binary_sensor", "upstream", fields
    if (
        len(parts) == 3
        and parts[0] == "StatusNotification"
        and parts[2]
        in (
            "status",
            "connectorStatus",
        )
    ):
        # An enum of the version's statuses; OCPP's "Unavailable" is renamed,
        # as it reads like Home Assistant's own `unavailable` (no data).
        options = STATUSES_16 if parts[2] == "status" else STATUSES_2
        fields = {
            "name": f"Status{_number(parts[1])}",
            "device_class": "enum",
            "options": [SHOWN_STATUS.get(o, o) for o in options],
            "value_template": STATUS_TEMPLATE,
        }
        if parts[1] == "0":  # the station itself: a diagnostic beside its connectors
            fields["entity_category"] = "diagnostic"
        return "sensor", f"status_{parts[1]}", fields
    if parts[:1] == ["ChargingLimit"] and parts[-1] == "W":
        where = "" if len(parts) == 2 else _number(parts[1])
        object_id = "limit" if len(parts) == 2 else f"limit_{parts[1]}"
        limit = {"name": f"Limit in force{where}", "device_class": "power"}
        return (
            "sensor",
            object_id,
            {**limit, "state_class": "measurement", "unit_of_measurement": "W"},
        )
    if len(parts) >= 4 and parts[0] == "MeterValues":
        meter = _METERS.get((parts[2], parts[-1]))
        if meter is None:
            return None
        device_class, state_class, unit = meter
        extra = parts[3:-1]  # phase and/or location
        object_id = "_".join([parts[2].split(".")[0].lower(), parts[1], *extra]).replace("-", "_")
        label = " ".join([parts[2].split(".")[0], *([parts[1]] if parts[1] != "1" else []), *extra])
        return (
            "sensor",
            _UNSAFE.sub("_", object_id),
            {
                "name": label,
                "device_class": device_class,
                "state_class": state_class,
                "unit_of_measurement": unit,
            },
        )
    return None


def sensor_entity(name: str, cp_id: str, key: str, boot: dict[str, Any]) -> Entity | None:
    found = entity_for_key(key)
    if found is None:
        return None
    component, object_id, fields = found
    direct = f"{name}/direct/"
    config: dict[str, Any] = {
        **fields,
        "unique_id": f"ocpp_{station_object_id(cp_id)}_{object_id}",
        "state_topic": sensor_topic(direct, key),
        "device": device(cp_id, boot),
    }
    if component == "binary_sensor":
        config["value_template"] = BINARY_TEMPLATE
        config["availability_topic"] = f"{name}/status"
    else:
        config.setdefault("value_template", VALUE_TEMPLATE)
        config.update(_availability(name, direct, cp_id))
    return Entity(component, object_id, config)


def control_entity(
    name: str,
    cp_id: str,
    boot: dict[str, Any],
    actuator: str,
    control: Control,
    fill: dict[str, Any],
) -> Entity:
    """The entity of one actuator's control. `fill`: `connector` (a connector's
    control), `status_field`, and `max_power` (for STATION_MAX_POWER)."""
    direct = f"{name}/direct/"
    station = sensor_topic(direct, f"{cp_id}{SEP}x")[: -len("/x")]
    connector = fill.get("connector")
    object_id = control.object_id.format(**fill)
    command = f"{station}/{actuator}" + (f"/{connector}" if connector is not None else "")
    config: dict[str, Any] = {
        "name": control.name.format(**fill),
        "unique_id": f"ocpp_{station_object_id(cp_id)}_{object_id}",
        "command_topic": f"{command}/set",
    }
    if control.state_key is not None:
        state_key = control.state_key.format(**fill)
        config["state_topic"] = sensor_topic(direct, f"{cp_id}{SEP}{state_key}")
        config["value_template"] = VALUE_TEMPLATE
    for platform_field, value in control.fields.items():
        config[platform_field] = fill.get("max_power") if value is STATION_MAX_POWER else value
    config["device"] = device(cp_id, boot)
    config.update(_availability(name, direct, cp_id))
    return Entity(control.component, object_id, config)


def control_entities(
    name: str,
    cp_id: str,
    boot: dict[str, Any],
    max_power_w: float | None,
    controls: Sequence[tuple[str, Control]],
) -> list[Entity]:
    """The station's controls (those not per connector) of the actuators
    offered, `controls` being (actuator, its control) in the order offered."""
    fill = {"max_power": max_power_w or DEFAULT_MAX_POWER_W}
    return [
        control_entity(name, cp_id, boot, actuator, control, fill)
        for actuator, control in controls
        if not control.per_connector
    ]


def connector_entities(
    name: str,
    cp_id: str,
    connector: str,
    status_field: str,
    boot: dict[str, Any],
    controls: Sequence[tuple[str, Control]],
) -> list[Entity]:
    """A connector's (EVSE's) controls of the actuators offered. `status_field`:
    `status` (1.6) or `connectorStatus` (2.x), where the connector's status is."""
    fill = {"connector": connector, "status_field": status_field}
    return [
        control_entity(name, cp_id, boot, actuator, control, fill)
        for actuator, control in controls
        if control.per_connector
    ]


# A site budget's group (README "Sharing a supply"): one device, a number for
# its limit and sensors for the rest. Group names are safe in topics as they are.
_GROUP_SENSORS = (
    ("GroupLimit", "Limit in force"),
    ("MeasuredPower", "Measured power"),
    ("Allocated", "Allocated"),
)


def group_config_topic(prefix: str, group: str, entity: Entity) -> str:
    return f"{prefix}/{entity.component}/ocpp_group_{group}/{entity.object_id}/config"


def group_entities(name: str, group: str, max_w: float) -> list[Entity]:
    direct = f"{name}/direct/"
    group_id = GROUP_PREFIX + group
    device_info = {
        "identifiers": [f"ocpp_group_{group}"],
        "name": f"Group {group}",
        "model": "Site budget",
    }
    availability = {"availability_topic": f"{name}/status"}
    limit_state = sensor_topic(direct, f"{group_id}{SEP}GroupLimit{SEP}W")
    entities = [
        Entity(
            "number",
            "group_limit",
            {
                "name": "Group limit",
                "unique_id": f"ocpp_group_{group}_group_limit",
                "command_topic": sensor_topic(direct, f"{group_id}{SEP}{LIMIT_ACTUATOR}") + "/set",
                "state_topic": limit_state,
                "value_template": VALUE_TEMPLATE,
                "min": 0,
                "max": max_w,
                "step": 1,
                "mode": "box",
                "unit_of_measurement": "W",
                "device_class": "power",
                "device": device_info,
                **availability,
            },
        )
    ]
    for part, label in _GROUP_SENSORS:
        object_id = part.lower()
        entities.append(
            Entity(
                "sensor",
                object_id,
                {
                    "name": label,
                    "unique_id": f"ocpp_group_{group}_{object_id}",
                    "state_topic": sensor_topic(direct, f"{group_id}{SEP}{part}{SEP}W"),
                    "value_template": VALUE_TEMPLATE,
                    "device_class": "power",
                    "state_class": "measurement",
                    "unit_of_measurement": "W",
                    "device": device_info,
                    **availability,
                },
            )
        )
    return entities
