"""What real BEMCom and Home Assistant installations showed (issue 21), end to end.

Real Mosquitto, real WebSockets, simulated stations on the ocpp library.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from websockets.asyncio.client import connect

from connector.settings import parse_ocpp_config
from connector.tests.helpers import (
    WAIT,
    Mosquitto,
    Probe,
    StartConnector,
    StartStation,
    equal_to,
    eventually,
    station_url,
)

# Real Mosquitto (the Docker build runs only the tests without it).
pytestmark = pytest.mark.broker


def offered(probe: Probe, name: str) -> dict[str, Any]:
    messages = probe.received(f"{name}/available_datapoints")
    return messages[-1]["sensor"] if messages else {}


async def test_result_keys_are_offered_before_the_first_command(
    start_connector: StartConnector, start_station: StartStation, probe: Probe, name: str
) -> None:
    """BEMCom can map (and activate) a command's result keys before the first command."""
    expected = [
        "CPR__SetChargingProfile__status",
        "CPR__ChargingLimit__W",
        "CPR__ChargingLimit__1__W",
        "CPR__ChargingLimit__1__A",
        "CPR__TriggerMessage__status",
        "CPR__ClearChargingProfile__status",
        "CPR__DataTransfer__response__status",
        "CPR__CompositeSchedule__1__limit",
        "CPR__GetDiagnostics__fileName",
        "CPR__Reset__status",
    ]
    probe.map(sensors=["CPR__TriggerMessage__status"], actuators=["CPR__execute_trigger_message"])
    async with (
        start_connector(ocpp_config=parse_ocpp_config("all")) as bridge,
        start_station(bridge, "CPR") as station,
    ):
        await eventually(lambda: all(k in offered(probe, name) for k in expected))
        assert all(offered(probe, name)[k] is None for k in expected)
        # Mapped, it gets nothing until a command gives it a value.
        await asyncio.sleep(0.5)
        assert probe.received(probe.value_topic("CPR__TriggerMessage__status")) == []
        probe.command(probe.actuator_topic("CPR__execute_trigger_message"), "Heartbeat")
        await probe.value("CPR__TriggerMessage__status", equal_to("Accepted"))
        assert station.calls("TriggerMessage")


def equal_value(value: Any) -> Callable[[Any], bool]:
    return lambda message: bool(message["value"] == value)


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def meter(unique_id: str, moment: datetime, wh: int) -> str:
    return json.dumps(
        [
            2,
            unique_id,
            "MeterValues",
            {
                "connectorId": 1,
                "meterValue": [
                    {"timestamp": iso(moment), "sampledValue": [{"value": str(wh), "unit": "Wh"}]}
                ],
            },
        ]
    )


async def exchange(ws: Any, frame: str) -> None:
    unique_id = json.loads(frame)[1]
    await ws.send(frame)
    while True:
        answer = json.loads(await asyncio.wait_for(ws.recv(), WAIT))
        if answer[0] == 2:  # the connector's own calls: answered plainly
            await ws.send(json.dumps([3, answer[1], {"status": "Accepted"}]))
        elif answer[1] == unique_id:
            return


async def test_a_clock_that_is_far_off(
    start_connector: StartConnector, probe: Probe, caplog: pytest.LogCaptureFixture
) -> None:
    """BEMCom's message format says a value's timestamp is when the connector got
    it; the sample time is better while the station's clock is right. A sample
    time far ahead, or before the station's boot, is replaced by the time of
    receipt, with one WARNING per station."""
    key = "CPC__MeterValues__1__Energy.Active.Import.Register__Wh"
    probe.map(sensors=[key])
    now = datetime.now(UTC)
    async with (
        start_connector(ocpp_max_clock_skew=300) as bridge,
        connect(station_url(bridge, "CPC"), subprotocols=["ocpp1.6"]) as ws,  # type: ignore[list-item]
    ):
        await exchange(
            ws, '[2,"b","BootNotification",{"chargePointVendor":"V","chargePointModel":"M"}]'
        )
        right = now - timedelta(seconds=10)
        await exchange(ws, meter("m1", right, 100))
        assert (await probe.wait_for(probe.value_topic(key)))["timestamp"] == int(
            right.timestamp() * 1000
        )
        for number, moment in enumerate(
            (now + timedelta(hours=2), datetime(2001, 1, 1, tzinfo=UTC)), start=2
        ):
            received = time.time() * 1000
            await exchange(ws, meter(f"m{number}", moment, 100 + number))
            wh = 100 + number
            message = await probe.wait_for(probe.value_topic(key), equal_value(wh))
            assert received - 100 <= message["timestamp"] <= time.time() * 1000 + 100
        # Found off, it is not trusted again when its times come back into range.
        received = time.time() * 1000
        await exchange(ws, meter("m9", now, 200))
        message = await probe.wait_for(probe.value_topic(key), equal_value(200))
        assert message["timestamp"] >= received - 100
    warnings = [r for r in caplog.records if "its clock is off" in r.getMessage()]
    assert len(warnings) == 1 and warnings[0].levelno == logging.WARNING


def discovery(prefix: str) -> dict[str, Any]:
    return {"homeassistant_discovery": True, "homeassistant_discovery_prefix": prefix}


def retained_now(port: int, filters: list[str]) -> dict[str, bytes]:
    """What the broker keeps under `filters` now, as a fresh subscriber sees it."""
    watcher = Probe(port, f"watch-{uuid.uuid4().hex[:6]}")
    try:
        for topic_filter in filters:
            watcher.client.subscribe(topic_filter, qos=1)
        time.sleep(1.0)
        with watcher._lock:
            return {t: p for t, p, retained in watcher.messages if retained and p}
    finally:
        watcher.close()


@pytest.mark.within(90)
async def test_forget_works_from_what_the_broker_holds(
    start_connector: StartConnector,
    start_station: StartStation,
    probe: Probe,
    name: str,
    mosquitto: Mosquitto,
) -> None:
    """After a restart of the connector, forgetting a station that has not
    come back removes its discovery configurations and retained direct topics."""
    prefix = f"{name}/ha"
    filters = [f"{prefix}/+/ocpp_CPF/+/config", f"{name}/direct/CPF/#"]
    settings = {"homeassistant_discovery": True, "homeassistant_discovery_prefix": prefix}
    async with start_connector(**settings) as bridge, start_station(bridge, "CPF") as station:
        await station.send_meter_values(1)
        await eventually(lambda: len(retained_now(mosquitto.port, filters)) > 10, 20)
    kept = retained_now(mosquitto.port, filters)
    assert any("/config" in t for t in kept) and any("/direct/" in t for t in kept)
    async with start_connector(**settings) as bridge:
        probe.publish(f"{name}/direct/CPF/execute_forget_station/set", True)
        await probe.wait_for_log("CPF: forgotten")
        await asyncio.sleep(0.5)
        assert retained_now(mosquitto.port, filters) == {}
        # When it comes back, it is new: its device and topics are there again.
        async with start_station(bridge, "CPF") as station:
            await station.send_meter_values(1)
            await eventually(
                lambda: any("/config" in t for t in retained_now(mosquitto.port, filters)), 20
            )


@pytest.mark.within(60)
async def test_a_connected_station_that_is_forgotten_comes_back(
    start_connector: StartConnector, start_station: StartStation, probe: Probe, name: str
) -> None:
    """Its configurations go first (Home Assistant drops the entities before
    their state topics empty), then it is announced again, whole."""
    prefix = f"{name}/ha"
    config = f"{prefix}/binary_sensor/ocpp_CPG/connected/config"
    state = f"{name}/direct/CPG/connected"
    async with (
        start_connector(
            homeassistant_discovery=True, homeassistant_discovery_prefix=prefix
        ) as bridge,
        start_station(bridge, "CPG") as station,
    ):
        await station.send_meter_values(1)
        await probe.wait_for(config)
        probe.clear()
        probe.publish(f"{name}/direct/CPG/execute_forget_station/set", True)
        await probe.wait_for_log("CPG: forgotten", "announced again")

        def order() -> tuple[int, int, int] | None:
            topics = [(t, p) for t, p, _ in list(probe.messages)]
            emptied = [i for i, (t, p) in enumerate(topics) if t == config and p == b""]
            cleared = [i for i, (t, p) in enumerate(topics) if t == state and p == b""]
            back = [i for i, (t, p) in enumerate(topics) if t == config and p]
            if not (emptied and cleared and back):
                return None
            return emptied[0], cleared[0], back[-1]

        await eventually(lambda: order() is not None)
        emptied, cleared, back = order()  # type: ignore[misc]
        assert emptied < cleared < back
        again = json.loads([p for t, p, _ in probe.messages if t == config][-1])
        assert again["device"]["manufacturer"] == "FZI"

        def state_now() -> bytes:
            return [p for t, p, _ in list(probe.messages) if t == state][-1]

        await eventually(lambda: state_now() != b"" and json.loads(state_now())["value"] is True)


async def test_home_assistant_entities(
    start_connector: StartConnector, start_station: StartStation, probe: Probe, name: str
) -> None:
    """What Home Assistant 2024.3 showed: configurations made before the boot
    get the device's manufacturer and model once it boots; statuses are enums
    without a second `unavailable`; connector 0 is a diagnostic; a station
    with one connector has "Energy", not "Energy 1"; the limit can be removed."""
    prefix = f"{name}/ha"

    def last(component: str, object_id: str) -> dict[str, Any]:
        topic = f"{prefix}/{component}/ocpp_CPH/{object_id}/config"
        return json.loads([p for t, p, _ in probe.messages if t == topic and p][-1])

    async with (
        start_connector(
            homeassistant_discovery=True, homeassistant_discovery_prefix=prefix
        ) as bridge,
        start_station(bridge, "CPH", boot=False) as station,
    ):
        await probe.wait_for(f"{prefix}/binary_sensor/ocpp_CPH/connected/config")
        assert "manufacturer" not in last("binary_sensor", "connected")["device"]
        await station.boot()
        await station.send_all_status()
        await station.send_meter_values(1)
        await eventually(
            lambda: last("binary_sensor", "connected")["device"].get("manufacturer") == "FZI"
        )
        await probe.wait_for(f"{prefix}/sensor/ocpp_CPH/energy_1/config")
        assert last("binary_sensor", "connected")["entity_category"] == "diagnostic"
        status = last("sensor", "status_1")
        assert status["device_class"] == "enum" and status["name"] == "Status"
        assert "Out of service" in status["options"] and "Unavailable" not in status["options"]
        assert last("sensor", "status_0")["entity_category"] == "diagnostic"
        assert last("sensor", "energy_1")["name"] == "Energy"
        assert last("sensor", "power_1")["name"] == "Power"
        remove = last("button", "remove_charging_limit")
        probe.publish(last("number", "charging_limit")["command_topic"], b"7000")
        await eventually(lambda: station.limit_w(1) == 7000)
        probe.publish(remove["command_topic"], remove["payload_press"].encode())
        await eventually(lambda: station.limit_w(1) is None)
