"""Site budgets end to end (README "Sharing a supply"): a real Mosquitto, the
connector, and simulated 1.6 and 2.0.1 stations, some taking W and some only A.

Every test samples the limits in force at the stations at every profile one
of them accepts, and fails if the sum over the connectors with a session ever
exceeds the group's limit."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus
from websockets.typing import Subprotocol

from connector.core import underuse
from connector.core.allocation import Charging, allocate
from connector.core.groups import parse_groups
from connector.settings import Settings
from connector.simulator.core import SimulatorOptions
from connector.simulator.v16 import SimulatedChargePoint
from connector.stations.charging_control import ChargingControl
from connector.stations.site_budgets import ROTATE_S, SiteBudgets
from connector.tests.helpers import Mosquitto, Probe, StartConnector, StartStation, eventually
from connector.tests.test_instances import Site, ports_open

GROUP_LIMIT = "@garage__execute_set_group_limit"
FUSE = 22080.0  # 32 A on three phases at 230 V


class Sampler:
    """The sum of the limits in force over the group's sessions, at every
    accepted profile; `allowed` is the group's limit (the larger of the old
    and the new one while a decrease is under way)."""

    def __init__(self, allowed: float) -> None:
        self.allowed = allowed
        self.stations: list[Any] = []
        self.samples = 0
        self.violations: list[tuple[float, float]] = []

    def total(self) -> float:
        total = 0.0
        for station in self.stations:
            if station.transaction_id is not None:
                limit = station.limit_w(1)
                total += station.options.max_power_w if limit is None else limit
        return total

    def __call__(self, station: Any) -> None:
        self.samples += 1
        total = self.total()
        if total > self.allowed + 1e-6:
            self.violations.append((total, self.allowed))


def options(sampler: Sampler, amperes_only: bool, version: str) -> SimulatorOptions:
    extra: dict[str, Any] = {}
    if amperes_only:
        rate = "Current" if version == "1.6" else "A"
        extra = {"rate_units": rate, "accepted_units": {"A"}}
    return SimulatorOptions(
        meter_interval=0, voltage=230.0, max_power_w=22080.0, on_profile=sampler, **extra
    )


STATIONS = [
    ("CP1", "1.6", False),
    ("CP2", "2.0.1", False),
    ("CP3", "1.6", True),
    ("CP4", "2.0.1", True),
]


@asynccontextmanager
async def garage(
    start_connector: StartConnector,
    start_station: StartStation,
    sampler: Sampler,
    stations: list[tuple[str, str, bool]],
) -> AsyncIterator[dict[str, Any]]:
    doc = {"garage": {"max_w": FUSE, "members": [cp for cp, _, _ in stations]}}
    async with AsyncExitStack() as stack:
        bridge = await stack.enter_async_context(
            start_connector(ocpp_groups=parse_groups(json.dumps(doc)), ocpp_voltage=230.0)
        )
        running = {}
        for cp_id, version, amperes in stations:
            running[cp_id] = await stack.enter_async_context(
                start_station(bridge, cp_id, options(sampler, amperes, version), version=version)
            )
            sampler.stations.append(running[cp_id])
        yield running


async def limits_become(stations: dict[str, Any], expected: dict[str, float]) -> None:
    def reached() -> bool:
        limits = {cp: stations[cp].limit_w(1) for cp in expected}
        return all(
            limits[cp] is not None and abs(limits[cp] - w) < 0.5 for cp, w in expected.items()
        )

    try:
        await eventually(reached, timeout=15)
    except AssertionError:
        got = {cp: stations[cp].limit_w(1) for cp in expected}
        raise AssertionError(f"limits {got}, expected {expected}") from None


@pytest.mark.broker
@pytest.mark.within(120)
async def test_a_group_shares_its_limit_and_the_sum_never_exceeds_it(
    probe: Probe, start_connector: StartConnector, start_station: StartStation
) -> None:
    sampler = Sampler(FUSE)
    probe.map(
        sensors=[
            "@garage__GroupLimit__W",
            "@garage__Allocated__W",
            "@garage__Allocation__CP1__1__W",
        ],
        actuators=[GROUP_LIMIT],
    )
    async with garage(start_connector, start_station, sampler, STATIONS) as cps:
        # Every member keeps a default profile: max_w over 4 connectors.
        await limits_become(cps, dict.fromkeys(cps, 5520))
        # Sessions start one after the other; each shares equally.
        await cps["CP1"].start_transaction(1)
        await limits_become(cps, {"CP1": 22080})
        await cps["CP2"].start_transaction(1)
        await limits_become(cps, {"CP1": 11040, "CP2": 11040})
        await cps["CP3"].start_transaction(1)
        # 7360 W each, rounded down to 0.1 A: 10.6 A, 7314 W.
        await limits_become(cps, {"CP1": 7314, "CP2": 7314, "CP3": 7314})
        await cps["CP4"].start_transaction(1)
        await limits_become(cps, dict.fromkeys(cps, 5520))
        assert await probe.value("@garage__Allocated__W", lambda v: v == 22080) == 22080
        assert await probe.value("@garage__Allocation__CP1__1__W", lambda v: v == 5520)
        # The energy manager lowers the limit: two sessions keep 6 A or more,
        # the two that started last are paused. (The two left would get 5934 W:
        # less than 1 A more than they have, not worth a profile.)
        probe.command(probe.actuator_topic(GROUP_LIMIT), 12000)
        await limits_become(cps, {"CP1": 5520, "CP2": 5520, "CP3": 0, "CP4": 0})
        assert await probe.value("@garage__GroupLimit__W", lambda v: v == 12000) == 12000
        sampler.allowed = 12000
        # A session ends: the next paused one takes its turn.
        await cps["CP1"].stop_transaction()
        await limits_become(cps, {"CP2": 5520, "CP3": 5934, "CP4": 0})
        # Back to max_w: every session shares it again.
        probe.command(probe.actuator_topic(GROUP_LIMIT), None)
        sampler.allowed = FUSE
        await limits_become(cps, {"CP2": 7314, "CP3": 7314, "CP4": 7314})
        # Above max_w is clamped to it.
        probe.command(probe.actuator_topic(GROUP_LIMIT), 99999)
        await probe.wait_for_log("", "above its max_w")
    assert sampler.samples > 20
    assert sampler.violations == []


@pytest.mark.broker
@pytest.mark.within(90)
async def test_a_station_that_refuses_a_decrease_counts_at_its_old_limit(
    probe: Probe, start_connector: StartConnector, start_station: StartStation
) -> None:
    sampler = Sampler(FUSE)
    probe.map(actuators=[GROUP_LIMIT])
    stations = [("CP1", "1.6", False), ("CP2", "2.0.1", False), ("CP3", "1.6", False)]
    async with garage(start_connector, start_station, sampler, stations) as cps:
        await limits_become(cps, dict.fromkeys(cps, 7360))  # 22080 / 3 members
        await cps["CP1"].start_transaction(1)
        await cps["CP2"].start_transaction(1)
        await limits_become(cps, {"CP1": 11040, "CP2": 11040})
        # CP2 refuses every profile from now on; the limit goes down.
        cps["CP2"].options.responses["SetChargingProfile"] = "Rejected"
        probe.command(probe.actuator_topic(GROUP_LIMIT), 16000)
        await limits_become(cps, {"CP1": 7935})
        await probe.wait_for_log("CP2", "did not accept a decrease")
        # A third session: CP2 counts at its old 11040 W, so CP1 and CP3 share
        # the 4960 W left: CP1 (the older session) takes it, CP3 waits.
        await cps["CP3"].start_transaction(1)
        await limits_become(cps, {"CP1": 4899, "CP2": 11040, "CP3": 0})
        # CP2 accepts again: the next rebalance (here: the limit sent again) sends it all.
        del cps["CP2"].options.responses["SetChargingProfile"]
        probe.command(probe.actuator_topic(GROUP_LIMIT), 16000)
        # (CP1 would gain less than 1 A: not worth a profile.)
        await limits_become(cps, {"CP1": 4899, "CP2": 5313, "CP3": 5313})
    # The sum exceeded the new limit only by what CP2 refused to give back.
    assert all(total <= FUSE for total, _ in sampler.violations)


@pytest.mark.broker
@pytest.mark.within(90)
async def test_a_disconnected_station_counts_at_its_last_limit(
    probe: Probe, start_connector: StartConnector, start_station: StartStation
) -> None:
    sampler = Sampler(FUSE)
    stations = [("CP1", "1.6", False), ("CP2", "2.0.1", True)]
    doc = {"garage": {"max_w": FUSE, "members": ["CP1", "CP2"]}}
    async with start_connector(
        ocpp_groups=parse_groups(json.dumps(doc)), ocpp_voltage=230.0, mqtt_direct_topics=True
    ) as bridge:
        async with start_station(bridge, "CP1", options(sampler, False, "1.6")) as cp1:
            sampler.stations.append(cp1)
            async with start_station(
                bridge, "CP2", options(sampler, True, "2.0.1"), version="2.0.1"
            ) as cp2:
                sampler.stations.append(cp2)
                await cp1.start_transaction(1)
                await cp2.start_transaction(1)
                await limits_become({"CP1": cp1, "CP2": cp2}, {"CP1": 11040, "CP2": 11040})
            # CP2 is gone with its session running: it counts at 11040 W.
            sampler.stations.remove(cp2)
            await asyncio.sleep(2.5)
            assert cp1.limit_w(1) == 11040
            # Its session ends (it comes back and boots): CP1 gets it all.
            async with start_station(
                bridge, "CP2", options(sampler, True, "2.0.1"), version="2.0.1"
            ):
                await limits_become({"CP1": cp1}, {"CP1": 22080})
            # The group's limit on its direct topic, as Home Assistant would send it.
            direct = f"{probe.name}/direct/@garage"
            probe.publish(f"{direct}/execute_set_group_limit/set", b"7400")
            await limits_become({"CP1": cp1}, {"CP1": 7383})  # 10.7 A
            kept = await probe.wait_for(f"{direct}/GroupLimit/W", lambda m: m["value"] == 7400)
            assert kept["value"] == 7400
    assert stations and sampler.violations == []


@pytest.mark.broker
async def test_bad_group_commands_are_errors_and_an_at_id_is_refused(
    probe: Probe, start_connector: StartConnector, start_station: StartStation
) -> None:
    sampler = Sampler(FUSE)
    probe.map(actuators=[GROUP_LIMIT, "@nowhere__execute_set_group_limit"])
    doc = {"garage": {"max_w": FUSE, "members": ["CP1"]}}
    async with start_connector(ocpp_groups=parse_groups(json.dumps(doc))) as bridge:
        async with start_station(bridge, "CP1", options(sampler, False, "1.6")) as cp1:
            sampler.stations.append(cp1)
            await cp1.start_transaction(1)
            await limits_become({"CP1": cp1}, {"CP1": 22080})
            probe.command(probe.actuator_topic("@nowhere__execute_set_group_limit"), 1000)
            await probe.wait_for_log("no group 'nowhere'")
            bad: list[Any] = ["lots", -5, {"x": 1}, [1], True]
            for value in bad:
                probe.command(probe.actuator_topic(GROUP_LIMIT), value)

            def errors() -> int:
                """ERRORs about invalid commands, those a flood summary counts too."""
                count = 0
                for message in probe.received(f"{probe.name}/logs"):
                    if message["level"] != logging.ERROR or "invalid command" not in message["msg"]:
                        continue
                    words = message["msg"].split()
                    count += int(words[1]) if words[0] == "suppressed" else 1
                return count

            await eventually(lambda: errors() == len(bad) + 1)
            # The group goes on: a good value after the bad ones is applied.
            probe.command(probe.actuator_topic(GROUP_LIMIT), 11040)
            await limits_become({"CP1": cp1}, {"CP1": 11040})
        assert bridge.central is not None
        url = f"ws://127.0.0.1:{bridge.central.port}/ocpp/%40garage"
        with pytest.raises(InvalidStatus) as refused:
            async with connect(url, subprotocols=[Subprotocol("ocpp1.6")]):
                pass
        assert refused.value.response.status_code == 400
    assert sampler.violations == []


@pytest.mark.broker
async def test_home_assistant_gets_one_device_per_group(
    probe: Probe, start_connector: StartConnector, start_station: StartStation
) -> None:
    sampler = Sampler(FUSE)
    prefix = f"{probe.name}/ha"
    doc = {"garage": {"max_w": FUSE, "members": ["CP1"]}}
    async with start_connector(
        ocpp_groups=parse_groups(json.dumps(doc)),
        homeassistant_discovery=True,
        homeassistant_discovery_prefix=prefix,
    ) as bridge:
        async with start_station(bridge, "CP1", options(sampler, False, "1.6")) as cp1:
            sampler.stations.append(cp1)
            number = await probe.wait_for(f"{prefix}/number/ocpp_group_garage/group_limit/config")
            assert number["max"] == FUSE and number["device"]["name"] == "Group garage"
            for sensor in ("grouplimit", "measuredpower", "allocated"):
                await probe.wait_for(f"{prefix}/sensor/ocpp_group_garage/{sensor}/config")
            # No station device for the group's keys.
            assert not [t for t, _, _ in probe.messages if "ocpp__garage" in t]
            # The number's command topic sets the group's limit.
            await cp1.start_transaction(1)
            await limits_become({"CP1": cp1}, {"CP1": 22080})
            probe.publish(number["command_topic"], b"9000")
            await limits_become({"CP1": cp1}, {"CP1": 8970})
            state = await probe.wait_for(number["state_topic"], lambda m: m["value"] == 9000)
            assert state["value"] == 9000
    assert sampler.violations == []


def test_paused_and_charging_connectors_swap_turns_every_15_minutes() -> None:
    doc = {"garage": {"max_w": 10000, "members": ["A", "B", "C"]}}
    groups = parse_groups(json.dumps(doc))
    settings = Settings(ocpp_groups=groups)
    site = SiteBudgets(
        groups,
        settings,
        ChargingControl(settings, print, print),
        print,
        print,
        lambda _: None,
        print,
    )
    site.turns = {("A", 1): 1.0, ("B", 1): 2.0, ("C", 1): 3.0}
    charging = {"garage": [Charging(c, 3, t) for c, t in site.turns.items()]}
    site.allocation = allocate(groups, {"garage": 10000}, charging)
    assert site.allocation[("C", 1)] == 0  # the latest waits
    site._rotate(site._rotated_at + ROTATE_S - 1)
    assert site._moved == {}  # not yet
    site._rotate(site._rotated_at + ROTATE_S + 1)
    # The two charging go to the back of the queue (a wall-clock time now).
    assert set(site._moved) == {("A", 1), ("B", 1)}
    assert all(moved > 3.0 for moved in site._moved.values())
    charging = {
        "garage": [Charging(c, 3, max(t, site._moved.get(c, 0))) for c, t in site.turns.items()]
    }
    swapped = allocate(groups, {"garage": 10000}, charging)
    assert swapped[("C", 1)] > 0 and sorted(swapped.values())[0] == 0


def number_phases(station: Any) -> int | None:
    """numberPhases of the TxProfile the station holds."""
    for entry in station.profiles.values():
        profile = entry.get("profile", entry)
        if profile["chargingProfilePurpose"] == "TxProfile":
            schedule = profile["chargingSchedule"]
            schedule = schedule[0] if isinstance(schedule, list) else schedule
            return schedule["chargingSchedulePeriod"][0].get("numberPhases")
    return None


@pytest.mark.broker
@pytest.mark.within(90)
async def test_below_the_three_phase_minimum_a_switchable_station_charges_on_one_phase(
    probe: Probe, start_connector: StartConnector, start_station: StartStation
) -> None:
    sampler = Sampler(5600)
    probe.map(actuators=[GROUP_LIMIT])
    doc = {"garage": {"max_w": FUSE, "members": ["CP1", "CP2"]}}
    switches = {
        "1.6": {"ConnectorSwitch3to1PhaseSupported": "true"},
        "2.0.1": {"SmartChargingCtrlr.Phases3to1": "true"},
    }
    async with start_connector(
        ocpp_groups=parse_groups(json.dumps(doc)), ocpp_voltage=230.0
    ) as bridge:
        cps = {}
        async with AsyncExitStack() as stack:
            for cp_id, version in (("CP1", "1.6"), ("CP2", "2.0.1")):
                station_options = options(sampler, False, version)
                station_options.extra_config.update(switches[version])
                cps[cp_id] = await stack.enter_async_context(
                    start_station(bridge, cp_id, station_options, version=version)
                )
                sampler.stations.append(cps[cp_id])
            probe.command(probe.actuator_topic(GROUP_LIMIT), 5600)
            await probe.wait_for_log("group garage: limit 5600 W")
            await cps["CP1"].start_transaction(1)
            await limits_become(cps, {"CP1": 5589})  # alone: three phases, 8.1 A
            assert number_phases(cps["CP1"]) == 3
            await cps["CP2"].start_transaction(1)
            # 2,800 W each: below 4,140 W, so one phase each (12.1 A), not a pause.
            await limits_become(cps, {"CP1": 2783, "CP2": 2783})
            assert number_phases(cps["CP1"]) == number_phases(cps["CP2"]) == 1
            await probe.wait_for_log("connector 1 on 1 phase(s)")
            # More power within 5 minutes of the switch: they stay on one phase,
            # up to 32 A on it.
            sampler.allowed = FUSE
            probe.command(probe.actuator_topic(GROUP_LIMIT), None)
            await limits_become(cps, {"CP1": 7360, "CP2": 7360})
            assert number_phases(cps["CP1"]) == number_phases(cps["CP2"]) == 1
    assert sampler.violations == []


@pytest.mark.broker
@pytest.mark.within(90)
async def test_power_a_full_car_leaves_unused_goes_to_the_others(
    probe: Probe,
    start_connector: StartConnector,
    start_station: StartStation,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # 60 s in the README; 2 s here, so the test waits for it.
    monkeypatch.setattr(underuse, "HOLD_S", 2.0)
    sampler = Sampler(FUSE)
    stations = [("CP1", "1.6", False), ("CP2", "1.6", False)]
    async with garage(start_connector, start_station, sampler, stations) as cps:
        await cps["CP1"].start_transaction(1)
        await cps["CP2"].start_transaction(1)
        await limits_become(cps, {"CP1": 11040, "CP2": 11040})
        cps["CP2"].options.car_draw_w = 2000.0  # full: it takes 2 kW whatever its limit

        async def meter_values() -> None:
            while True:
                for station in cps.values():
                    await station.send_meter_values(1)
                await asyncio.sleep(0.5)

        reporting = asyncio.create_task(meter_values())
        try:
            # Its draw plus 500 W, but at least its minimum (6 A); the rest to CP1.
            await limits_become(cps, {"CP1": 17940, "CP2": 4140})
            # It draws all it is given again: its share comes back.
            cps["CP2"].options.car_draw_w = None
            await limits_become(cps, {"CP1": 11040, "CP2": 11040})
        finally:
            reporting.cancel()
    assert sampler.violations == []


@pytest.mark.broker
@pytest.mark.within(90)
async def test_a_nested_group_keeps_its_own_limit_inside_the_outer_one(
    probe: Probe, start_connector: StartConnector, start_station: StartStation
) -> None:
    """A sub-distribution board (6,900 W) behind the building's fuse (22,080 W)."""
    sampler = Sampler(FUSE)
    doc = {
        "site": {"max_w": FUSE, "members": ["CP1", "group:garage"]},
        "garage": {"max_w": 6900, "members": ["CP2", "CP3"]},
    }
    async with start_connector(ocpp_groups=parse_groups(json.dumps(doc))) as bridge:
        cps = {}
        async with AsyncExitStack() as stack:
            for cp_id, version in (("CP1", "1.6"), ("CP2", "2.0.1"), ("CP3", "1.6")):
                cps[cp_id] = await stack.enter_async_context(
                    start_station(bridge, cp_id, options(sampler, False, version), version=version)
                )
                sampler.stations.append(cps[cp_id])
            # Default profiles: each where it fits, in every group around it.
            await limits_become(cps, {"CP1": 7360, "CP2": 4140, "CP3": 0})
            for cp_id in cps:
                await cps[cp_id].start_transaction(1)
            # The garage takes what its fuse allows, its later session waits.
            await limits_become(cps, {"CP1": 15180, "CP2": 6900, "CP3": 0})
            garage_total = sum(cps[c].limit_w(1) for c in ("CP2", "CP3"))
            assert garage_total <= 6900
            await cps["CP2"].stop_transaction()
            await limits_become(cps, {"CP1": 15180, "CP3": 6900})
    assert sampler.violations == []


@asynccontextmanager
async def station_at(url: str, cp_id: str, station_options: SimulatorOptions) -> AsyncIterator[Any]:
    """A simulated 1.6 station connected to that URL (one instance, here)."""
    async with connect(url, subprotocols=[Subprotocol("ocpp1.6")]) as ws:
        station = SimulatedChargePoint(cp_id, ws, station_options)
        reader = asyncio.create_task(station.start())
        try:
            await station.boot()
            await station.send_all_status()
            yield station
        finally:
            reader.cancel()


@pytest.mark.broker
@pytest.mark.within(150)
async def test_three_instances_share_a_group_and_another_takes_over_when_its_leader_dies(
    mosquitto: Mosquitto, probe: Probe, name: str
) -> None:
    """The leader (instance 0) computes; each holder applies its station's part;
    killed, the leader's group is computed by instance 1 within 30 s."""
    sampler = Sampler(FUSE)
    probe.map(actuators=[GROUP_LIMIT])
    doc = {"garage": {"max_w": FUSE, "members": ["CP_A", "CP_B", "CP_C"]}}
    site = Site(mosquitto, name, {"OCPP_GROUPS": json.dumps(doc), "OCPP_VOLTAGE": "230"})
    site.start_all()
    try:
        await ports_open(site)
        async with AsyncExitStack() as stack:
            cps: dict[str, Any] = {}
            for instance, cp_id in enumerate(("CP_A", "CP_B", "CP_C")):
                station_options = options(sampler, False, "1.6")
                cps[cp_id] = await stack.enter_async_context(
                    station_at(site.url(cp_id, instance), cp_id, station_options)
                )
                sampler.stations.append(cps[cp_id])
            await limits_become(cps, dict.fromkeys(cps, 7360))  # defaults: 22080 / 3
            for station in cps.values():
                await station.start_transaction(1)
            await limits_become(cps, dict.fromkeys(cps, 7314))
            # The leader dies with CP_A: CP_A counts at its last limit, 7314 W.
            site.kill(0)
            killed_at = time.monotonic()
            sampler.allowed = FUSE
            probe.command(probe.actuator_topic(GROUP_LIMIT), 12000)
            # 12000 - 7314 left: CP_B (its session is older) gets it, CP_C waits.
            await limits_become({c: cps[c] for c in ("CP_B", "CP_C")}, {"CP_B": 4623, "CP_C": 0})
            assert time.monotonic() - killed_at < 30
            assert cps["CP_A"].limit_w(1) == 7314
    finally:
        site.stop()
    assert sampler.violations == []
