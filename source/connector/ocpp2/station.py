"""The OCPP 2.0.1 and 2.1 adapter: 2.x messages in, 2.x requests out (README "OCPP 2.0.1 and 2.1
stations").

2.0.1 and 2.1 share every handler here; 2.1 adds the periodic event
streams. Handlers take the validated wire payload (camelCase) and return
the wire answer; the core (station.py) receives, validates and answers, in
each version's error codes.

The ocpp library's 2.x support has gaps, worked around here in the open:
- NotifyPeriodicEventStream comes as a SEND frame (type 6), which the
  library cannot parse; frames.py parses it, and its schema file (named
  without the `Request` suffix the library looks for) is checked by
  schema_validation.validate_send;
- the library's 2.1 `ChargePoint` answers an unknown action with nothing;
  the core answers NotImplemented (unknown) or NotSupported (known);
- nested payloads reach the library's handlers in snake_case; ours get the
  wire payload, so keys keep the wire names.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from typing import Any

import ocpp
from ocpp.exceptions import OCPPError
from ocpp.routing import after, on

from connector.core import capabilities
from connector.core import charging_profiles as cp
from connector.core import datapoints as dp
from connector.core.capabilities import Capabilities, parse_bool, parse_int, parse_rate_units
from connector.core.datapoints import Datapoint
from connector.core.electrical import measure
from connector.ocpp2 import mapping as dv2
from connector.ocpp2 import requests as rv2
from connector.stations import schema_validation
from connector.stations.frames import Send, frame_payload
from connector.stations.station import Station, now_ms
from connector.versions import OCPP21, OCPP201

log = logging.getLogger(__name__)

# Streams, monitors and sequence numbers remembered per station; bounded so
# a station cannot grow memory without end.
MAX_TRACKED = 256

# Learning (README "OCPP 2.0.1 and 2.1 stations"): the smart charging
# variables, read with GetVariables.
SMART_CHARGING_ENABLED = "SmartChargingCtrlr.Enabled"
RATE_UNIT = "SmartChargingCtrlr.RateUnit"
PROFILE_STACK_LEVEL = "SmartChargingCtrlr.ProfileStackLevel"
LEARNED_VARIABLES = (SMART_CHARGING_ENABLED, RATE_UNIT, PROFILE_STACK_LEVEL)
# EVSEs whose power is asked for at most (a station chooses their numbers).
MAX_EVSES_ASKED = 8
# Asked for only where site budgets may switch phases (README "Sharing a supply").
PHASES_3TO1 = "SmartChargingCtrlr.Phases3to1"
# OCPP_METER_VALUES_SAMPLED_DATA and OCPP_METER_VALUE_SAMPLE_INTERVAL on 2.x.
SAMPLED_DATA = "SampledDataCtrlr.TxUpdatedMeasurands"
SAMPLE_INTERVAL = "SampledDataCtrlr.TxUpdatedInterval"
SAMPLING_VARIABLES = {
    capabilities.SAMPLED_DATA: SAMPLED_DATA,
    capabilities.SAMPLE_INTERVAL: SAMPLE_INTERVAL,
}


def _schema_actions(version_dir: str) -> frozenset[str]:
    folder = os.path.join(os.path.dirname(ocpp.__file__), version_dir, "schemas")
    return frozenset(
        name.removesuffix(".json").removesuffix("Request").removesuffix("Response")
        for name in os.listdir(folder)
    )


def _path_name(component: dict[str, Any], variable: dict[str, Any]) -> str:
    """`SmartChargingCtrlr.RateUnit` for a top-level component and variable."""
    return f"{component.get('name')}.{variable.get('name')}"


def _certificate_answer(station: StationV201, payload: dict[str, Any]) -> dict[str, Any]:
    # The connector keeps no PKI: certificate requests fail, as the spec allows.
    return {"status": "Failed", "exiResponse": ""}


# Station messages with nothing to do beyond publishing their fields:
# action -> answer (from the station and the payload). Answers are the plain
# ones the specification asks of a CSMS that has nothing further to say.
Answer = Callable[["StationV201", dict[str, Any]], dict[str, Any]]
_ANSWERS: dict[str, Answer] = {
    "FirmwareStatusNotification": lambda v, p: {},
    "LogStatusNotification": lambda v, p: {},
    "SecurityEventNotification": lambda v, p: {},
    "NotifyChargingLimit": lambda v, p: {},
    "ClearedChargingLimit": lambda v, p: {},
    # No schedule follows from us (limits come as profiles): 2.1 says so by name.
    "NotifyEVChargingNeeds": lambda v, p: {"status": v.no_schedule},
    "NotifyEVChargingSchedule": lambda v, p: {"status": "Accepted"},
    "ReportChargingProfiles": lambda v, p: {},
    "NotifyCustomerInformation": lambda v, p: {},
    "NotifyDisplayMessages": lambda v, p: {},
    "PublishFirmwareStatusNotification": lambda v, p: {},
    "ReservationStatusUpdate": lambda v, p: {},
    "Get15118EVCertificate": _certificate_answer,
    "GetCertificateStatus": lambda v, p: {"status": "Failed"},
    "SignCertificate": lambda v, p: {"status": "Rejected"},
}
_ANSWERS_21: dict[str, Answer] = {
    "BatterySwap": lambda v, p: {},
    "NotifyDERAlarm": lambda v, p: {},
    "NotifyDERStartStop": lambda v, p: {},
    "NotifyPriorityCharging": lambda v, p: {},
    "NotifySettlement": lambda v, p: {},
    "ReportDERControl": lambda v, p: {},
    "PullDynamicScheduleUpdate": lambda v, p: {"status": "Rejected"},
    "VatNumberValidation": lambda v, p: {"vatNumber": p["vatNumber"], "status": "Rejected"},
}


def _generic(action: str, answer: Answer) -> Any:
    def handler(self: StationV201, payload: dict[str, Any]) -> dict[str, Any]:
        self.hooks.publish(dv2.message_fields(self.id, action, payload, now_ms()))
        return answer(self, payload)

    handler.__name__ = f"on_{action}"
    return on(action)(handler)


class StationV201(Station):
    version = OCPP201
    known_actions = _schema_actions("v201")
    connector_noun = "EVSE"
    may_trigger_boot = False
    smart_charging_off = "SmartChargingCtrlr.Enabled is false"
    # NotifyEVChargingNeeds' answer: no schedule follows from us.
    no_schedule = "Rejected"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Learned device model values: `Component.Variable` -> value.
        self.variables: dict[str, Any] = {}
        # transactionId -> the last seqNo seen.
        self._sequence: dict[str, int] = {}
        # Monitor id -> the variable key its values belong to (streams).
        self.monitors: dict[int, str] = {}
        # Stream id -> the monitor whose variable it carries.
        self.streams: dict[int, int] = {}

    # ---- the core's commands in 2.x words ----------------------------

    def profile_request(self, target: cp.Target, rate: cp.Rate, level: int) -> dict[str, Any]:
        return rv2.set_charging_profile(
            target.profile_id,
            target.purpose,
            target.connector_id,
            target.transaction_id,
            rate.unit,
            rate.limit,
            rate.number_phases,
            level,
        )

    def clear_request(self, profile_id: int) -> dict[str, Any]:
        return {"chargingProfileId": profile_id}

    def trigger_request(self, message: str, connector_id: int | None) -> dict[str, Any]:
        return rv2.trigger_payload(message, connector_id)

    def answer_status(self, action: str, answer: dict[str, Any]) -> str:
        # Answers about variables and monitors carry a status per item; one
        # item is asked for at a time.
        for results, status in (
            ("setVariableResult", "attributeStatus"),
            ("getVariableResult", "attributeStatus"),
            ("setMonitoringResult", "status"),
            ("clearMonitoringResult", "status"),
        ):
            items = answer.get(results)
            if isinstance(items, list) and items and isinstance(items[0], dict):
                return str(items[0].get(status, "Accepted"))
        return super().answer_status(action, answer)

    # ---- learning ------------------------------------------------------

    async def learn(
        self, sampled_data: bool, sample_interval: bool, phase_switching: bool = False
    ) -> None:
        """GetVariables of the smart charging variables (and of the sampling
        ones, when the connector is to write them; Phases3to1 for site budgets)."""
        names = list(LEARNED_VARIABLES)
        if phase_switching:
            names.append(PHASES_3TO1)
        if sampled_data:
            names.append(SAMPLED_DATA)
        if sample_interval:
            names.append(SAMPLE_INTERVAL)
        request = rv2.get_variables([rv2.parse_variable_path(name) for name in names])
        _, answer = await self.command("GetVariables", request)
        self.take_variables(answer.get("getVariableResult") or [])
        # Each EVSE's largest power (EVSE.Power's MaxSet; its Actual is what it
        # draws now), on its own, as a station may cap the items per message:
        # Home Assistant's charging limit number takes it as its maximum.
        evses = sorted(n for n in self.connectors if 0 < n)[:MAX_EVSES_ASKED] or [1]
        paths = [rv2.parse_variable_path(f"EVSE@{n}.Power") for n in evses]
        request = rv2.get_variables(paths, "MaxSet")
        status, answer = await self.command("GetVariables", request)
        if status == "Accepted":
            self.take_variables(answer.get("getVariableResult") or [])

    def sampling_setting(self, setting: str, value: str) -> str:
        return f"{SAMPLING_VARIABLES[setting]}={value}"

    def take_variables(self, results: list[dict[str, Any]]) -> None:
        """A GetVariables answer: published, and what the station can do read anew."""
        self.hooks.publish(dv2.get_variables_result(self.id, results, now_ms()))
        for result in results:
            if result.get("attributeStatus") == "Accepted":
                name = _path_name(result["component"], result["variable"])
                self.variables[name] = result.get("attributeValue")
        self._read_capabilities()

    def _read_capabilities(self) -> None:
        enabled = self.variables.get(SMART_CHARGING_ENABLED)
        sampled = self.variables.get(SAMPLED_DATA)
        self.capabilities = Capabilities(
            rate_units=parse_rate_units(self.variables.get(RATE_UNIT)),
            max_stack_level=parse_int(self.variables.get(PROFILE_STACK_LEVEL)),
            # Enabled=false is what 1.6's profiles without SmartCharging were.
            feature_profiles=frozenset()
            if str(enabled).lower() == "false"
            else frozenset({"smartcharging"}),
            sampled_data=tuple(x for x in str(sampled).split(",") if x)
            if sampled is not None
            else None,
            sample_interval=parse_int(self.variables.get(SAMPLE_INTERVAL)),
            switches_to_one_phase=parse_bool(self.variables.get(PHASES_3TO1)),
        )

    # ---- a station's own backend (upstream.py) ---------------------------

    kept_always = frozenset({"TransactionEvent"})

    def ends_transaction(self, frame: str) -> bool:
        payload = frame_payload(frame)
        return payload is not None and payload.get("eventType") == "Ended"

    def status_key(self, payload: dict[str, Any]) -> Any:
        return (payload.get("evseId"), payload.get("connectorId"))

    # ---- handlers: wire payload in, wire payload out ------------------

    @on("BootNotification")
    def on_boot_notification(self, payload: dict[str, Any]) -> dict[str, Any]:
        self.hooks.publish(dv2.boot_notification(self.id, payload, now_ms()))
        station = payload.get("chargingStation") or {}
        log.info(
            "%s: boot accepted (%s %s, %s)",
            self.id,
            station.get("vendorName"),
            station.get("model"),
            payload.get("reason"),
        )
        return self.boot_answer()

    @after("BootNotification")
    async def after_boot_notification(self, payload: dict[str, Any]) -> None:
        self.boot_accepted()

    @on("Heartbeat")
    def on_heartbeat(self, payload: dict[str, Any]) -> dict[str, Any]:
        return self.heartbeat_answer()

    @on("StatusNotification")
    def on_status_notification(self, payload: dict[str, Any]) -> dict[str, Any]:
        self.note_connector(payload["evseId"])
        self.hooks.publish(dv2.status_notification(self.id, payload, now_ms()))
        return {}

    @on("MeterValues")
    def on_meter_values(self, payload: dict[str, Any]) -> dict[str, Any]:
        evse_id = payload["evseId"]
        entries = dv2.entries_v16(payload["meterValue"])
        self.electrical.observe(evse_id, measure(entries))
        self._publish_mapped(evse_id, dp.meter_values(self.id, evse_id, entries, now_ms()))
        return {}

    @on("TransactionEvent")
    def on_transaction_event(self, payload: dict[str, Any]) -> dict[str, Any]:
        now = now_ms()
        info = payload["transactionInfo"]
        transaction_id = info["transactionId"]
        event = payload["eventType"]
        evse = payload.get("evse")
        known = transaction_id in self.transactions
        started_on = self.transactions.connector_of(transaction_id)
        if evse is not None:
            evse_id = evse["id"]
        elif started_on is not None:
            # Later events may leave `evse` out: the EVSE that started it.
            evse_id = started_on
        else:
            log.warning(
                "%s: %s event of unknown transaction %s without an EVSE; published under EVSE 0",
                self.id,
                event,
                transaction_id,
            )
            evse_id = 0
        self._check_sequence(transaction_id, payload["seqNo"], event)
        if event == "Ended":
            self.transactions.end(transaction_id)
            self._sequence.pop(transaction_id, None)
        else:
            self.transactions.track(transaction_id, evse_id)
        if evse_id:
            self.note_connector(evse_id)
            if self.hooks.on_session is not None:
                # Active while its car may charge: not Idle (README "Sharing a
                # supply"). An event without chargingState leaves it as it was.
                state = info.get("chargingState")
                if event == "Ended":
                    running = self.transactions.running(evse_id) is not None
                    self.hooks.on_session(self, evse_id, running)
                elif event == "Started" or state is not None:
                    self.hooks.on_session(self, evse_id, state != "Idle")
        if event == "Started":
            # A new session may start a new register (or a new session counter).
            self.energy_guard.reset(evse_id)
            log.info("%s: transaction %s started on EVSE %d", self.id, transaction_id, evse_id)
        elif event == "Ended":
            log.info(
                "%s: transaction %s ended (%s)", self.id, transaction_id, info.get("stoppedReason")
            )
        points = dv2.transaction_event(self.id, evse_id, payload, now)
        points.append(
            Datapoint(
                dp.make_key(self.id, "MeterValues", evse_id, "transactionId"), transaction_id, now
            )
        )
        self.hooks.publish(points)
        meter_value = payload.get("meterValue")
        if meter_value:
            entries = dv2.entries_v16(meter_value)
            self.electrical.observe(evse_id, measure(entries))
            self._publish_mapped(evse_id, dp.meter_values(self.id, evse_id, entries, now))
        if (
            event == "Updated"
            and not known
            and evse_id
            and self.hooks.on_transaction_seen is not None
        ):
            # Its start was missed (a restart of the connector, say).
            self.hooks.on_transaction_seen(self, evse_id)
        response: dict[str, Any] = {}
        id_token = payload.get("idToken")
        if id_token is not None:
            response["idTokenInfo"] = self._id_token_info(id_token["idToken"])
        return response

    def _check_sequence(self, transaction_id: str, seq_no: int, event: str) -> None:
        last = self._sequence.get(transaction_id)
        if last is not None and seq_no != last + 1:
            log.warning(
                "%s: transaction %s: seqNo %d follows %d; %d messages of it are missing or "
                "came out of order",
                self.id,
                transaction_id,
                seq_no,
                last,
                abs(seq_no - last - 1),
            )
        self._sequence[transaction_id] = seq_no
        while len(self._sequence) > MAX_TRACKED:
            del self._sequence[next(iter(self._sequence))]

    @on("Authorize")
    def on_authorize(self, payload: dict[str, Any]) -> dict[str, Any]:
        token = payload["idToken"]["idToken"]
        self.hooks.publish(
            [Datapoint(dp.make_key(self.id, "Authorize", "idToken"), token, now_ms())]
        )
        return {"idTokenInfo": self._id_token_info(token)}

    def _id_token_info(self, token: str) -> dict[str, str]:
        return {"status": self.token_status(token)}

    @on("DataTransfer")
    def on_data_transfer(self, payload: dict[str, Any]) -> dict[str, Any]:
        fields = dict(payload)
        if "data" in fields and not dp.is_scalar(fields["data"]):
            fields["data"] = dv2.variable_value(fields["data"])  # any JSON, as a string
        self.hooks.publish(dv2.message_fields(self.id, "DataTransfer", fields, now_ms()))
        return {"status": "Accepted"}

    @on("NotifyReport")
    def on_notify_report(self, payload: dict[str, Any]) -> dict[str, Any]:
        now = now_ms()
        report = payload.get("reportData") or []
        points = dv2.report_variables(self.id, report, now)
        self.hooks.publish(list(points.values()))
        for item in report:
            component, variable = item["component"], item["variable"]
            evse = component.get("evse")
            if isinstance(evse, dict) and evse.get("id"):
                self.note_connector(evse["id"])
            if evse is None and not component.get("instance") and not variable.get("instance"):
                for attribute in item.get("variableAttribute") or []:
                    if attribute.get("type", "Actual") == "Actual" and "value" in attribute:
                        self.variables[_path_name(component, variable)] = attribute["value"]
        self._read_capabilities()
        log.log(
            logging.DEBUG if payload.get("tbc") else logging.INFO,
            "%s: report %s part %s: %d variables%s",
            self.id,
            payload.get("requestId"),
            payload.get("seqNo"),
            len(points),
            ", more to come" if payload.get("tbc") else "",
        )
        return {}

    @on("NotifyEvent")
    def on_notify_event(self, payload: dict[str, Any]) -> dict[str, Any]:
        self.hooks.publish(dv2.event_variables(self.id, payload["eventData"], now_ms()))
        return {}

    @on("NotifyMonitoringReport")
    def on_notify_monitoring_report(self, payload: dict[str, Any]) -> dict[str, Any]:
        for monitor in payload.get("monitor") or []:
            key = dv2.variable_key(self.id, monitor["component"], monitor["variable"])
            for setting in monitor.get("variableMonitoring") or []:
                self.remember_monitor(setting["id"], key)
        fields = {k: v for k, v in payload.items() if k != "monitor"}
        self.hooks.publish(dv2.message_fields(self.id, "NotifyMonitoringReport", fields, now_ms()))
        return {}

    def remember_monitor(self, monitor_id: int, key: str) -> None:
        self.monitors.pop(monitor_id, None)
        self.monitors[monitor_id] = key
        while len(self.monitors) > MAX_TRACKED:
            del self.monitors[next(iter(self.monitors))]


for _action, _answer in _ANSWERS.items():
    setattr(StationV201, f"on_{_action}", _generic(_action, _answer))


class StationV21(StationV201):
    """OCPP 2.1: everything of 2.0.1, and periodic event streams."""

    version = OCPP21
    known_actions = _schema_actions("v21")
    no_schedule = "NoChargingProfile"  # 2.1 says so by name

    @on("OpenPeriodicEventStream")
    def on_open_periodic_event_stream(self, payload: dict[str, Any]) -> dict[str, Any]:
        stream = payload["constantStreamData"]
        stream_id, monitor_id = stream["id"], stream["variableMonitoringId"]
        # The monitor's variable is looked up when values arrive: a station
        # may open the stream before our SetVariableMonitoring has its answer.
        self.streams.pop(stream_id, None)
        self.streams[stream_id] = monitor_id
        while len(self.streams) > MAX_TRACKED:
            del self.streams[next(iter(self.streams))]
        self.hooks.publish(dv2.stream_settings(self.id, stream, now_ms()))
        log.info(
            "%s: periodic event stream %d opened, for monitor %d", self.id, stream_id, monitor_id
        )
        return {"status": "Accepted"}

    def stream_key(self, stream_id: int) -> str:
        """The key of the monitored variable, else `<cp>__PeriodicEventStream__<id>__value`."""
        monitor_id = self.streams.get(stream_id)
        key = self.monitors.get(monitor_id) if monitor_id is not None else None
        return key or dv2.stream_key(self.id, stream_id, "value")

    @on("ClosePeriodicEventStream")
    def on_close_periodic_event_stream(self, payload: dict[str, Any]) -> dict[str, Any]:
        if self.streams.pop(payload["id"], None) is not None:
            log.info("%s: periodic event stream %d closed", self.id, payload["id"])
        return {}

    async def _on_send(self, send: Send) -> None:
        if send.action != "NotifyPeriodicEventStream":
            log.warning("%s: dropped a SEND of unknown action %r", self.id, send.action[:64])
            return
        try:
            schema_validation.validate_send(send, self.version)
        except OCPPError as error:
            log.warning(
                "%s: dropped an invalid NotifyPeriodicEventStream: %s",
                self.id,
                str(error.details.get("cause", ""))[:200],
            )
            return
        payload = send.payload
        stream_id = payload["id"]
        now = now_ms()
        points = dv2.stream_values(
            self.stream_key(stream_id), payload.get("basetime"), payload["data"], now
        )
        points.append(
            Datapoint(dv2.stream_key(self.id, stream_id, "pending"), payload.get("pending"), now)
        )
        self.hooks.publish(points)


for _action, _answer in _ANSWERS_21.items():
    setattr(StationV21, f"on_{_action}", _generic(_action, _answer))
