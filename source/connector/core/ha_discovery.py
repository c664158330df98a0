"""Pure: Home Assistant MQTT discovery for each station (CONTRACT §10).

One device per station (name = its id; manufacturer, model and firmware from
its BootNotification), whose entities read the direct topics (direct_topics.py)
and command through their `/set` topics:
- a `binary_sensor` for `connected` (device class `connectivity`);
- a `sensor` per connector (EVSE) for its status;
- `sensor`s for energy (`energy`, `total_increasing`, Wh), power (`power`, W),
  current (`current`, A), voltage (`voltage`, V) and SoC (`battery`, %), each
  as the station first reports it;
- the limit in force (`power`, W);
- a `number` for the charging limit in W (its commands go to the station key
  of execute_send_charging_profile) and a `button` that triggers MeterValues.
Every entity but `connected` is available when both the station's
`connected` and `<name>/status` say so (`availability_mode: all`).

Field names are Home Assistant's full names (no abbreviations), as its MQTT
integration documents them for each platform.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import Any

from connector.core.datapoints import SEP
from connector.core.direct_topics import sensor_topic

DEFAULT_MAX_POWER_W = 22_000
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
class Entity:
    component: str  # sensor, binary_sensor, number, button
    object_id: str  # unique within the station
    config: dict[str, Any]


def evse_power(key: str, value: Any) -> float | None:
    """An EVSE's power (2.x device model `EVSE@<n>.Power`, in W), or None."""
    if not key.endswith("__Power") or "__Variable__EVSE@" not in key:
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
    if safe != cp_id or _LOOKS_HASHED.search(cp_id):
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


def _availability(name: str, direct: str, cp_id: str) -> dict[str, Any]:
    return {
        "availability": [
            {
                "topic": sensor_topic(direct, f"{cp_id}{SEP}connected"),
                "value_template": "{{ 'online' if value_json.value else 'offline' }}",
            },
            {"topic": f"{name}/status"},
        ],
        "availability_mode": "all",
    }


def entity_for_key(key: str) -> tuple[str, str, dict[str, Any]] | None:
    """(component, object id, platform fields) for a sensor key that gets an
    entity, or None. The key is `<cp>__<rest>`."""
    parts = key.split(SEP)[1:]
    if parts == ["connected"]:
        return "binary_sensor", "connected", {"name": "Connected", "device_class": "connectivity"}
    if (
        len(parts) == 3
        and parts[0] == "StatusNotification"
        and parts[2]
        in (
            "status",
            "connectorStatus",
        )
    ):
        return "sensor", f"status_{parts[1]}", {"name": f"Status {parts[1]}"}
    if parts[:1] == ["ChargingLimit"] and parts[-1] == "W":
        where = "" if len(parts) == 2 else f" {parts[1]}"
        object_id = "limit" if len(parts) == 2 else f"limit_{parts[1]}"
        fields = {"name": f"Limit in force{where}", "device_class": "power"}
        return "sensor", object_id, {**fields, "unit_of_measurement": "W"}
    if len(parts) >= 4 and parts[0] == "MeterValues":
        meter = _METERS.get((parts[2], parts[-1]))
        if meter is None:
            return None
        device_class, state_class, unit = meter
        extra = parts[3:-1]  # phase and/or location
        object_id = "_".join([parts[2].split(".")[0].lower(), parts[1], *extra]).replace("-", "_")
        label = " ".join([parts[2].split(".")[0], parts[1], *extra])
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
        config["value_template"] = "{{ 'ON' if value_json.value else 'OFF' }}"
        config["availability_topic"] = f"{name}/status"
    else:
        config["value_template"] = "{{ value_json.value }}"
        config.update(_availability(name, direct, cp_id))
    return Entity(component, object_id, config)


def control_entities(
    name: str,
    cp_id: str,
    boot: dict[str, Any],
    max_power_w: float | None,
    offered: tuple[str, ...] = ("execute_send_charging_profile", "execute_trigger_message"),
) -> list[Entity]:
    """The charging limit (a number) and a button that triggers MeterValues,
    each where its actuator is offered (OCPP_CONFIG; both are by default)."""
    direct = f"{name}/direct/"
    station = sensor_topic(direct, f"{cp_id}{SEP}x")[: -len("/x")]
    oid = station_object_id(cp_id)
    common = {"device": device(cp_id, boot), **_availability(name, direct, cp_id)}
    limit = Entity(
        "number",
        "charging_limit",
        {
            "name": "Charging limit",
            "unique_id": f"ocpp_{oid}_charging_limit",
            "command_topic": f"{station}/execute_send_charging_profile/set",
            "state_topic": sensor_topic(direct, f"{cp_id}{SEP}ChargingLimit{SEP}W"),
            "value_template": "{{ value_json.value }}",
            "min": 0,
            "max": max_power_w or DEFAULT_MAX_POWER_W,
            "step": 1,
            "mode": "box",
            "unit_of_measurement": "W",
            "device_class": "power",
            **common,
        },
    )
    trigger = Entity(
        "button",
        "trigger_meter_values",
        {
            "name": "Read meter values",
            "unique_id": f"ocpp_{oid}_trigger_meter_values",
            "command_topic": f"{station}/execute_trigger_message/set",
            "payload_press": "4",
            **common,
        },
    )
    return [
        entity
        for entity, actuator in (
            (limit, "execute_send_charging_profile"),
            (trigger, "execute_trigger_message"),
        )
        if actuator in offered
    ]


def connector_entities(
    name: str,
    cp_id: str,
    connector: str,
    status_field: str,
    boot: dict[str, Any],
    offered: tuple[str, ...],
) -> list[Entity]:
    """Per connector (EVSE), for the actuators OCPP_CONFIG offers: start and stop
    buttons (remote start with the id tag `HomeAssistant`, remote stop of the
    running transaction) and an availability switch."""
    direct = f"{name}/direct/"
    station = sensor_topic(direct, f"{cp_id}{SEP}x")[: -len("/x")]
    oid = station_object_id(cp_id)
    common = {"device": device(cp_id, boot), **_availability(name, direct, cp_id)}
    entities = []
    if "execute_remote_start_transaction" in offered:
        entities.append(
            Entity(
                "button",
                f"start_{connector}",
                {
                    "name": f"Start charging {connector}",
                    "unique_id": f"ocpp_{oid}_start_{connector}",
                    "command_topic": f"{station}/execute_remote_start_transaction/{connector}/set",
                    "payload_press": "HomeAssistant",
                    **common,
                },
            )
        )
    if "execute_remote_stop_transaction" in offered:
        entities.append(
            Entity(
                "button",
                f"stop_{connector}",
                {
                    "name": f"Stop charging {connector}",
                    "unique_id": f"ocpp_{oid}_stop_{connector}",
                    "command_topic": f"{station}/execute_remote_stop_transaction/{connector}/set",
                    "payload_press": "1",
                    **common,
                },
            )
        )
    if "execute_change_availability" in offered:
        entities.append(
            Entity(
                "switch",
                f"available_{connector}",
                {
                    "name": f"Available {connector}",
                    "unique_id": f"ocpp_{oid}_available_{connector}",
                    "command_topic": f"{station}/execute_change_availability/{connector}/set",
                    "payload_on": "Operative",
                    "payload_off": "Inoperative",
                    # `status` (1.6) or `connectorStatus` (2.x); both say Unavailable.
                    "state_topic": f"{station}/StatusNotification/{connector}/{status_field}",
                    "value_template": "{{ 'Inoperative' if value_json.value == 'Unavailable' "
                    "else 'Operative' }}",
                    "state_on": "Operative",
                    "state_off": "Inoperative",
                    **common,
                },
            )
        )
    return entities
