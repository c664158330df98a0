"""core/upstream.py and the settings of README "Keeping a station's own backend".

Pure and table-driven."""

from __future__ import annotations

import json
from typing import Any

import pytest

from connector.core import upstream as up
from connector.settings import SettingsError, load_settings


@pytest.mark.parametrize(
    ("template", "cp_id", "url"),
    [
        ("wss://csms.example.com/ocpp/{cp}", "CP-1", "wss://csms.example.com/ocpp/CP-1"),
        ("ws://h/{cp}", "a b/c?d#e", "ws://h/a%20b%2Fc%3Fd%23e"),
        ("ws://h/{cp}", "x_y.z~1", "ws://h/x_y.z~1"),
        ("ws://h/{cp}", "Ünï", "ws://h/%C3%9Cn%C3%AF"),
        ("ws://h/ocpp", "CP1", "ws://h/ocpp"),  # no {cp}: one URL for all
    ],
)
def test_backend_url(template: str, cp_id: str, url: str) -> None:
    assert up.backend_url(template, cp_id) == url


@pytest.mark.parametrize(
    ("stations", "cp_id", "forwarded"),
    [(None, "any", True), (frozenset({"A", "B"}), "A", True), (frozenset({"A"}), "C", False)],
)
def test_is_forwarded(stations: frozenset[str] | None, cp_id: str, forwarded: bool) -> None:
    assert up.is_forwarded(stations, cp_id) is forwarded


@pytest.mark.parametrize(
    ("attempt", "random", "low", "high"),
    [
        (0, 0.0, 1.0, 1.0),  # never below 1 s
        (0, 0.999, 1.0, 1.25),
        (1, 0.0, 1.5, 1.5),
        (3, 0.5, 8.0, 8.0),
        (5, 0.0, 24.0, 24.0),
        (6, 0.999, 60.0, 60.0),  # never above 60 s
        (6, 0.0, 45.0, 45.0),  # jittered at the cap too
        (10_000, 0.3, 45.0, 60.0),  # no overflow however long it is away
    ],
)
def test_backoff(attempt: int, random: float, low: float, high: float) -> None:
    assert low <= up.backoff(attempt, random) <= high


KEPT_16 = (frozenset({"StartTransaction", "StopTransaction"}), frozenset({"MeterValues"}))
KEPT_2: tuple[frozenset[str], frozenset[str]] = (frozenset({"TransactionEvent"}), frozenset())


@pytest.mark.parametrize(
    ("kept", "action", "payload", "expected"),
    [
        (KEPT_16, "StartTransaction", {}, True),
        (KEPT_16, "StopTransaction", {"transactionId": 1}, True),
        (KEPT_16, "MeterValues", {"transactionId": 7}, True),
        (KEPT_16, "MeterValues", {"connectorId": 1}, False),
        (KEPT_16, "MeterValues", {"transactionId": None}, False),
        (KEPT_16, "StatusNotification", {}, False),
        (KEPT_16, "Heartbeat", {}, False),
        (KEPT_2, "TransactionEvent", {"eventType": "Updated"}, True),
        (KEPT_2, "MeterValues", {"transactionId": "x"}, False),
    ],
)
def test_transaction_messages_are_kept(
    kept: tuple[frozenset[str], frozenset[str]],
    action: str,
    payload: dict[str, Any],
    expected: bool,
) -> None:
    assert up.is_kept(action, payload, *kept) is expected


IDS = {100: 5001}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # Ours is mapped: the backend's id, the rest as it was.
        (
            '[2, "m1", "MeterValues", {"connectorId": 1, "transactionId": 100, "meterValue": []}]',
            '[2,"m1","MeterValues",{"connectorId":1,"transactionId":5001,"meterValue":[]}]',
        ),
        # Not mapped, or no id, or no frame at all: byte for byte.
        ('[2, "m2", "MeterValues", {"transactionId": 101}]', None),
        ('[2, "m3", "Heartbeat", {}]', None),
        ('[2, "m4", "StopTransaction", {"transactionId": "100"}]', None),
        ('[2, "m5", "StopTransaction", {"transactionId": true}]', None),
        ("not json", None),
        ('{"transactionId": 100}', None),
    ],
)
def test_to_backend(text: str, expected: str | None) -> None:
    assert up.to_backend(text, IDS) == (text if expected is None else expected)
    assert up.to_backend(text, {}) == text


@pytest.mark.parametrize(
    ("action", "text", "field"),
    [
        ("RemoteStopTransaction", '[2,"b1","RemoteStopTransaction",{"transactionId":5001}]', 100),
        (
            "SetChargingProfile",
            '[2,"b2","SetChargingProfile",{"connectorId":1,"csChargingProfiles":'
            '{"chargingProfileId":1,"transactionId":5001}}]',
            100,
        ),
        ("RemoteStopTransaction", '[2,"b3","RemoteStopTransaction",{"transactionId":5002}]', 5002),
        ("Reset", '[2,"b4","Reset",{"transactionId":5001}]', 5001),
    ],
)
def test_to_station(action: str, text: str, field: int) -> None:
    payload = json.loads(up.to_station(text, action, IDS))[3]
    holder = payload.get("csChargingProfiles", payload)
    assert holder["transactionId"] == field


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        (up.encode_kept('[2,"a","StartTransaction",{}]', 7), ('[2,"a","StartTransaction",{}]', 7)),
        (up.encode_kept('[2,"a","MeterValues",{}]', None), ('[2,"a","MeterValues",{}]', None)),
        (b"", None),
        (b"\xff", None),
        (b"[]", None),
        (b'{"frame": 3}', None),
        (b'{"frame": "[3,\\"a\\",{}]"}', None),  # not a CALL
        (b'{"frame": "not json"}', None),
        (b'{"frame": "[2,\\"a\\",\\"X\\",{}]", "local": "7"}', None),
        (b'{"frame": "[2,\\"a\\",\\"X\\",{}]", "local": 1e40}', None),
        (b'{"frame": "[2,\\"a\\",\\"X\\",{}]", "local": true}', None),
        (b"[" * 5000, None),
    ],
)
def test_decode_kept(payload: bytes, expected: tuple[str, int | None] | None) -> None:
    assert up.decode_kept(payload) == expected


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        (json.dumps(up.encode_ids({1: 2, 3: 4})).encode(), {1: 2, 3: 4}),
        (b"{}", {}),
        (b'{"x": 1}', None),
        (b'{"1": "2"}', None),
        (b'{"1": true}', None),
        (b"[1]", None),
        (json.dumps({str(n): n for n in range(up.MAX_MAPPED + 1)}).encode(), None),
    ],
)
def test_decode_ids(payload: bytes, expected: dict[int, int] | None) -> None:
    assert up.decode_ids(payload) == expected


@pytest.mark.parametrize(
    ("environ", "problem"),
    [
        ({"OCPP_UPSTREAM_URL": "http://csms/{cp}"}, "OCPP_UPSTREAM_URL=<hidden> is not valid"),
        ({"OCPP_UPSTREAM_DENY": "Reset"}, "OCPP_UPSTREAM_DENY set, but OCPP_UPSTREAM_URL"),
        ({"OCPP_UPSTREAM_URL": "wss://u:pw@c/{cp}"}, "OCPP_UPSTREAM_URL=<hidden> is not valid"),
        (
            {"OCPP_UPSTREAM_URL": "ws://c/{cp}", "OCPP_UPSTREAM_TLS_CA": __file__},
            "need a wss:// OCPP_UPSTREAM_URL",
        ),
        (
            {"OCPP_UPSTREAM_URL": "wss://c/{cp}", "OCPP_UPSTREAM_TLS_CERT": __file__},
            "go together",
        ),
        (
            {"OCPP_UPSTREAM_URL": "wss://c/{cp}", "OCPP_UPSTREAM_TLS_CA": __file__},
            "OCPP_UPSTREAM_TLS_CA/CERT/KEY: cannot load",
        ),
        (
            {"OCPP_UPSTREAM_URL": "ws://c/{cp}", "OCPP_UPSTREAM_BASIC_AUTH": '{"CP1": 5}'},
            "OCPP_UPSTREAM_BASIC_AUTH=<hidden>",
        ),
    ],
)
def test_bad_settings(environ: dict[str, str], problem: str) -> None:
    with pytest.raises(SettingsError) as error:
        load_settings(environ, env_file=None)
    assert problem in str(error.value)


def test_settings() -> None:
    settings = load_settings(
        {
            "OCPP_UPSTREAM_URL": "wss://csms.example.com/ocpp/{cp}",
            "OCPP_UPSTREAM_STATIONS": "CP1, CP2",
            "OCPP_UPSTREAM_DENY": "Reset,UpdateFirmware",
            "OCPP_UPSTREAM_BASIC_AUTH": '{"CP1": "secret"}',
        },
        env_file=None,
    )
    assert settings.ocpp_upstream_stations == frozenset({"CP1", "CP2"})
    assert settings.ocpp_upstream_deny == frozenset({"Reset", "UpdateFirmware"})
    assert "secret" not in repr(settings)
    assert load_settings({}, env_file=None).ocpp_upstream_stations is None
    assert (
        load_settings({"OCPP_UPSTREAM_STATIONS": "*"}, env_file=None).ocpp_upstream_stations is None
    )
