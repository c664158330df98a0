"""Hostile and broken stations: handshakes, bad frames, and ocpp 2.1.0's known faults.

Raw frames go over a plain WebSocket client, since the ocpp library's client
cannot send broken frames. The connector runs for real, with a real Mosquitto.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from ocpp.routing import on
from ocpp.v16.enums import Action
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import InvalidStatus

from connector.ocpp16.station import StationV16
from connector.stations.central_system import CentralSystem
from connector.stations.station import StationHooks
from connector.tests.helpers import (
    WAIT,
    Probe,
    StartConnector,
    StartStation,
    eventually,
    station_url,
)

BOOT = {"chargePointVendor": "V", "chargePointModel": "M"}


async def exchange(ws: ClientConnection, frame: str) -> list[Any]:
    await ws.send(frame)
    return json.loads(await asyncio.wait_for(ws.recv(), WAIT))


async def heartbeat_still_answered(ws: ClientConnection) -> None:
    answer = await exchange(ws, '[2,"hb","Heartbeat",{}]')
    assert answer[:2] == [3, "hb"] and "currentTime" in answer[2]


BAD_CALLS = [
    ('[2,"x",["Heartbeat"],{}]', "x", "FormationViolation"),
    ('[2,"c","Heartbeat",{}', "c", "FormationViolation"),
    ('[2,"p","Heartbeat",[]]', "p", "FormationViolation"),
    ('[2,"b","BootNotification",{"chargePointVendor":"V"}]', "b", "ProtocolError"),
    (
        '[2,"a","BootNotification",{"chargePointVendor":"V","chargePointModel":"M","extra":1}]',
        "a",
        "FormationViolation",
    ),
    (
        '[2,"t","BootNotification",{"chargePointVendor":5,"chargePointModel":"M"}]',
        "t",
        "TypeConstraintViolation",
    ),
    # OCPP-J: NotImplemented is an action not known; NotSupported one known but
    # not served (here, a call only a central system may send).
    ('[2,"u","FlyToTheMoon",{}]', "u", "NotImplemented"),
    ('[2,"r","Reset",{"type":"Hard"}]', "r", "NotSupported"),
    (
        '[2,"s","StatusNotification",{"connectorId":1,"errorCode":"NoError","status":"Sleeping"}]',
        "s",
        "FormationViolation",
    ),
    ('[7,"m","Heartbeat",{}]', "m", "ProtocolError"),
]


@pytest.mark.broker
async def test_bad_frames_get_callerrors_and_the_connection_keeps_serving(
    probe: Probe,
    start_connector: StartConnector,
    start_station: StartStation,
) -> None:
    async with start_connector() as bridge:
        async with (
            start_station(bridge, "GOOD") as good,
            connect(station_url(bridge, "EVIL"), subprotocols=["ocpp1.6"]) as ws,  # type: ignore[list-item]
        ):
            for frame, unique_id, code in BAD_CALLS:
                answer = await exchange(ws, frame)
                assert answer[:3] == [4, unique_id, code], (frame, answer)
            # Frames without a message id get no answer; the connection stays.
            for frame in [
                "[" * 5000,
                "null",
                "{}",
                "[2]",
                '[3,"nobody-asked",{}]',
                '[4,"x","GenericError","",{}]',
            ]:
                await ws.send(frame)
            await heartbeat_still_answered(ws)
            # A StatusNotification without timestamp and a MeterValues with a
            # transactionId are fine (BEMCom's original connector answered
            # both with InternalError).
            answer = await exchange(
                ws,
                '[2,"sn","StatusNotification",{"connectorId":1,"errorCode":"NoError","status":"Available"}]',
            )
            assert answer == [3, "sn", {}]
            answer = await exchange(
                ws,
                '[2,"mv","MeterValues",{"connectorId":1,"transactionId":5,"meterValue":'
                '[{"timestamp":"2026-01-01T00:00:00Z","sampledValue":[{"value":"1"}]}]}]',
            )
            assert answer == [3, "mv", {}]
            # The other station was never affected.
            await good.send_meter_values(1, 1)
            assert bridge.central is not None and set(bridge.central.stations) == {
                "GOOD",
                "EVIL",
            }


@pytest.mark.broker
@pytest.mark.parametrize(
    ("path", "subprotocols"),
    [
        ("/ocpp/", ["ocpp1.6"]),
        ("/ocpp/" + "x" * 65, ["ocpp1.6"]),
        ("/ocpp/CP__1", ["ocpp1.6"]),
        ("/ocpp/CP%011", ["ocpp1.6"]),
        ("/ocpp/CP%FF", ["ocpp1.6"]),
        ("/ocpp/CP_1", ["ocpp1.5", "ocpp2.0"]),
        ("/ocpp/CP_1", None),
    ],
)
async def test_handshakes_refused_before_the_upgrade(
    path: str,
    subprotocols: list[str] | None,
    start_connector: StartConnector,
) -> None:
    async with start_connector() as bridge:
        assert bridge.central is not None
        url = f"ws://127.0.0.1:{bridge.central.port}{path}"
        with pytest.raises(InvalidStatus) as refused:
            async with connect(url, subprotocols=subprotocols):  # type: ignore[arg-type]
                pass
        assert refused.value.response.status_code == 400
        assert bridge.central.stations == {}


@pytest.mark.broker
async def test_percent_decoded_id(
    probe: Probe,
    start_connector: StartConnector,
    start_station: StartStation,
) -> None:
    async with start_connector() as bridge:
        async with start_station(bridge, "Garage%20Left"):
            assert bridge.central is not None
            await eventually(lambda: "Garage Left" in bridge.central.stations)  # type: ignore[union-attr]


# ---- ocpp 2.1.0's faults, against a bare CentralSystem (no MQTT needed) ----


class QuirkyStation(StationV16):
    """Handlers that would break ocpp 2.1.0's ChargePoint.start()."""

    @on(Action.data_transfer)
    def on_data_transfer(self, payload: dict[str, Any]) -> None:
        return None  # a buggy handler returning nothing

    @on(Action.heartbeat)
    async def on_heartbeat(self, payload: dict[str, Any]) -> dict[str, Any]:
        # Awaiting a call inside a handler deadlocks in ocpp 2.1.0 until the
        # response timeout; here the station's answer gets through at once.
        answer = await self.call_action(
            "TriggerMessage", {"requestedMessage": "StatusNotification"}
        )
        self.trigger_answer = answer
        return {"currentTime": "2026-01-01T00:00:00Z"}


def bare_central_system(timeout: float) -> CentralSystem:
    hooks = StationHooks(
        publish=lambda points: None,
        next_transaction_id=lambda: 1,
        heartbeat_interval=300,
        response_timeout=timeout,
    )
    return CentralSystem(
        "127.0.0.1",
        0,
        lambda cp_id, ws, version: QuirkyStation(cp_id, ws, hooks),
        on_connect=lambda station: None,
        on_disconnect=lambda station: None,
    )


async def test_library_faults_do_not_reach_the_station() -> None:
    central = bare_central_system(timeout=30)
    await central.start()
    try:
        url = f"ws://127.0.0.1:{central.port}/CP_Q"
        async with connect(url, subprotocols=["ocpp1.6"]) as ws:  # type: ignore[list-item]
            answer = await exchange(ws, '[2,"d","DataTransfer",{"vendorId":"x"}]')
            assert answer[:3] == [4, "d", "InternalError"]
            await ws.send("[" * 5000)
            await ws.send('[2,"n",["Heartbeat"],{}]')
            assert json.loads(await ws.recv())[:3] == [4, "n", "FormationViolation"]
            # The heartbeat handler awaits a call: answer it, and the heartbeat
            # answer follows well inside the 30 s response timeout.
            await ws.send('[2,"hb","Heartbeat",{}]')
            trigger = json.loads(await asyncio.wait_for(ws.recv(), 5))
            assert trigger[0] == 2 and trigger[2] == "TriggerMessage"
            await ws.send(json.dumps([3, trigger[1], {"status": "Accepted"}]))
            answer = json.loads(await asyncio.wait_for(ws.recv(), 5))
            assert answer[:2] == [3, "hb"]
            assert central.stations["CP_Q"].trigger_answer == {"status": "Accepted"}  # type: ignore[attr-defined]
    finally:
        await central.stop()
