"""Pure: datapoint keys <-> the direct topics of README "Direct topics" (MQTT_DIRECT_TOPICS).

- A sensor key `<cp>__<a>__<b>` is published on `<name>/direct/<cp>/<a>/<b>`.
- A command on `<name>/direct/<cp>/<actuator>[/<connectorId>]/set` is the
  actuator key `<cp>__<actuator>[__<connectorId>]`, with a plain value or a
  BEMCom value payload.
The station id is percent-encoded in topics: an id may hold `/`, `+` or `#`,
which would change a topic's meaning. So is every other part a station
chose (configuration keys, component and variable names, `customData`
fields): `Vendor#Key` is published as `Vendor%23Key` (core/mqtt_topics.py).
"""

from __future__ import annotations

import json
from urllib.parse import quote, unquote

from connector.core.datapoints import SEP
from connector.core.groups import GROUP_PREFIX
from connector.core.mqtt_topics import escape_level

SET = "set"


def sensor_topic(prefix: str, key: str) -> str:
    """`prefix` is `<name>/direct/`."""
    cp_id, _, rest = key.partition(SEP)
    return prefix + _id_level(cp_id) + "/" + "/".join(map(escape_level, rest.split(SEP)))


def _id_level(cp_id: str) -> str:
    # A group's `@` stays readable: no station id begins with it (central_system.py).
    if cp_id.startswith(GROUP_PREFIX):
        return GROUP_PREFIX + quote(cp_id[len(GROUP_PREFIX) :], safe="")
    return quote(cp_id, safe="")


def command_subscriptions(prefix: str) -> list[str]:
    return [f"{prefix}+/+/{SET}", f"{prefix}+/+/+/{SET}"]


def command_key(prefix: str, topic: str) -> str | None:
    """The actuator key of a `…/set` topic; None for any other topic under the
    prefix (our own sensor topics among them: a variable may be named `set`)."""
    if not topic.startswith(prefix) or not topic.endswith("/" + SET):
        return None
    parts = topic[len(prefix) : -len(SET) - 1].split("/")
    if len(parts) not in (2, 3) or not parts[1].startswith("execute_"):
        return None
    return SEP.join([unquote(parts[0]), *parts[1:]])


def command_payload(payload: bytes) -> bytes:
    """A BEMCom value payload as it is; a plain value (`11000`, `null`, `Soft`,
    `{"vendorId": …}`) wrapped into one."""
    text = payload.decode("utf-8", "replace").strip()
    try:
        decoded = json.loads(text)
    except (ValueError, RecursionError):
        decoded = text  # a bare word: the value itself
    if isinstance(decoded, dict) and "value" in decoded:
        return payload
    return json.dumps({"value": decoded}).encode()
