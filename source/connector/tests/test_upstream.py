"""The connector as a station's Local Controller (README "Keeping a station's own backend").

A backend built on the ocpp library's server side (backend.py) stands behind
the connector; simulated stations (and raw WebSocket stations, for bytes)
connect to the connector; values and commands go over a real Mosquitto.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
from ocpp.exceptions import OCPPError
from ocpp.v16 import call as call16
from ocpp.v201 import call as call201
from websockets.asyncio.client import ClientConnection, connect

from connector.core import upstream as up
from connector.simulator.core import SimulatorOptions
from connector.simulator.v16 import SimulatedChargePoint
from connector.tests.backend import FIRST_TRANSACTION_ID as FIRST_ID
from connector.tests.backend import Backend, BackendOptions
from connector.tests.helpers import (
    WAIT,
    Mosquitto,
    Probe,
    StartConnector,
    equal_to,
    eventually,
    simulated_station,
    station_url,
)
from connector.tests.pki import Pki, make_pki
from connector.tests.test_instances import Site, ports_open
from connector.tls import server_context
from connector.versions import BY_NAME

# Real Mosquitto (the Docker build runs only the tests without it).
pytestmark = pytest.mark.broker


@asynccontextmanager
async def running_backend(options: BackendOptions | None = None) -> AsyncIterator[Backend]:
    backend = Backend(options)
    await backend.start()
    try:
        yield backend
    finally:
        await backend.stop()


@pytest.fixture(autouse=True)
def quick_reconnects(monkeypatch: pytest.MonkeyPatch) -> None:
    """The back-off's cap, lowered so a test's backend returns within seconds
    (the rule itself, 1 s to 60 s, is test_upstream_rules.py's)."""
    monkeypatch.setattr(up, "MAX_BACKOFF", 1.0)


class RawStation:
    """A station that sends frames as text and records what it gets."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.got: list[str] = []

    async def exchange(self, text: str) -> str:
        """Send a CALL; the answer to it, as text (calls to us are recorded)."""
        unique_id = json.loads(text)[1]
        await self.ws.send(text)
        while True:
            answer = await asyncio.wait_for(self.ws.recv(), WAIT)
            assert isinstance(answer, str)
            self.got.append(answer)
            frame = json.loads(answer)
            if frame[0] in (3, 4) and frame[1] == unique_id:
                return answer


@asynccontextmanager
async def raw_station(bridge: Any, cp_id: str, version: str = "1.6") -> AsyncIterator[RawStation]:
    subprotocol = BY_NAME[version].subprotocol
    async with connect(station_url(bridge, cp_id), subprotocols=[subprotocol]) as ws:  # type: ignore[list-item]
        yield RawStation(ws)


# A BootNotification as some firmware writes it: spaces, an unusual field
# order, an escaped character. It must reach the backend as it is.
BOOT_16 = (
    '[2, "boot-1", "BootNotification", {"firmwareVersion": "1.0\\u00e9", '
    '"chargePointModel": "Raw", "chargePointVendor": "Quirky"}]'
)
BOOT_201 = (
    '[2,"boot-1","BootNotification",{"reason":"PowerUp",  '
    '"chargingStation":{"vendorName":"Quirky","model":"Raw"}}]'
)


@pytest.mark.parametrize(("version", "boot"), [("1.6", BOOT_16), ("2.0.1", BOOT_201)])
async def test_frames_pass_through_byte_for_byte(
    start_connector: StartConnector, probe: Probe, version: str, boot: str
) -> None:
    vendor_key = "RAW1__BootNotification__" + (
        "chargePointVendor" if version == "1.6" else "chargingStation.vendorName"
    )
    probe.map(sensors=[vendor_key, "RAW1__upstream"])
    async with (
        running_backend() as backend,
        start_connector(ocpp_upstream_url=backend.url()) as bridge,
        raw_station(bridge, "RAW1", version) as station,
    ):
        answer = await station.exchange(boot)
        # The station's frame reached the backend unchanged, and the backend's
        # answer reached the station unchanged: its interval, not ours.
        assert backend.received("RAW1")[0] == boot
        assert answer == backend.sent("RAW1")[0]
        assert json.loads(answer)[2]["interval"] == 123
        # And the building still sees the station.
        await probe.value(vendor_key, equal_to("Quirky"))
        await probe.value("RAW1__upstream", equal_to(True))


def recorded_station(
    bridge: Any,
    cp_id: str,
    version: str = "1.6",
    options: SimulatorOptions | None = None,
    boot: bool = True,
) -> Any:
    """A simulated station whose every frame sent is in `station.wire.sent`."""
    return simulated_station(bridge, cp_id, options, boot, version, record=True)


def sent_calls(station: Any, action: str) -> list[str]:
    return [t for t in station.wire.sent if json.loads(t)[0] == 2 and json.loads(t)[2] == action]


def only_answers_to_the_backend(backend: Backend, cp_id: str) -> None:
    """Every answer the backend got is to a call of its own: none of the
    connector's calls (nor their answers) ever reached it."""
    asked = {json.loads(t)[1] for t in backend.sent(cp_id) if json.loads(t)[0] == 2}
    for text in backend.received(cp_id):
        frame = json.loads(text)
        if frame[0] in (3, 4):
            assert frame[1] in asked, text


async def test_backend_decides_and_calls_through_on_16(
    start_connector: StartConnector, probe: Probe
) -> None:
    started = "CP16__StartTransaction__1__transactionId"
    probe.map(sensors=[started, "CP16__upstream"], actuators=["CP16__execute_trigger_message"])
    async with (
        running_backend() as backend,
        start_connector(
            ocpp_upstream_url=backend.url(), ocpp_upstream_deny=frozenset({"Reset"})
        ) as bridge,
        recorded_station(bridge, "CP16") as station,
    ):
        # The backend gives the transaction id; the building sees that one.
        assert await station.start_transaction(1) == 5001
        await probe.value(started, equal_to(5001))
        await station.send_meter_values(1)
        await station.stop_transaction()
        assert backend.calls("CP16", "MeterValues")[-1][3]["transactionId"] == 5001
        assert backend.calls("CP16", "StopTransaction")[-1][3]["transactionId"] == 5001
        # Every call of the station's reached the backend as the station sent it.
        calls = [t for t in station.wire.sent if json.loads(t)[0] == 2]
        await eventually(lambda: len(backend.calls("CP16")) == len(calls))
        assert [t for t in backend.received("CP16") if json.loads(t)[0] == 2] == calls

        # The backend's call reaches the station, and the station's answer the backend.
        answer = await backend.call("CP16", call16.GetConfiguration(key=["HeartbeatInterval"]))
        assert answer.configuration_key[0]["key"] == "HeartbeatInterval"
        assert station.calls("GetConfiguration")[-1] == {"key": ["HeartbeatInterval"]}
        # A denied action never reaches the station.
        with pytest.raises(OCPPError) as refused:
            await backend.call("CP16", call16.Reset(type="Hard"), suppress=False)
        assert type(refused.value).__name__ == "SecurityError"
        assert station.calls("Reset") == []

        # The connector's own call: to the station, never to the backend.
        probe.command(probe.actuator_topic("CP16__execute_trigger_message"), "Heartbeat")
        await eventually(lambda: bool(station.calls("TriggerMessage")))
        await asyncio.sleep(0.3)
        only_answers_to_the_backend(backend, "CP16")
        await probe.value("CP16__upstream", equal_to(True))


async def test_backend_decides_and_calls_through_on_201(
    start_connector: StartConnector, probe: Probe
) -> None:
    async with (
        running_backend() as backend,
        start_connector(ocpp_upstream_url=backend.url()) as bridge,
        recorded_station(bridge, "CP2", "2.0.1") as station,
    ):
        transaction = await station.start_transaction(1)
        await station.update_transaction()
        await station.stop_transaction()
        events = backend.calls("CP2", "TransactionEvent")
        assert [e[3]["eventType"] for e in events] == ["Started", "Updated", "Ended"]
        assert {e[3]["transactionInfo"]["transactionId"] for e in events} == {transaction}
        assert backend.received("CP2")[: len(sent_calls(station, "BootNotification"))] == (
            sent_calls(station, "BootNotification")
        )
        answer = await backend.call(
            "CP2",
            call201.GetVariables(
                get_variable_data=[
                    {
                        "component": {"name": "OCPPCommCtrlr"},
                        "variable": {"name": "HeartbeatInterval"},
                    }
                ]
            ),
        )
        assert answer.get_variable_result[0]["attribute_status"] in ("Accepted", "UnknownVariable")
        assert station.calls("GetVariables")[-1]["getVariableData"][0]["variable"] == {
            "name": "HeartbeatInterval"
        }
        only_answers_to_the_backend(backend, "CP2")


async def test_a_backend_clear_is_followed_by_our_limit(
    start_connector: StartConnector, probe: Probe
) -> None:
    probe.map(actuators=["CPL__execute_send_charging_profile"])
    async with (
        running_backend() as backend,
        start_connector(ocpp_upstream_url=backend.url()) as bridge,
        recorded_station(bridge, "CPL") as station,
    ):
        await eventually(lambda: bool(station.calls("GetConfiguration")))
        probe.command(probe.actuator_topic("CPL__execute_send_charging_profile"), 7000)
        await eventually(lambda: station.limit_w(1) == 7000)
        # The station-wide maximum carries it: it caps whatever the backend sets.
        assert {p["chargingProfilePurpose"] for p in station.profiles.values()} == {
            "ChargePointMaxProfile"
        }
        ours = len(station.calls("SetChargingProfile"))
        answer = await backend.call("CPL", call16.ClearChargingProfile())
        assert answer.status == "Accepted"
        # Cleared, and set again by the connector.
        await eventually(lambda: len(station.calls("SetChargingProfile")) > ours)
        await eventually(lambda: station.limit_w(1) == 7000)
        only_answers_to_the_backend(backend, "CPL")


def calls_of(texts: list[str]) -> list[list[Any]]:
    return [f for f in (json.loads(t) for t in texts) if f[0] == 2]


@pytest.mark.within(90)
async def test_backend_away_across_a_restart_on_16(
    start_connector: StartConnector, probe: Probe
) -> None:
    """Kept in order, through a restart of the connector (on the broker, no
    volume), sent once the backend is back with the backend's transaction id,
    each exactly once; then the latest StatusNotification of each connector."""
    probe.map(sensors=["CPA__upstream"])
    backend = Backend()
    await backend.start()
    try:
        async with (
            start_connector(ocpp_upstream_url=backend.url()) as bridge,
            recorded_station(bridge, "CPA") as station,
        ):
            await backend.station("CPA")
            await backend.stop()
            await probe.value("CPA__upstream", equal_to(False))
            ours = await station.start_transaction(1)
            assert ours != FIRST_ID  # the connector's own
            await station.send_meter_values(1)
            away = list(station.wire.sent)
        seen = len(backend.received("CPA"))
        async with (
            start_connector(ocpp_upstream_url=backend.url()) as bridge,
            recorded_station(bridge, "CPA", boot=False) as station,
        ):
            station.transaction_id = ours
            station.transaction_connector = 1
            await station.send_status(1, "Charging")
            await station.send_meter_values(1)
            await station.stop_transaction()
            assert bridge.upstream_status()[0]["kept"] == 4  # start, 2 meter values, stop
            await backend.start()
            await eventually(
                lambda: (
                    len(backend.calls("CPA", "StopTransaction")) == 1
                    and len(backend.calls("CPA", "StatusNotification")) >= 2
                )
            )
            await asyncio.sleep(0.5)  # nothing more comes
            await probe.value("CPA__upstream", equal_to(True))
            status = bridge.upstream_status()[0]
            assert status["connected"] and status["kept"] == 0 and status["kept_sent"] == 4
            away += station.wire.sent
    finally:
        await backend.stop()
    got = [t for t in backend.received("CPA")[seen:] if json.loads(t)[0] == 2]
    # The connector asked the reconnected station to boot (it did not); the
    # backend missed that BootNotification, so it gets it first.
    assert [json.loads(t)[2] for t in got] == [
        "BootNotification",
        "StartTransaction",
        "MeterValues",
        "MeterValues",
        "StopTransaction",
        "StatusNotification",
        "StatusNotification",
    ]
    kept = [t for t in away if json.loads(t)[0] == 2 and json.loads(t)[2] in KEPT_16]
    # The start as the station sent it, byte for byte; the rest with the backend's id.
    assert got[1] == kept[0]
    for text, original in zip(got[2:5], kept[1:4], strict=True):
        sent, as_kept = json.loads(text), json.loads(original)
        assert as_kept[3]["transactionId"] == ours
        assert sent[3] == {**as_kept[3], "transactionId": FIRST_ID}
        assert sent[1] == as_kept[1]
    # The latest StatusNotification of each connector, as the station sent it.
    statuses = [
        t for t in away if json.loads(t)[0] == 2 and json.loads(t)[2] == "StatusNotification"
    ]
    latest = {json.loads(t)[3]["connectorId"]: t for t in statuses}
    assert sorted(got[5:]) == sorted(latest.values())


KEPT_16 = ("StartTransaction", "MeterValues", "StopTransaction")


@pytest.mark.within(60)
async def test_backend_away_at_boot_on_201(start_connector: StartConnector) -> None:
    """A backend that is away when the station boots: the connector answers,
    and once the backend is there it gets the BootNotification, then the
    transaction events, each as the station sent it."""
    backend = Backend()
    try:
        async with (
            start_connector(ocpp_upstream_url=backend.url()) as bridge,
            recorded_station(bridge, "CPB", "2.0.1") as station,
        ):
            await station.start_transaction(1)
            await station.update_transaction()
            await station.stop_transaction()
            await backend.start()
            await eventually(lambda: len(backend.calls("CPB", "StatusNotification")) >= 1)
            await asyncio.sleep(0.5)
            got = backend.received("CPB")
            sent = [t for t in station.wire.sent if json.loads(t)[0] == 2]
    finally:
        await backend.stop()
    boot, *events, status = sent
    assert json.loads(boot)[2] == "BootNotification"
    assert [json.loads(t)[2] for t in got if json.loads(t)[0] == 2] == [
        "BootNotification",
        "TransactionEvent",
        "TransactionEvent",
        "TransactionEvent",
        "StatusNotification",
    ]
    # Order of the simulator: boot, status, then the three events.
    status, *events = sent[1:]
    assert [t for t in got if json.loads(t)[0] == 2] == [boot, *events, status]


async def test_credentials_go_to_the_backend_and_nowhere_else(
    start_connector: StartConnector, probe: Probe, caplog: pytest.LogCaptureFixture
) -> None:
    password = "pw-" + uuid.uuid4().hex
    token = base64.b64encode(f"CPS:{password}".encode()).decode()
    caplog.set_level(logging.DEBUG)
    probe.map(sensors=["CPW__upstream", "CPW__BootNotification__chargePointVendor"])
    options = BackendOptions(passwords={"CPS": password, "CPW": "the right one"})
    async with (
        running_backend(options) as backend,
        start_connector(
            ocpp_upstream_url=backend.url(),
            ocpp_upstream_basic_auth={"CPS": password, "CPW": "a wrong one"},
            debug=True,
        ) as bridge,
    ):
        async with recorded_station(bridge, "CPS") as station:
            await backend.station("CPS")
            await station.send_meter_values(1)
            assert f"Basic {token}" in backend.authorizations
            assert backend.calls("CPS", "BootNotification")
        # A wrong password: the backend refuses, and the station is served here.
        async with recorded_station(bridge, "CPW"):
            await probe.value("CPW__upstream", equal_to(False))
            await probe.value("CPW__BootNotification__chargePointVendor", equal_to("FZI"))
            assert "CPW" not in backend.frames
    logged = "\n".join(record.getMessage() for record in caplog.records)
    published = b"\n".join(payload for _, payload, _ in probe.messages)
    assert "websockets.client" in {record.name for record in caplog.records}
    for secret in (password, token):
        assert secret not in logged
        assert secret.encode() not in published


# Frames a hostile or broken backend sends, and the CALLERROR each gets (None: no answer).
BAD_FRAMES = [
    ('[2,"bad-1","GetConfiguration",{"key":"HeartbeatInterval"}]', "bad-1"),
    ('[2,"bad-2","Reset"]', "bad-2"),
    ('[2,"bad-3",["Reset"],{}]', "bad-3"),
    ("not json at all", None),
    ("[" * 5000, None),
    ('[3,"nobody",{}]', None),
    ('[4,"nobody","GenericError","",{}]', None),
    ('[9,"bad-4",{}]', "bad-4"),
    ('[2,"' + "x" * 40 + '","Heartbeat",{}]', "x" * 40),
]


async def test_bad_input_from_the_backend(start_connector: StartConnector) -> None:
    async with (
        running_backend() as backend,
        start_connector(ocpp_upstream_url=backend.url()) as bridge,
        recorded_station(bridge, "CPX") as station,
        recorded_station(bridge, "CPY") as bystander,
    ):
        wire = (await backend.station("CPX"))._connection
        for frame, _ in BAD_FRAMES:
            await wire.send(frame)
        # A flood of calls: a few wait for the station, the rest are refused at once.
        for n in range(30):
            await wire.send(f'[2,"flood-{n}","GetConfiguration",{{}}]')

        def answer(unique_id: str) -> list[Any] | None:
            for text in backend.received("CPX"):
                frame = json.loads(text)
                if frame[0] in (3, 4) and frame[1] == unique_id:
                    return frame
            return None

        expected = [i for _, i in BAD_FRAMES if i is not None]
        flood = [f"flood-{n}" for n in range(30)]
        await eventually(lambda: all(answer(i) for i in expected + flood), timeout=20)
        for unique_id in expected:
            assert answer(unique_id)[0] == 4, unique_id  # type: ignore[index]
        refused = [i for i in flood if answer(i)[0] == 4]  # type: ignore[index]
        assert 0 < len(refused) < 30
        assert {answer(i)[2] for i in refused} == {"GenericError"}  # type: ignore[index]
        # The station got none of the bad calls, and both stations go on.
        assert station.calls("Reset") == [] and len(station.calls("GetConfiguration")) >= 30 - len(
            refused
        )
        await station.send_meter_values(1)
        await bystander.send_meter_values(1)
        await eventually(lambda: len(backend.calls("CPX", "MeterValues")) == 1)
        await eventually(lambda: len(backend.calls("CPY", "MeterValues")) == 1)


@pytest.mark.within(60)
async def test_a_backend_that_does_not_answer(
    start_connector: StartConnector, probe: Probe
) -> None:
    """A backend that does not answer within OCPP_RESPONSE_TIMEOUT is away: the
    station is answered here, the connection closed, and the unanswered
    StartTransaction sent again when the backend is back, as a station does;
    the station's later messages then carry the id the backend gave."""
    probe.map(sensors=["CPT__upstream"])
    options = BackendOptions(delays={"StartTransaction": 2.0})
    async with (
        running_backend(options) as backend,
        start_connector(ocpp_upstream_url=backend.url(), ocpp_response_timeout=1) as bridge,
        recorded_station(bridge, "CPT") as station,
    ):
        ours = await station.start_transaction(1)
        assert ours != FIRST_ID
        await probe.value("CPT__upstream", equal_to(False))
        await eventually(lambda: len(backend.calls("CPT", "StartTransaction")) == 2)
        await eventually(lambda: bridge.upstream_status()[0]["kept"] == 0)
        await station.send_meter_values(1)
        await station.stop_transaction()
        await eventually(lambda: len(backend.calls("CPT", "StopTransaction")) == 1)
    again = FIRST_ID + 1  # the first answer came too late, on a closed connection
    assert backend.calls("CPT", "MeterValues")[-1][3]["transactionId"] == again
    assert backend.calls("CPT", "StopTransaction")[-1][3]["transactionId"] == again


@pytest.mark.within(60)
async def test_kept_messages_are_bounded(
    start_connector: StartConnector, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Beyond MAX_KEPT the oldest meter values go; the start and the stop stay."""
    monkeypatch.setattr(up, "MAX_KEPT", 4)
    backend = Backend()
    try:
        async with (
            start_connector(ocpp_upstream_url=backend.url()) as bridge,
            recorded_station(bridge, "CPK") as station,
        ):
            await station.start_transaction(1)
            for _ in range(6):
                await station.send_meter_values(1)
            await station.stop_transaction()
            sent = [json.loads(t) for t in station.wire.sent]
            meter = [f[1] for f in sent if f[0] == 2 and f[2] == "MeterValues"]
            await backend.start()
            await eventually(lambda: len(backend.calls("CPK", "StopTransaction")) == 1)
            await asyncio.sleep(0.3)
    finally:
        await backend.stop()
    got = [f for f in backend.calls("CPK") if f[2] in KEPT_16]
    assert [f[2] for f in got] == [
        "StartTransaction",
        "MeterValues",
        "MeterValues",
        "StopTransaction",
    ]
    assert [f[1] for f in got[1:3]] == meter[-2:]


async def test_records_on_the_broker_are_not_trusted(
    start_connector: StartConnector, probe: Probe, name: str
) -> None:
    """A record anyone wrote under <name>/upstream/ is sent to a backend only if
    it is a valid transaction message of the station; bounds hold."""
    forged = '[2,"f1","DataTransfer",{"vendorId":"evil"}]'
    broken = '[2,"f2","StopTransaction",{"transactionId":"not an int"}]'
    good = (
        '[2,"f3","MeterValues",{"connectorId":1,"transactionId":7,"meterValue":'
        '[{"timestamp":"2026-11-29T10:00:00Z","sampledValue":[{"value":"1"}]}]}]'
    )
    for seq, frame in ((1, forged), (2, broken), (3, good)):
        probe.publish(f"{name}/upstream/CPF/kept/{seq}", {"frame": frame}, retain=True)
    probe.publish(f"{name}/upstream/CPF/ids", {"7": "x"}, retain=True)
    probe.publish(f"{name}/upstream/CPF/kept/x", {"frame": good}, retain=True)
    async with (
        running_backend() as backend,
        start_connector(ocpp_upstream_url=backend.url()) as bridge,
        recorded_station(bridge, "CPF"),
    ):
        await eventually(lambda: len(backend.calls("CPF", "MeterValues")) == 1)
        await asyncio.sleep(0.3)
        assert backend.calls("CPF", "DataTransfer") == []
        assert backend.calls("CPF", "StopTransaction") == []
        # The invalid map was ignored: the id went as it was.
        assert backend.calls("CPF", "MeterValues")[0][3]["transactionId"] == 7
    for seq in (1, 2, 3):
        probe.publish(f"{name}/upstream/CPF/kept/{seq}", "", retain=True)


@pytest.mark.within(120)
async def test_the_instance_that_holds_a_station_holds_its_backend(
    mosquitto: Mosquitto, name: str
) -> None:
    """Several instances: the station's backend connection is where the
    station is; what an instance kept for a backend that was away is sent by
    the instance that holds the station when the backend is back."""
    backend = Backend()
    await backend.start()
    site = Site(mosquitto, name, extra={"OCPP_UPSTREAM_URL": backend.url()})
    site.start_all()
    try:
        await ports_open(site)
        async with connect(site.url("CPI", 0), subprotocols=["ocpp1.6"]) as ws:  # type: ignore[list-item]
            first = SimulatedChargePoint("CPI", ws, SimulatorOptions(meter_interval=0))
            reader = asyncio.create_task(first.start())
            await first.boot()
            await backend.station("CPI")
            await backend.stop()
            ours = await first.start_transaction(1)
            await first.send_meter_values(1)
            await asyncio.sleep(1)  # on the broker
            site.kill(0)
            reader.cancel()
        async with connect(site.url("CPI", 1), subprotocols=["ocpp1.6"]) as ws:  # type: ignore[list-item]
            second = SimulatedChargePoint("CPI", ws, SimulatorOptions(meter_interval=0))
            reader = asyncio.create_task(second.start())
            await second.boot()
            second.transaction_id, second.transaction_connector = ours, 1
            await second.stop_transaction()
            await backend.start()
            await eventually(lambda: len(backend.calls("CPI", "StopTransaction")) == 1, 20)
            await asyncio.sleep(1)
            reader.cancel()
    finally:
        site.stop()
        await backend.stop()
    kept = [f for f in backend.calls("CPI") if f[2] in KEPT_16]
    assert [f[2] for f in kept] == ["StartTransaction", "MeterValues", "StopTransaction"]
    assert [f[3]["transactionId"] for f in kept[1:]] == [FIRST_ID, FIRST_ID]
    # One backend connection while instance 0 held it, one after instance 1 took it.
    assert backend.connections["CPI"] == 2


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


@pytest.mark.within(60)
async def test_tls_toward_the_backend(
    start_connector: StartConnector, probe: Probe, pki: Pki
) -> None:
    """Security Profile 3 upstream: the backend's certificate is verified,
    and the station's client certificate presented."""
    probe.map(sensors=["CP_1__upstream"])
    options = BackendOptions(
        ssl_context=server_context(str(pki.server_cert), str(pki.server_key), str(pki.ca))
    )
    async with running_backend(options) as backend:
        # The system's CAs do not know the backend's: no connection, served here.
        async with (
            start_connector(ocpp_upstream_url=backend.url()) as bridge,
            recorded_station(bridge, "CP_1"),
        ):
            await probe.value("CP_1__upstream", equal_to(False))
        assert "CP_1" not in backend.frames
        probe.clear()
        async with (
            start_connector(
                ocpp_upstream_url=backend.url(),
                ocpp_upstream_tls_ca=str(pki.ca),
                ocpp_upstream_tls_cert=str(pki.client_cert),
                ocpp_upstream_tls_key=str(pki.client_key),
            ) as bridge,
            recorded_station(bridge, "CP_1"),
        ):
            await probe.value("CP_1__upstream", equal_to(True))
            assert backend.calls("CP_1", "BootNotification")


async def test_a_boot_the_backend_rejects(start_connector: StartConnector, probe: Probe) -> None:
    """The backend decides the boot: a station it rejects gets its answer, and
    the connector leaves it alone (no set-up, no limits) as OCPP asks."""
    probe.map(actuators=["CPR__execute_send_charging_profile"])
    async with (
        running_backend(BackendOptions(boot_status="Rejected")) as backend,
        start_connector(ocpp_upstream_url=backend.url()) as bridge,
        recorded_station(bridge, "CPR", boot=False) as station,
    ):
        answer = await station.boot()
        assert answer.status == "Rejected" and answer.interval == 123
        probe.command(probe.actuator_topic("CPR__execute_send_charging_profile"), 7000)
        await asyncio.sleep(1.5)  # beyond OCPP_BOOT_WAIT
        assert station.received == []
