"""Property-based tests: generated hostile input never crashes anything (README "Reliability").

- The frame parser, the mapping code and the actuator path get more than
  10,000 generated frames, payloads and values between them. Each either
  gives a result or refuses with its own error type, never anything else.
- Over a real WebSocket to a running connector, generated frames in bursts:
  every CALL with a message id gets an answer with that id, the connection
  keeps serving valid calls, and another station is not affected.

Examples are derandomized, so CI runs the same cases every time.
"""

from __future__ import annotations

import asyncio
import json
import math
import threading
import uuid
from collections.abc import Iterator
from typing import Any
from urllib.parse import unquote

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ocpp.messages import Call, CallError, CallResult, validate_payload
from ocpp.v16.enums import Action
from websockets.sync.client import connect as sync_connect

from connector import actuators
from connector.actuators import Route
from connector.actuators.trigger_message import parse_trigger
from connector.bridge import Bridge
from connector.core import commands as cmd
from connector.core import datapoints as dp
from connector.core import limit_store
from connector.core.datapoint_map import InvalidMap, parse_datapoint_map
from connector.core.direct_topics import sensor_topic
from connector.core.electrical import measure
from connector.core.mqtt_topics import MAX_TOPIC_BYTES, escape_level, topic_problem
from connector.core.secrets import is_secret
from connector.core.strict_json import dumps, is_finite_scalar, loads_strict
from connector.ocpp2.mapping import meter_values_v2, report_variables, variable_key
from connector.ocpp2.station import StationV21
from connector.ocpp16 import configuration as station_config
from connector.stations.frames import CallResultError, FrameError, Send, parse_frame
from connector.tests.helpers import Mosquitto, connector_settings
from connector.versions import BY_NAME, OCPP16, VERSIONS

FAST = settings(
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

ACTIONS = [a.value for a in Action]
JSON_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=40)
)
JSON = st.recursive(
    JSON_SCALARS,
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=20), children, max_size=5)
    ),
    max_leaves=20,
)
MESSAGE_IDS = st.text(min_size=1, max_size=40) | JSON_SCALARS
ACTION_NAMES = st.sampled_from(ACTIONS) | st.text(max_size=30) | JSON_SCALARS

# Frames shaped like OCPP-J, with each part possibly wrong.
STRUCTURED_FRAMES = st.one_of(
    st.tuples(st.sampled_from([2, 3, 4]) | st.integers(), MESSAGE_IDS, ACTION_NAMES, JSON).map(
        list
    ),
    st.tuples(st.just(2), st.text(min_size=1, max_size=36), st.sampled_from(ACTIONS), JSON).map(
        list
    ),
    st.lists(JSON, max_size=6),
    JSON,
).map(lambda frame: json.dumps(frame))

RAW_FRAMES = st.text(max_size=200) | st.binary(max_size=200) | STRUCTURED_FRAMES


def is_call_with_id(frame: str | bytes) -> str | None:
    """The message id of a frame that is a CALL with a string id, else None."""
    try:
        decoded = json.loads(frame)
    except (ValueError, UnicodeDecodeError, RecursionError):
        return None
    if isinstance(decoded, list) and len(decoded) >= 2 and decoded[0] == 2:
        return decoded[1] if isinstance(decoded[1], str) else None
    return None


# ---- the frame handler ---------------------------------------------------


@settings(FAST, max_examples=3000)
@given(RAW_FRAMES)
def test_parse_frame_never_raises(frame: str | bytes) -> None:
    result = parse_frame(frame)
    assert isinstance(result, Call | CallResult | CallError | FrameError)
    unique_id = is_call_with_id(frame)
    if unique_id is not None:
        # A CALL with an id is always answerable: as a call, or with a CALLERROR.
        assert result.unique_id == unique_id


@settings(FAST, max_examples=2000)
@given(st.sampled_from(ACTIONS), JSON)
def test_calls_with_any_payload_parse_or_refuse(action: str, payload: Any) -> None:
    frame = json.dumps([2, "id-1", action, payload])
    result = parse_frame(frame)
    if isinstance(payload, dict):
        assert isinstance(result, Call) and result.payload == payload
    else:
        assert isinstance(result, FrameError) and result.unique_id == "id-1"


# Frames of OCPP 2.1's new types, SEND (6) and CALLRESULTERROR (5), each part possibly wrong.
NEW_TYPE_FRAMES = st.one_of(
    st.tuples(st.sampled_from([5, 6]), MESSAGE_IDS, ACTION_NAMES, JSON).map(list),
    st.lists(JSON, max_size=6).map(lambda rest: [6, *rest]),
).map(lambda frame: json.dumps(frame))


def _is_send(frame: str | bytes) -> bool:
    try:
        decoded = json.loads(frame)
    except (ValueError, UnicodeDecodeError, RecursionError):
        return False
    return isinstance(decoded, list) and bool(decoded) and decoded[0] == 6


@settings(FAST, max_examples=2000)
@given(RAW_FRAMES | NEW_TYPE_FRAMES, st.sampled_from(["1.6", "2.0.1", "2.1"]))
def test_parse_frame_never_raises_in_any_version(frame: str | bytes, version: str) -> None:
    result = parse_frame(frame, BY_NAME[version])
    assert isinstance(result, Call | CallResult | CallError | CallResultError | Send | FrameError)
    if version == "2.1" and _is_send(frame) and isinstance(result, FrameError):
        assert result.unique_id is None  # a SEND is never answered, not even a bad one
    if version != "1.6" and isinstance(result, FrameError):
        assert result.code != "FormationViolation"  # the 2.x spelling


# ---- the mapping code ----------------------------------------------------

SAMPLED_VALUE = st.dictionaries(
    st.sampled_from(["value", "measurand", "phase", "location", "unit", "context", "format"]),
    JSON_SCALARS | st.sampled_from(["Voltage", "Current.Import", "kWh", "L1", "L1-N", "12.5"]),
)
METER_VALUE = st.lists(
    st.fixed_dictionaries(
        {"sampledValue": st.lists(SAMPLED_VALUE, max_size=6)},
        optional={"timestamp": JSON_SCALARS | st.just("2026-01-01T00:00:00Z")},
    ),
    max_size=4,
)


@settings(FAST, max_examples=1000)
@given(METER_VALUE, st.integers(min_value=0, max_value=10))
def test_meter_value_mapping_never_raises(
    meter_value: list[dict[str, Any]], connector: int
) -> None:
    mapped = dp.meter_values("CP", connector, meter_value, 1000)
    for point in mapped.datapoints:
        assert point.key.startswith("CP__MeterValues__")
        assert not isinstance(point.value, float) or math.isfinite(point.value)
    measure(meter_value)


@settings(FAST, max_examples=1000)
@given(st.dictionaries(st.text(max_size=50), st.none() | st.text(max_size=60), max_size=10))
def test_configuration_parsing_never_raises(config: dict[str, str | None]) -> None:
    caps = station_config.capabilities(config)
    assert caps.rate_units <= {"A", "W"} and caps.rate_units
    station_config.configuration_datapoints("CP", config, 1)


# ---- the actuator path ---------------------------------------------------


@settings(FAST, max_examples=2500)
@given(JSON | st.binary(max_size=50))
def test_actuator_values_are_valid_or_refused(value: Any) -> None:
    payload = value if isinstance(value, bytes) else json.dumps({"value": value}).encode()
    try:
        parsed = cmd.parse_actuator_payload(payload)
    except cmd.InvalidCommand:
        return
    for parse in (cmd.parse_power_limit, lambda value: parse_trigger(value, OCPP16)):
        try:
            result = parse(parsed)
        except cmd.InvalidCommand:
            continue
        if parse is cmd.parse_power_limit and isinstance(result, int | float):
            assert 0 <= result <= cmd.MAX_POWER_W and math.isfinite(result)


@settings(FAST, max_examples=1000)
@given(st.text(max_size=80))
def test_actuator_keys_are_valid_or_refused(key: str) -> None:
    try:
        target = cmd.parse_actuator_key(key, actuators.DEFAULTS)
    except cmd.InvalidCommand:
        return
    assert target.connector_id is None or 0 <= target.connector_id <= cmd.MAX_CONNECTOR_ID


@settings(FAST, max_examples=1000)
@given(st.binary(max_size=100) | JSON.map(lambda v: json.dumps(v).encode()))
def test_maps_and_kept_state_are_valid_or_refused(payload: bytes) -> None:
    try:
        parse_datapoint_map(payload)
    except InvalidMap:
        pass
    limits = limit_store.decode(payload)
    assert limits is None or all(v is None or v >= 0 for v in limits.values())


# ---- over a real WebSocket -----------------------------------------------


class BackgroundConnector:
    """The connector in its own thread and event loop, for synchronous clients."""

    def __init__(self, mosquitto_port: int, name: str, **overrides: Any) -> None:
        self.loop = asyncio.new_event_loop()
        self.bridge = Bridge(connector_settings(name, mosquitto_port, **overrides), "test")
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        asyncio.run_coroutine_threadsafe(self.bridge.start(), self.loop).result(30)

    @property
    def url(self) -> str:
        assert self.bridge.central is not None
        return f"ws://127.0.0.1:{self.bridge.central.port}/ocpp/"

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self.bridge.stop(), self.loop).result(30)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


@pytest.fixture(scope="module")
def background(mosquitto: Mosquitto) -> Iterator[BackgroundConnector]:
    connector = BackgroundConnector(mosquitto.port, f"hostile-{uuid.uuid4().hex[:8]}")
    yield connector
    connector.stop()


@pytest.fixture(scope="module")
def hostile(background: BackgroundConnector) -> Iterator[Any]:
    with sync_connect(background.url + "HOSTILE", subprotocols=["ocpp1.6"]) as ws:  # type: ignore[list-item]
        yield ws


@pytest.fixture(scope="module")
def bystander(background: BackgroundConnector) -> Iterator[Any]:
    with sync_connect(background.url + "BYSTANDER", subprotocols=["ocpp1.6"]) as ws:  # type: ignore[list-item]
        yield ws


def heartbeat_answered(ws: Any) -> list[Any]:
    """Sends a Heartbeat and returns every frame up to its answer."""
    marker = f"hb-{uuid.uuid4().hex[:12]}"
    ws.send(json.dumps([2, marker, "Heartbeat", {}]))
    seen = []
    while True:
        frame = json.loads(ws.recv(timeout=10))
        seen.append(frame)
        if frame[:2] == [3, marker]:
            return seen


@pytest.mark.broker
@settings(FAST, max_examples=150)
@given(st.lists(RAW_FRAMES, min_size=1, max_size=20))
def test_a_burst_of_generated_frames_over_a_real_websocket(
    hostile: Any, bystander: Any, frames: list[str | bytes]
) -> None:
    expected = set()
    for frame in frames:
        hostile.send(frame)
        unique_id = is_call_with_id(frame)
        if unique_id is not None:
            expected.add(unique_id)
    answers = heartbeat_answered(hostile)
    answered = {f[1] for f in answers if isinstance(f, list) and len(f) > 1 and f[0] in (3, 4)}
    assert expected <= answered, expected - answered
    # The other station is served as before.
    assert heartbeat_answered(bystander)[-1][0] == 3


@settings(FAST, max_examples=1500)
@given(
    st.sampled_from(sorted(actuators.ACTUATORS)),
    JSON,
    st.none() | st.integers(min_value=0, max_value=cmd.MAX_CONNECTOR_ID),
    st.sampled_from([v.name for v in VERSIONS]),
)
def test_every_actuator_builds_a_valid_request_or_refuses(
    actuator: str, value: Any, connector_id: int | None, version: str
) -> None:
    try:
        request = actuators.build(actuator, value, connector_id, BY_NAME[version])
    except cmd.InvalidCommand:
        return
    if "transactionId" in request.payload and request.payload["transactionId"] is None:
        return  # the bridge puts in the running transaction before sending
    if request.action in ("ClearChargingProfile", "SetChargingProfile"):
        return  # sent by charging control, by profile id (test_requests_v2 checks them)
    if actuators.ACTUATORS[actuator].route is Route.LOCAL:
        return  # no OCPP call: it clears the broker's retained topics
    # Whatever is built passes the schema of the version the station applies.
    asyncio.run(validate_payload(Call("x", request.action, request.payload), version))


# ---- OCPP 2.0.1 and 2.1 stations, and 2.1's SEND frames --------------------

ACTIONS_V2 = sorted(StationV21.known_actions)
STREAM_ITEMS = st.fixed_dictionaries({"t": JSON_SCALARS, "v": JSON_SCALARS})
SEND_PAYLOADS = JSON | st.fixed_dictionaries(
    {"id": JSON_SCALARS, "data": st.lists(STREAM_ITEMS | JSON, max_size=4)},
    optional={"pending": JSON_SCALARS, "basetime": JSON_SCALARS},
)
FRAMES_V2 = st.one_of(
    st.tuples(
        st.sampled_from([2, 3, 4, 5, 6]) | st.integers(), MESSAGE_IDS, ACTION_NAMES, JSON
    ).map(list),
    st.tuples(st.just(2), st.text(min_size=1, max_size=36), st.sampled_from(ACTIONS_V2), JSON).map(
        list
    ),
    st.lists(JSON, max_size=6),
).map(lambda frame: json.dumps(frame))
# SEND frames carry ids of their own, so an answer to one would show.
SEND_FRAMES = st.tuples(
    st.just(6),
    st.integers(0, 2**64).map(lambda n: f"send-{n:020x}"),
    st.just("NotifyPeriodicEventStream") | ACTION_NAMES,
    SEND_PAYLOADS,
).map(lambda frame: json.dumps(list(frame)))


@pytest.fixture(scope="module")
def hostile_v21(background: BackgroundConnector) -> Iterator[Any]:
    with sync_connect(background.url + "HOSTILE21", subprotocols=["ocpp2.1"]) as ws:  # type: ignore[list-item]
        yield ws


@pytest.fixture(scope="module")
def bystander_v201(background: BackgroundConnector) -> Iterator[Any]:
    with sync_connect(background.url + "BYSTANDER201", subprotocols=["ocpp2.0.1"]) as ws:  # type: ignore[list-item]
        yield ws


@settings(FAST, max_examples=2000)
@given(FRAMES_V2 | SEND_FRAMES | RAW_FRAMES, st.sampled_from(["2.0.1", "2.1"]))
def test_parse_frame_never_raises_for_2x(frame: str | bytes, version: str) -> None:
    parsed = parse_frame(frame, BY_NAME[version])
    if isinstance(parsed, Send):
        assert version == "2.1"
    if isinstance(parsed, FrameError) and parsed.unique_id is not None:
        # Never the 1.6 spelling toward a 2.x station.
        assert parsed.code != "FormationViolation"


@pytest.mark.broker
@settings(FAST, max_examples=150)
@given(st.lists(FRAMES_V2 | SEND_FRAMES | RAW_FRAMES, min_size=1, max_size=20))
def test_a_burst_of_generated_2x_frames_over_a_real_websocket(
    hostile_v21: Any, bystander_v201: Any, frames: list[str | bytes]
) -> None:
    expected, sends = set(), set()
    for frame in frames:
        hostile_v21.send(frame)
        unique_id = is_call_with_id(frame)
        if unique_id is not None:
            expected.add(unique_id)
        elif isinstance(frame, str) and frame.startswith('[6, "send-'):
            sends.add(json.loads(frame)[1])
    answers = heartbeat_answered(hostile_v21)
    answered = {f[1] for f in answers if isinstance(f, list) and len(f) > 1 and f[0] in (3, 4)}
    assert expected <= answered, expected - answered
    # A SEND is never answered, not even a bad one.
    assert not sends & answered
    # 2.x codes only.
    assert not [f for f in answers if f[0] == 4 and f[2] == "FormationViolation"]
    assert heartbeat_answered(bystander_v201)[-1][0] == 3


# ---- extreme numbers and names a station chooses (issue 17) ---------------

EXTREME_NUMBERS = st.one_of(
    st.integers(min_value=-(10**400), max_value=10**400),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([1e308, -1e308, 10**400, 2**63, 2**64, 0, 5e-324]),
)
MULTIPLIERS = st.integers(min_value=-(10**12), max_value=10**12) | st.sampled_from(
    [10**7, -(10**7), 300, 308, 309, -324, -400]
)
UNITS = st.sampled_from(["Wh", "kWh", "W", "kW", "A", "V", "Celsius", "K", "Percent", "varh"])
SAMPLED_V2 = st.fixed_dictionaries(
    {"value": EXTREME_NUMBERS},
    optional={
        "unitOfMeasure": st.fixed_dictionaries(
            {}, optional={"unit": UNITS, "multiplier": MULTIPLIERS}
        ),
        "measurand": st.sampled_from(["Power.Active.Import", "Voltage", "SoC"]),
    },
)
# What a station may call a configuration key, component, variable or field.
NAMES = st.text(max_size=50) | st.sampled_from(
    [
        "a+b", "#", "x/y", "\x00", "%", "%25", "Vendor#Key", "a__b", "\x7f\x85", "$SYS", "/",
        "K\uffff", "\ufdd0", "\U0001fffe", "\U0010ffff",  # Unicode non-characters
    ]
)  # fmt: skip


@settings(FAST, max_examples=1500)
@given(st.lists(SAMPLED_V2, max_size=6))
def test_2x_meter_values_with_extreme_numbers_map_or_skip(sampled: list[dict[str, Any]]) -> None:
    entry = {"timestamp": "2026-01-01T00:00:00Z", "sampledValue": sampled}
    mapped = meter_values_v2("CP", 1, [entry], 1000)
    # Every value is published or skipped with a reason: never both, never lost.
    assert len(mapped.datapoints) + len(mapped.problems) == len(sampled)
    for point in mapped.datapoints:
        assert is_finite_scalar(point.value)
        assert loads_strict(dumps({"value": point.value})) == {"value": point.value}
    assert all(len(problem) < 300 for problem in mapped.problems)


@settings(FAST, max_examples=1500)
@given(NAMES, NAMES, NAMES, st.text(max_size=30) | EXTREME_NUMBERS.map(str))
def test_names_a_station_chose_make_valid_topics(
    component: str, variable: str, key: str, value: str
) -> None:
    report = [
        {
            "component": {"name": component},
            "variable": {"name": variable},
            "variableAttribute": [{"value": value}],
        }
    ]
    reported = list(report_variables("CP", report, 1))
    if is_secret(variable):
        assert reported == []  # a secret never becomes a key (core/secrets.py)
        return
    keys = [*reported, f"CP__Configuration__{key}"]
    assert keys[0] == variable_key("CP", {"name": component}, {"name": variable})
    for datapoint_key in keys:
        topic = sensor_topic("n/direct/", datapoint_key)
        if len(topic.encode("utf-8", "surrogatepass")) <= MAX_TOPIC_BYTES:
            assert topic_problem(topic) is None, topic
    for point in report_variables("CP", report, 1).values():
        assert is_finite_scalar(point.value)
        loads_strict(dumps(point.value))
    if not any("\ud800" <= c <= "\udfff" for c in key):
        assert unquote(escape_level(key)) == key  # escaping loses nothing


def meter_values_frame(sampled: list[dict[str, Any]]) -> list[Any]:
    entry = {"timestamp": "2026-01-01T00:00:00Z", "sampledValue": sampled}
    return [2, f"mv-{uuid.uuid4().hex[:20]}", "MeterValues", {"evseId": 1, "meterValue": [entry]}]


def report_frame(component: str, variable: str, value: str) -> list[Any]:
    attribute = {"value": value}
    data = {"component": {"name": component}, "variable": {"name": variable}}
    payload = {
        "requestId": 1,
        "generatedAt": "2026-01-01T00:00:00Z",
        "seqNo": 0,
        "reportData": [{**data, "variableAttribute": [attribute]}],
    }
    return [2, f"nr-{uuid.uuid4().hex[:20]}", "NotifyReport", payload]


def boot_frame(fields: dict[str, Any]) -> list[Any]:
    payload = {
        "chargingStation": {"vendorName": "V", "model": "M"},
        "reason": "PowerUp",
        "customData": {"vendorId": "x", **fields},
    }
    return [2, f"bn-{uuid.uuid4().hex[:20]}", "BootNotification", payload]


EXTREME_FRAMES_V2 = st.one_of(
    st.lists(SAMPLED_V2, min_size=1, max_size=5).map(meter_values_frame),
    st.tuples(
        NAMES, NAMES, st.text(max_size=20) | st.sampled_from(["1e999", "-1e999", "1" * 400])
    ).map(lambda parts: report_frame(*parts)),
    st.dictionaries(NAMES, EXTREME_NUMBERS | st.text(max_size=20), max_size=4).map(boot_frame),
)


@pytest.fixture(scope="module")
def background_direct(mosquitto: Mosquitto) -> Iterator[BackgroundConnector]:
    """A connector that publishes every key on its own topic (MQTT_DIRECT_TOPICS),
    so names a station chose become topics."""
    connector = BackgroundConnector(
        mosquitto.port, f"extreme-{uuid.uuid4().hex[:8]}", mqtt_direct_topics=True
    )
    yield connector
    connector.stop()


@pytest.mark.broker
@settings(FAST, max_examples=100)
@given(st.lists(EXTREME_FRAMES_V2, min_size=1, max_size=10))
def test_extreme_numbers_and_names_over_a_real_websocket(
    background_direct: BackgroundConnector, frames: list[list[Any]]
) -> None:
    url = background_direct.url
    with (
        sync_connect(url + "EXTREME", subprotocols=["ocpp2.0.1"]) as hostile,  # type: ignore[list-item]
        sync_connect(url + "CALM", subprotocols=["ocpp2.0.1"]) as calm,  # type: ignore[list-item]
    ):
        for frame in frames:
            hostile.send(json.dumps(frame))
        answers = heartbeat_answered(hostile)
        answered = {f[1]: f for f in answers if f[0] in (3, 4)}
        for frame in frames:
            # Valid frames get a CALLRESULT; never an InternalError.
            assert frame[1] in answered
            assert answered[frame[1]][0] == 3 or answered[frame[1]][2] != "InternalError"
        assert heartbeat_answered(calm)[-1][0] == 3
    mqtt = background_direct.bridge.mqtt
    # The broker never dropped us: a topic it refuses would have (and a reconnect).
    assert mqtt is not None and mqtt.link.connected.is_set() and mqtt.link.connects == 1
