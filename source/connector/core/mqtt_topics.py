"""Pure: what may stand in an MQTT topic, and escaping for names a station chose.

A station picks its id, its configuration keys, its component and variable
names and its `customData` fields. Put into a topic as they are, `#` or `+`
make paho refuse the publish, `/` adds a level, and U+0000 or a control
character makes Mosquitto drop the connector's whole connection (MQTT 5.0
1.5.4: such strings are malformed). So every topic level built from a
station's name is percent-encoded here (station ids always were, with
`quote`), and every topic is checked once more before it is handed to paho.
"""

from __future__ import annotations

import re

# MQTT's limit on a topic: a UTF-8 string of at most 65,535 bytes.
MAX_TOPIC_BYTES = 65535
# paho's and MQTT's limit on a payload.
MAX_PAYLOAD_BYTES = 268_435_455

# What Mosquitto refuses in a topic, and drops the whole connection for: control
# characters (MQTT disallows U+0000 and advises against the rest), lone
# surrogates (no UTF-8 at all), and Unicode's non-characters (U+FDD0-U+FDEF, and
# the last two code points of every plane).
_REFUSED = "\x00-\x1f\x7f-\x9f\ud800-\udfff\ufdd0-\ufdef" + "".join(
    chr(plane + 0xFFFE) + chr(plane + 0xFFFF) for plane in range(0, 0x110000, 0x10000)
)
_CONTROL = re.compile(f"[{_REFUSED}]")
# Percent-encoded in a topic level: those, the escape itself, and MQTT's
# separator and wildcards.
_ESCAPED = re.compile(f"[%/+#{_REFUSED}]")


def _escaped(char: str) -> str:
    # A lone surrogate (JSON allows "\ud800") has no UTF-8 form; it is
    # written as the bytes Python would give it, so the level stays unique.
    return "".join(f"%{byte:02X}" for byte in char.encode("utf-8", "surrogatepass"))


def escape_level(name: str) -> str:
    """One topic level for a name a station chose: `Vendor#Key` -> `Vendor%23Key`.

    Reversible with urllib.parse.unquote. Letters, digits and everything MQTT
    allows stay readable (`EVSE@1`, `Connector@1.1`, `Power.Active.Import`).
    """
    return _ESCAPED.sub(lambda match: _escaped(match.group()), name)


def topic_problem(topic: str) -> str | None:
    """Why paho or the broker would refuse `topic` for a publish, or None."""
    if not topic:
        return "the topic is empty"
    if "+" in topic or "#" in topic:
        return "the topic holds a wildcard"
    try:
        encoded = topic.encode("utf-8")
    except UnicodeEncodeError:
        return "the topic is not valid UTF-8"
    if len(encoded) > MAX_TOPIC_BYTES:
        return f"the topic is longer than {MAX_TOPIC_BYTES} bytes"
    if _CONTROL.search(topic):
        return "the topic holds a control character or a Unicode non-character"
    return None
