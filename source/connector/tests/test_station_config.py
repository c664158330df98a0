"""Pure, table-driven tests of reading a station's configuration leniently."""

from __future__ import annotations

import pytest

from connector.core.capabilities import sampling_changes
from connector.core.datapoints import Datapoint
from connector.ocpp16 import configuration as sc
from connector.ocpp16.station import SAMPLING_KEYS

A, W, AW = frozenset({"A"}), frozenset({"W"}), frozenset({"A", "W"})


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Current", A),
        ("Power", W),
        ("power", W),  # lowercase, as some firmware sends it
        ("POWER", W),
        ("W", W),
        ("A", A),
        ("Current,Power", AW),
        ("Power, Current", AW),
        ("Current;Power", AW),
        ("Current Power", AW),
        ('["Current","Power"]', AW),
        ("A,W", AW),
        (None, A),  # a missing key means Current
        ("", A),
        ("Watts", A),  # nothing we know: Current
    ],
)
def test_parse_rate_units(raw: str | None, expected: frozenset[str]) -> None:
    assert sc.parse_rate_units(raw) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("8", 8), (" 8 ", 8), ("8.0", 8), ("0", 0), ("-1", None), ("x", None), (None, None)],
)
def test_parse_int(raw: str | None, expected: int | None) -> None:
    assert sc.parse_int(raw) == expected


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        ({}, sc.Capabilities()),
        (
            {
                "ChargingScheduleAllowedChargingRateUnit": "Current,Power",
                "ChargeProfileMaxStackLevel": "8",
                "NumberOfConnectors": "2",
                "SupportedFeatureProfiles": "Core,SmartCharging",
                "MeterValuesSampledData": "Energy.Active.Import.Register,Power.Active.Import",
                "MeterValueSampleInterval": "60",
            },
            sc.Capabilities(
                rate_units=AW,
                max_stack_level=8,
                number_of_connectors=2,
                feature_profiles=frozenset({"core", "smartcharging"}),
                sampled_data=("Energy.Active.Import.Register", "Power.Active.Import"),
                sample_interval=60,
            ),
        ),
        # Keys spelled in another case, a key without a value.
        (
            {
                "chargingscheduleallowedchargingrateunit": "power",
                "ChargeProfileMaxStackLevel": None,
            },
            sc.Capabilities(rate_units=W),
        ),
    ],
)
def test_capabilities(config: dict[str, str | None], expected: sc.Capabilities) -> None:
    assert sc.capabilities(config) == expected


@pytest.mark.parametrize(
    ("profiles", "lacks"),
    [(None, False), ("Core,SmartCharging", False), ("Core", True), ("core smartcharging", False)],
)
def test_lacks_smart_charging(profiles: str | None, lacks: bool) -> None:
    config = {} if profiles is None else {"SupportedFeatureProfiles": profiles}
    assert sc.capabilities(config).lacks_smart_charging is lacks


def test_read_configuration_and_datapoints() -> None:
    answer = {
        "configurationKey": [
            {"key": "HeartbeatInterval", "readonly": False, "value": "300"},
            {"key": "AuthorizationKey", "readonly": False, "value": "s3cret"},
            {"key": "NoValue", "readonly": True},
        ],
        "unknownKey": ["Foo"],
    }
    config = sc.read_configuration(answer)
    assert config == {"HeartbeatInterval": "300", "AuthorizationKey": "s3cret", "NoValue": None}
    # A station's password never becomes a key (issue 17).
    assert sc.configuration_datapoints("CP", config, 9) == [
        Datapoint("CP__Configuration__HeartbeatInterval", "300", 9),
        Datapoint("CP__Configuration__NoValue", None, 9),
    ]
    assert sc.read_configuration({}) == {}


def test_missing_keys() -> None:
    assert sc.missing_keys({}) == list(sc.LEARNED_KEYS)
    present = {key.upper(): "1" for key in sc.LEARNED_KEYS}
    assert sc.missing_keys(present) == []


@pytest.mark.parametrize(
    ("reported", "sampled", "interval", "expected"),
    [
        ({}, None, None, []),
        # Not reported: written.
        (
            {},
            ("Power.Active.Import",),
            60,
            [
                ("MeterValuesSampledData", "Power.Active.Import"),
                ("MeterValueSampleInterval", "60"),
            ],
        ),
        # Same set in another order and case: left alone.
        (
            {"MeterValuesSampledData": "power.active.import, Energy.Active.Import.Register"},
            ("Energy.Active.Import.Register", "Power.Active.Import"),
            None,
            [],
        ),
        ({"MeterValueSampleInterval": "60"}, None, 60, []),
        ({"MeterValueSampleInterval": "300"}, None, 60, [("MeterValueSampleInterval", "60")]),
    ],
)
def test_metering_changes(
    reported: dict[str, str],
    sampled: tuple[str, ...] | None,
    interval: int | None,
    expected: list[tuple[str, str]],
) -> None:
    changes = sampling_changes(sc.capabilities(reported), sampled, interval)
    # In the 1.6 adapter's words (it writes these configuration keys).
    assert [(SAMPLING_KEYS[setting], value) for setting, value in changes] == expected
