"""The quirk matrix of README "Charging control", end to end.

Each case is a simulated station with one behaviour of real chargers, behind
real WebSockets, with a real Mosquitto. A power limit is published on the
mapped actuator topic, and each case shows:
- the profile the station receives, as README "Charging control" says;
- `SetChargingProfile__status` and `ChargingLimit…` telling the truth;
- the limit in force, as the simulated station works it out from the
  profiles it accepted;
- the limit coming back after the station reboots (forgetting its profiles)
  and after the connector restarts (with its limits kept on the broker).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest

from connector.simulator.core import SimulatorOptions
from connector.simulator.v16 import SimulatedChargePoint
from connector.tests.helpers import (
    Mosquitto,
    Probe,
    StartConnector,
    StartStation,
    connector_settings,
    eventually,
    running_connector,
)

pytestmark = pytest.mark.broker

CP = "CP_1"
STATUS = f"{CP}__SetChargingProfile__status"
CLEAR_STATUS = f"{CP}__ClearChargingProfile__status"
ENERGY = f"{CP}__MeterValues__1__Energy.Active.Import.Register__Wh"


def actuator(connector_id: int) -> str:
    key = f"{CP}__execute_send_charging_profile"
    return key if connector_id == 0 else f"{key}__{connector_id}"


def limit_key(connector_id: int, unit: str) -> str:
    middle = "" if connector_id == 0 else f"__{connector_id}"
    return f"{CP}__ChargingLimit{middle}__{unit}"


def in_force(station: SimulatedChargePoint, limit_w: float, connector_id: int = 1) -> bool:
    """The station's limit is the one asked for; A rounds down by up to 0.1 A per phase."""
    actual = station.limit_w(connector_id)
    return actual is not None and limit_w - 0.02 * limit_w - 1 <= actual <= limit_w + 0.01


def sent_profiles(station: SimulatedChargePoint, since: int = 0) -> list[dict[str, Any]]:
    return [
        {"connectorId": call["connectorId"], **call["csChargingProfiles"]}
        for call in station.calls("SetChargingProfile")[since:]
    ]


def summary(profile: dict[str, Any]) -> tuple[Any, ...]:
    """(purpose, connectorId, unit, limit, numberPhases, stackLevel, transactionId)"""
    schedule = profile["chargingSchedule"]
    period = schedule["chargingSchedulePeriod"][0]
    return (
        profile["chargingProfilePurpose"],
        profile["connectorId"],
        schedule["chargingRateUnit"],
        period["limit"],
        period.get("numberPhases"),
        profile["stackLevel"],
        profile.get("transactionId"),
    )


Prepare = Callable[[SimulatedChargePoint], Awaitable[None]]


async def nothing(station: SimulatedChargePoint) -> None:
    return None


async def meter(station: SimulatedChargePoint) -> None:
    await station.send_meter_values(1, 1)


async def charging(station: SimulatedChargePoint) -> None:
    await station.start_transaction(1)
    await station.send_meter_values(1, 1)


@dataclass
class Case:
    options: SimulatorOptions
    limit_w: float
    # summaries of the profiles sent for the limit, in order; "TX" stands for
    # the running transaction's id
    expected: list[tuple[Any, ...]]
    connector_id: int = 1
    prepare: Prepare = nothing
    settings: dict[str, Any] = field(default_factory=dict)
    limit_a: float | None = None  # ChargingLimit…__A, where A was sent
    boot: bool = True


def quirk(**options: Any) -> SimulatorOptions:
    return SimulatorOptions(meter_interval=0, **options)


CASES: dict[str, Case] = {
    # 1. Only Current: A = W / (V x phases) from measured 230.1 V on 3 phases.
    "current_only": Case(
        quirk(rate_units="Current", accepted_units={"A"}),
        11000,
        [("TxDefaultProfile", 1, "A", 15.9, 3, 8, None)],
        prepare=meter,
        limit_a=15.9,
    ),
    # 1. Only Current, a single-phase car: one phase carries current.
    "current_only_one_phase": Case(
        quirk(rate_units="Current", accepted_units={"A"}, phases=1),
        7360,
        [("TxDefaultProfile", 1, "A", 31.9, 1, 8, None)],
        prepare=meter,
        limit_a=31.9,
    ),
    # 1. No ChargingScheduleAllowedChargingRateUnit at all, no meter values:
    # A, from OCPP_VOLTAGE and OCPP_PHASES.
    "no_unit_key": Case(
        quirk(rate_units=None, accepted_units={"A"}),
        11000,
        [("TxDefaultProfile", 1, "A", 15.9, 3, 8, None)],
        limit_a=15.9,
    ),
    "no_unit_key_settings": Case(
        quirk(rate_units=None, accepted_units={"A"}, report_electrical=False, voltage=230.0),
        3680,
        [("TxDefaultProfile", 1, "A", 16, 1, 8, None)],
        settings={"ocpp_voltage": 230.0, "ocpp_phases": 1},
        prepare=meter,
        limit_a=16,
    ),
    # 1. Lists Power, yet refuses W: the same limit follows in A.
    "lists_power_takes_current": Case(
        quirk(rate_units="Current,Power", accepted_units={"A"}),
        11000,
        [
            ("TxDefaultProfile", 1, "W", 11000, None, 8, None),
            ("TxDefaultProfile", 1, "A", 15.9, 3, 8, None),
        ],
        prepare=meter,
        limit_a=15.9,
    ),
    # 2. Lowercase "power".
    "lowercase_power": Case(
        quirk(rate_units="power", accepted_units={"W"}),
        11000,
        [("TxDefaultProfile", 1, "W", 11000, None, 8, None)],
    ),
    # 3. EVBox: rejects ChargePointMaxProfile; a TxDefaultProfile on connector 0 follows.
    "rejects_charge_point_max": Case(
        quirk(rejected_purposes={"ChargePointMaxProfile"}),
        7000,
        [
            ("ChargePointMaxProfile", 0, "W", 7000, None, 8, None),
            ("TxDefaultProfile", 0, "W", 7000, None, 8, None),
        ],
        connector_id=0,
    ),
    # 4. ABB: ChargeProfileMaxStackLevel 0, higher levels rejected.
    "max_stack_level_0": Case(
        quirk(max_stack_level=0),
        11000,
        [("TxDefaultProfile", 1, "W", 11000, None, 0, None)],
    ),
    # 5. Ignores a TxDefaultProfile while a transaction runs; takes a TxProfile.
    "ignores_tx_default_in_transaction": Case(
        quirk(ignores_tx_default_in_transaction=True),
        6000,
        [
            ("TxProfile", 1, "W", 6000, None, 8, "TX"),
            ("TxDefaultProfile", 1, "W", 6000, None, 8, None),
        ],
        prepare=charging,
    ),
    # 6. Reconnects without a BootNotification: Boot and Status are triggered.
    "no_boot_on_reconnect": Case(
        quirk(),
        11000,
        [("TxDefaultProfile", 1, "W", 11000, None, 8, None)],
        boot=False,
    ),
    # 6. ... and a station that cannot be triggered still gets the limit.
    "no_boot_and_no_trigger": Case(
        quirk(call_errors={"TriggerMessage": "NotImplemented"}),
        11000,
        [("TxDefaultProfile", 1, "W", 11000, None, 8, None)],
        boot=False,
    ),
    # 7. Energy in kWh (the glitch to 0 is in its own test below).
    "energy_in_kwh": Case(
        quirk(energy_unit="kWh"),
        11000,
        [("TxDefaultProfile", 1, "W", 11000, None, 8, None)],
        prepare=meter,
    ),
    # 8. CALLERROR NotSupported for ChargePointMaxProfile; TxDefaultProfile follows.
    "charge_point_max_not_supported": Case(
        quirk(purpose_call_errors={"ChargePointMaxProfile": "NotSupported"}),
        7000,
        [("TxDefaultProfile", 0, "W", 7000, None, 8, None)],  # the CALLERROR'd one is not kept
        connector_id=0,
    ),
}


def expected_summaries(case: Case, station: SimulatedChargePoint) -> list[tuple[Any, ...]]:
    return [
        tuple(station.transaction_id if item == "TX" else item for item in summary_)
        for summary_ in case.expected
    ]


@pytest.mark.parametrize("case_id", list(CASES))
async def test_the_limit_ends_up_in_force(
    mosquitto: Mosquitto, probe: Probe, name: str, case_id: str, start_station: StartStation
) -> None:
    case = CASES[case_id]
    connector_id = case.connector_id
    target = 1 if connector_id == 0 else connector_id  # where the power flows
    settings = connector_settings(name, mosquitto.port, **case.settings)

    probe.map(
        sensors=[STATUS, limit_key(connector_id, "W"), limit_key(connector_id, "A")],
        actuators=[actuator(connector_id)],
    )
    async with running_connector(settings) as bridge:
        async with start_station(bridge, CP, case.options, boot=case.boot) as station:
            await case.prepare(station)
            probe.command(probe.actuator_topic(actuator(connector_id)), case.limit_w)
            assert await probe.value(STATUS) == "Accepted"
            assert await probe.value(limit_key(connector_id, "W")) == case.limit_w
            if case.limit_a is not None:
                assert await probe.value(limit_key(connector_id, "A")) == case.limit_a
            accepted = [
                summary(p)
                for p in sent_profiles(station)
                if p["chargingProfileId"] in station.profiles
            ]
            sent = [summary(p) for p in sent_profiles(station)]
            for expected in expected_summaries(case, station):
                assert expected in sent
            assert accepted, sent
            await eventually(lambda: in_force(station, case.limit_w, target))

            # The station reboots and forgets its profiles: the limit comes back.
            station.forget_profiles()
            await station.boot()
            await eventually(lambda: in_force(station, case.limit_w, target))

    # The connector restarts: the limit comes back from the broker.
    probe.clear()
    async with running_connector(settings) as bridge:
        async with start_station(bridge, CP, case.options) as station:
            await eventually(lambda: in_force(station, case.limit_w, target))
            assert await probe.value(STATUS) == "Accepted"
            assert await probe.value(limit_key(connector_id, "W")) == case.limit_w


async def test_a_station_that_refuses_every_profile_is_reported_truthfully(
    probe: Probe,
    start_connector: StartConnector,
    start_station: StartStation,
) -> None:
    """8. CALLERROR NotSupported for every SetChargingProfile: the status says so,
    no ChargingLimit is claimed, and the limit reaches the station once it can."""
    refusing = quirk(call_errors={"SetChargingProfile": "NotSupported"})

    probe.map(sensors=[STATUS, limit_key(1, "W")], actuators=[actuator(1)])
    async with start_connector() as bridge:
        async with start_station(bridge, CP, refusing) as station:
            probe.command(probe.actuator_topic(actuator(1)), 5000)
            assert await probe.value(STATUS) == "CallError:NotSupported"
            await probe.wait_for_log(CP, "SetChargingProfile", "CallError:NotSupported")
            assert probe.received(probe.value_topic(limit_key(1, "W"))) == []
            assert station.limit_w(1) is None
        # After a firmware update the station accepts profiles: the limit was kept.
        async with start_station(bridge, CP, quirk()) as station:
            await eventually(lambda: in_force(station, 5000))
            assert await probe.value(limit_key(1, "W")) == 5000


async def test_a_forced_stack_level_above_the_station_maximum_is_not_claimed(
    mosquitto: Mosquitto, probe: Probe, name: str, start_station: StartStation
) -> None:
    settings = connector_settings(name, mosquitto.port, ocpp_stack_level=5)

    probe.map(sensors=[STATUS, limit_key(1, "W")], actuators=[actuator(1)])
    async with running_connector(settings) as bridge:
        async with start_station(bridge, CP, quirk(max_stack_level=0)) as station:
            probe.command(probe.actuator_topic(actuator(1)), 5000)
            assert await probe.value(STATUS) == "Rejected"
            assert station.calls("SetChargingProfile")[-1]["csChargingProfiles"]["stackLevel"] == 5
            assert probe.received(probe.value_topic(limit_key(1, "W"))) == []


async def test_energy_in_kwh_with_a_glitch_to_zero(
    probe: Probe,
    start_connector: StartConnector,
    start_station: StartStation,
) -> None:
    """7. kWh is published as Wh; a glitch to 0 mid-session is dropped with a
    WARNING; after a new transaction the register may start lower again."""

    probe.map(sensors=[ENERGY])
    async with start_connector() as bridge:
        async with start_station(bridge, CP, quirk(energy_unit="kWh")) as station:
            await station.start_transaction(1)
            await station.send_meter_values(1, 3600)  # 11 kWh
            assert await probe.value(ENERGY) == 11000
            station.glitch_energy_once = True
            await station.send_meter_values(1, 3600)
            log = await probe.wait_for_log(CP, ENERGY, "dropped")
            assert log["level"] == 30
            await station.send_meter_values(1, 3600)
            assert await probe.value(ENERGY, lambda v: v != 11000) == 33000
            assert 0 not in [m["value"] for m in probe.received(probe.value_topic(ENERGY))]

            # A new session whose station reports the session energy: accepted.
            await station.stop_transaction()
            await station.start_transaction(1)
            station.energy_wh = 0
            await station.send_meter_values(1, 360)
            assert await probe.value(ENERGY, lambda v: v < 11000) == 1100


async def test_energy_check_can_be_turned_off(
    mosquitto: Mosquitto, probe: Probe, name: str, start_station: StartStation
) -> None:
    settings = connector_settings(name, mosquitto.port, ocpp_energy_monotonic=False)

    probe.map(sensors=[ENERGY])
    async with running_connector(settings) as bridge:
        async with start_station(bridge, CP) as station:
            await station.send_meter_values(1, 3600)
            assert await probe.value(ENERGY) == 11000
            station.glitch_energy_once = True
            await station.send_meter_values(1, 3600)
            assert await probe.value(ENERGY, lambda v: v != 11000) == 0


async def test_learning_the_station(
    mosquitto: Mosquitto, probe: Probe, name: str, start_station: StartStation
) -> None:
    """GetConfiguration on connect; keys left out of the full list are asked for by
    name; the metering settings are written once, then read back."""
    options = quirk(unlisted_config={"ChargingScheduleAllowedChargingRateUnit"})
    settings = connector_settings(
        name,
        mosquitto.port,
        ocpp_meter_values_sampled_data=("Energy.Active.Import.Register", "Power.Active.Import"),
        ocpp_meter_value_sample_interval=60,
    )
    sampled = f"{CP}__Configuration__MeterValuesSampledData"
    rate_units = f"{CP}__Configuration__ChargingScheduleAllowedChargingRateUnit"

    probe.map(sensors=[sampled, rate_units, f"{CP}__Configuration__HeartbeatInterval"])
    async with running_connector(settings) as bridge:
        async with start_station(bridge, CP, options) as station:
            assert await probe.value(f"{CP}__Configuration__HeartbeatInterval") == "300"
            assert await probe.value(rate_units) == "Current,Power"
            assert (
                await probe.value(sampled, lambda v: "Power" in v)
                == "Energy.Active.Import.Register,Power.Active.Import"
            )
            calls = station.calls("GetConfiguration")
            assert calls[0] == {}
            assert "ChargingScheduleAllowedChargingRateUnit" in calls[1]["key"]
            changes = station.calls("ChangeConfiguration")
            assert changes == [
                {
                    "key": "MeterValuesSampledData",
                    "value": "Energy.Active.Import.Register,Power.Active.Import",
                },
                {"key": "MeterValueSampleInterval", "value": "60"},
            ]
            assert station.config["MeterValueSampleInterval"] == ("60", False)
            # The next boot finds them as wanted and writes nothing.
            await station.boot()
            await eventually(lambda: len(station.calls("GetConfiguration")) >= 4)
            await eventually(lambda: bridge.central.stations[CP].learned.is_set())  # type: ignore[union-attr]
            assert len(station.calls("ChangeConfiguration")) == 2


async def test_a_station_that_does_not_boot_is_asked_to(
    probe: Probe,
    start_connector: StartConnector,
    start_station: StartStation,
) -> None:
    probe.map(sensors=[f"{CP}__StatusNotification__1__status"])
    async with start_connector() as bridge:
        async with start_station(bridge, CP, quirk(), boot=False) as station:
            await eventually(lambda: len(station.calls("TriggerMessage")) == 2)
            assert station.calls("TriggerMessage") == [
                {"requestedMessage": "BootNotification"},
                {"requestedMessage": "StatusNotification"},
            ]
            assert await probe.value(f"{CP}__StatusNotification__1__status") == "Available"
            await eventually(lambda: station.calls("GetConfiguration") != [])


async def test_clearing_the_limit(
    probe: Probe,
    name: str,
    start_connector: StartConnector,
    start_station: StartStation,
) -> None:
    state_topic = f"{name}/state/charging_limits/{CP}"

    probe.map(
        sensors=[CLEAR_STATUS, limit_key(1, "W"), limit_key(1, "A")],
        actuators=[actuator(1)],
    )
    async with start_connector() as bridge:
        async with start_station(bridge, CP, quirk()) as station:
            await station.start_transaction(1)
            probe.command(probe.actuator_topic(actuator(1)), 4000)
            await eventually(lambda: in_force(station, 4000))
            assert await probe.wait_for(state_topic) == {"1": 4000}
            probe.command(probe.actuator_topic(actuator(1)), None)
            assert await probe.value(CLEAR_STATUS) == "Accepted"
            assert await probe.value(limit_key(1, "W"), lambda v: v is None) is None
            assert await probe.value(limit_key(1, "A"), lambda v: v is None) is None
            assert station.calls("ClearChargingProfile") == [{"id": 7001}, {"id": 8001}]
            assert station.limit_w(1) is None
            # Nothing is kept on the broker for a restart to re-apply.
            await eventually(
                lambda: any(p == b"" for t, p, _ in probe.messages if t == state_topic)
            )


async def test_a_limit_set_while_away_survives_a_restart(
    mosquitto: Mosquitto, probe: Probe, name: str, start_station: StartStation
) -> None:
    settings = connector_settings(name, mosquitto.port)

    probe.map(actuators=[actuator(1)])
    async with running_connector(settings):
        probe.command(probe.actuator_topic(actuator(1)), 3000)
        await probe.wait_for_log(CP, "not connected", "kept")
    async with running_connector(settings) as bridge:
        await probe.wait_for_log(CP, "restored")
        async with start_station(bridge, CP, quirk()) as station:
            await eventually(lambda: in_force(station, 3000))


async def test_a_running_transaction_seen_after_a_restart_gets_its_tx_profile(
    mosquitto: Mosquitto, probe: Probe, name: str, start_station: StartStation
) -> None:
    """5 across a restart of the connector: the station keeps charging in a session
    the new run never saw start, and ignores the TxDefaultProfile during it."""
    options = quirk(ignores_tx_default_in_transaction=True)
    settings = connector_settings(name, mosquitto.port)

    probe.map(actuators=[actuator(1)])
    async with running_connector(settings) as bridge:
        probe.command(probe.actuator_topic(actuator(1)), 6000)
        await probe.wait_for_log(CP, "kept")
    async with running_connector(settings) as bridge:
        async with start_station(bridge, CP, options, boot=False) as station:
            station.transaction_id, station.transaction_connector = 4242, 1
            await station.boot()
            await eventually(lambda: station.calls("SetChargingProfile") != [])
            assert station.limit_w(1) is None  # the TxDefaultProfile waits
            await station.send_meter_values(1, 1)
            await eventually(lambda: in_force(station, 6000))
            assert station.profile("TxProfile", 1, transactionId=4242) is not None


async def test_strategies(
    mosquitto: Mosquitto, probe: Probe, name: str, start_station: StartStation
) -> None:
    """tx_default sends only TxDefaultProfiles (so a station with quirk 5 keeps
    charging unlimited in the running session); charge_point_max refuses a
    connector key with an ERROR."""

    probe.map(sensors=[STATUS], actuators=[actuator(0), actuator(1)])
    options = quirk(ignores_tx_default_in_transaction=True)
    settings = connector_settings(name, mosquitto.port, ocpp_charging_profile_strategy="tx_default")
    async with running_connector(settings) as bridge:
        async with start_station(bridge, CP, options) as station:
            await station.start_transaction(1)
            probe.command(probe.actuator_topic(actuator(1)), 6000)
            assert await probe.value(STATUS) == "Accepted"
            purposes = {
                c["csChargingProfiles"]["chargingProfilePurpose"]
                for c in station.calls("SetChargingProfile")
            }
            assert purposes == {"TxDefaultProfile"}
            assert station.limit_w(1) is None

    probe.clear()
    settings = connector_settings(
        name, mosquitto.port, ocpp_charging_profile_strategy="charge_point_max"
    )
    async with running_connector(settings) as bridge:
        async with start_station(bridge, CP, quirk()) as station:
            probe.command(probe.actuator_topic(actuator(1)), 6000)
            log = await probe.wait_for_log(actuator(1), "charge_point_max")
            assert log["level"] == 40
            probe.command(probe.actuator_topic(actuator(0)), 9000)
            await eventually(lambda: in_force(station, 9000))
            # The connector-1 limit kept from the first run cannot be applied
            # under this strategy: skipped with a WARNING, not sent station-wide.
            await probe.wait_for_log(CP, "connector 1", "charge_point_max")
            sent = station.calls("SetChargingProfile")
            assert [
                (c["connectorId"], c["csChargingProfiles"]["chargingProfilePurpose"]) for c in sent
            ] == [(0, "ChargePointMaxProfile")]


async def test_below_six_amps_is_sent_with_a_warning(
    probe: Probe,
    start_connector: StartConnector,
    start_station: StartStation,
) -> None:
    probe.map(sensors=[limit_key(1, "A")], actuators=[actuator(1)])
    async with start_connector() as bridge:
        options = quirk(rate_units="Current", accepted_units={"A"}, report_electrical=False)
        async with start_station(bridge, CP, options):
            probe.command(probe.actuator_topic(actuator(1)), 2000)
            assert await probe.value(limit_key(1, "A")) == 2.8
            log = await probe.wait_for_log(CP, "2.8 A", "below 6")
            assert log["level"] == 30


async def test_a_burst_of_values_ends_with_the_last(
    probe: Probe,
    start_connector: StartConnector,
    start_station: StartStation,
) -> None:
    """An energy manager sending faster than the station answers: the newest
    value ends up in force, and overtaken ones are not queued up."""

    probe.map(sensors=[limit_key(1, "W")], actuators=[actuator(1)])
    async with start_connector() as bridge:
        async with start_station(bridge, CP, quirk()) as station:
            await eventually(lambda: station.calls("GetConfiguration") != [])
            for watts in range(1000, 11000, 500):
                probe.command(probe.actuator_topic(actuator(1)), watts)
            await eventually(lambda: in_force(station, 10500))
            assert await probe.value(limit_key(1, "W"), lambda v: v == 10500) == 10500
            assert len(station.calls("SetChargingProfile")) <= 20
