"""A simulated OCPP 2.0.1 or 2.1 charging station, on the ocpp library's client side.

For trials and tests; `python -m connector.simulator --ocpp 2.0.1` (or
`2.1`) runs it. It boots, reports each EVSE's status, runs transactions with
TransactionEvent and meter values (a multiplier on the energy register, as
real 2.x meters send), and answers every call the connector sends (README,
"OCPP 2.0.1 and 2.1"): charging profiles (kept, and the limit in force
worked out from them), variables (a small device model: SmartChargingCtrlr,
SampledDataCtrlr), reports (NotifyReport in parts), triggers (then sends the
triggered message), remote start and stop, availability, reset, unlock,
firmware and logs (then their status notifications), monitors and, for 2.1,
periodic event streams: a monitor with a stream opens one, and `stream()`
sends its values as SEND frames. The switches of SimulatorOptions
(responses, call_errors, silent, units, stack level) work as for the 1.6
simulator.
"""

from __future__ import annotations

import asyncio
import importlib
import json
import uuid
from typing import Any

from ocpp.routing import after, on
from ocpp.v201 import ChargePoint as ChargePoint201
from websockets.asyncio.client import ClientConnection

from connector.simulator.core import CallSwitches, SimulatorOptions, utc_now
from connector.versions import OCPP201, Feature, Version

# Our device model: `Component.Variable` -> (value, read-only).
VARIABLES: dict[str, tuple[str, bool]] = {
    "SmartChargingCtrlr.Enabled": ("true", True),
    "SmartChargingCtrlr.ProfileStackLevel": ("8", True),
    "SampledDataCtrlr.TxUpdatedMeasurands": ("Energy.Active.Import.Register", False),
    "SampledDataCtrlr.TxUpdatedInterval": ("10", False),
    "OCPPCommCtrlr.HeartbeatInterval": ("300", False),
}


def _path(component: dict[str, Any], variable: dict[str, Any]) -> str:
    return f"{component['name']}.{variable['name']}"


class SimulatedStationV2(CallSwitches, ChargePoint201):
    """An OCPP 2.0.1 or 2.1 station; the library's message classes follow `version`."""

    PROFILE_FIELD = "chargingProfile"

    def __init__(
        self,
        cp_id: str,
        connection: ClientConnection,
        options: SimulatorOptions,
        version: Version = OCPP201,
    ) -> None:
        super().__init__(cp_id, connection, response_timeout=10)
        # The handlers are 2.0.1's; 2.1's message classes are a superset with
        # the same names, so the version's library module supplies them.
        library = importlib.import_module(version.library)
        self._call = library.call
        self._call_result = library.call_result
        self._ocpp_version = version.name
        self.version = version
        self.options = options
        self.received: list[tuple[str, dict[str, Any]]] = []
        self.call_received = asyncio.Event()
        self.energy_wh = 0.0
        self.variables = dict(VARIABLES)
        if options.rate_units is not None:
            self.variables["SmartChargingCtrlr.RateUnit"] = (options.rate_units, True)
        if options.max_stack_level is not None:
            level = str(options.max_stack_level)
            self.variables["SmartChargingCtrlr.ProfileStackLevel"] = (level, True)
        # extra_config's `Component.Variable` names are variables here (read-only).
        for name, value in options.extra_config.items():
            if "." in name:
                self.variables[name] = (value, True)
        # chargingProfile id -> {"evseId", "profile"} as on the wire
        self.profiles: dict[int, dict[str, Any]] = {}
        self.transaction_id: str | None = None
        self.transaction_evse: int | None = None
        self.seq_no = 0
        self.monitors: dict[int, dict[str, Any]] = {}
        self.streams: dict[int, dict[str, Any]] = {}
        self._next_id = 1
        self._tasks: set[asyncio.Task[Any]] = set()
        self._wire: dict[str, Any] = {}

    def _status(self, action: str, default: str = "Accepted") -> str:
        return self.options.responses.get(action, default)

    def _spawn(self, coroutine: Any) -> None:
        task = asyncio.ensure_future(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _fresh_id(self) -> int:
        self._next_id += 1
        return self._next_id

    # ---- station-initiated messages ----------------------------------

    async def boot(self, reason: str = "PowerUp") -> Any:
        station = {
            "vendorName": self.options.vendor,
            "model": self.options.model,
            "firmwareVersion": "1.0.0",
        }
        return await self.call(self._call.BootNotification(charging_station=station, reason=reason))

    async def send_status(self, evse_id: int, status: str = "Available") -> None:
        await self.call(
            self._call.StatusNotification(
                timestamp=utc_now(), connector_status=status, evse_id=evse_id, connector_id=1
            )
        )

    async def send_all_status(self) -> None:
        for evse_id in range(1, self.options.connectors + 1):
            await self.send_status(evse_id)

    async def heartbeat(self) -> Any:
        return await self.call(self._call.Heartbeat())

    def meter_value(self, power_w: float | None = None) -> list[dict[str, Any]]:
        """One entry: the register in kWh with multiplier -3 (so in Wh, as a
        2.x meter may send it), power, and per-phase current and voltage."""
        power = self.power_w() if power_w is None else power_w
        options = self.options
        sampled: list[dict[str, Any]] = [
            {
                "value": round(self.energy_wh, 3),
                "measurand": "Energy.Active.Import.Register",
                "unitOfMeasure": {"unit": "kWh", "multiplier": -3},
            },
            {"value": power, "measurand": "Power.Active.Import", "unitOfMeasure": {"unit": "W"}},
        ]
        if options.report_electrical:
            amps = round(power / (options.voltage * options.phases), 1)
            for phase in ("L1", "L2", "L3")[: options.phases]:
                sampled.append(
                    {
                        "value": amps,
                        "measurand": "Current.Import",
                        "phase": phase,
                        "unitOfMeasure": {"unit": "A"},
                    }
                )
                sampled.append(
                    {
                        "value": options.voltage,
                        "measurand": "Voltage",
                        "phase": f"{phase}-N",
                        "unitOfMeasure": {"unit": "V"},
                    }
                )
        return [{"timestamp": utc_now(), "sampledValue": sampled}]

    async def send_meter_values(self, evse_id: int = 1, seconds: float = 1.0) -> None:
        self.energy_wh += self.power_w(evse_id) * seconds / 3600
        await self.call(self._call.MeterValues(evse_id=evse_id, meter_value=self.meter_value()))

    async def transaction_event(
        self,
        event_type: str,
        trigger_reason: str,
        evse_id: int | None = None,
        id_token: str | None = None,
        meter: bool = True,
        **extra: Any,
    ) -> Any:
        assert self.transaction_id is not None
        info: dict[str, Any] = {"transactionId": self.transaction_id}
        info.update(extra.pop("transaction_info", {}))
        message = self._call.TransactionEvent(
            event_type=event_type,
            timestamp=extra.pop("timestamp", utc_now()),
            trigger_reason=trigger_reason,
            seq_no=extra.pop("seq_no", self.seq_no),
            transaction_info=info,
            evse={"id": evse_id, "connectorId": 1} if evse_id is not None else None,
            id_token={"idToken": id_token, "type": "ISO14443"} if id_token else None,
            meter_value=self.meter_value() if meter else None,
            **extra,
        )
        self.seq_no += 1
        return await self.call(message)

    async def start_transaction(
        self, evse_id: int = 1, id_token: str = "TAG1", remote_start_id: int | None = None
    ) -> str:
        self.transaction_id = f"tx-{uuid.uuid4().hex[:12]}"
        self.transaction_evse = evse_id
        self.seq_no = 0
        extra: dict[str, Any] = {}
        if remote_start_id is not None:
            extra["transaction_info"] = {"remoteStartId": remote_start_id}
        await self.transaction_event(
            "Started", "Authorized", evse_id=evse_id, id_token=id_token, **extra
        )
        return self.transaction_id

    async def update_transaction(self, seconds: float = 1.0) -> None:
        """An Updated event without `evse`, as later events may be sent."""
        assert self.transaction_evse is not None
        self.energy_wh += self.power_w(self.transaction_evse) * seconds / 3600
        await self.transaction_event("Updated", "MeterValuePeriodic")

    async def stop_transaction(self, reason: str = "Local") -> None:
        await self.transaction_event(
            "Ended", "StopAuthorized", transaction_info={"stoppedReason": reason}
        )
        self.transaction_id = None
        self.transaction_evse = None

    async def run_meter_loop(self) -> None:
        """Meter values every meter_interval; each open stream gets the power
        once a second, sent in batches of its `values`."""
        ticks = 0
        batches: dict[int, list[str]] = {}
        while self.options.meter_interval > 0:
            await asyncio.sleep(1)
            ticks += 1
            for stream_id, stream in list(self.streams.items()):
                batch = batches.setdefault(stream_id, [])
                batch.append(str(self.power_w()))
                if len(batch) >= max(1, stream["params"].get("values", 1)):
                    await self.stream(stream_id, batch)
                    batches[stream_id] = []
            if ticks % max(1, int(self.options.meter_interval)) == 0:
                for evse_id in range(1, self.options.connectors + 1):
                    await self.send_meter_values(evse_id, self.options.meter_interval)

    async def stream(self, stream_id: int, values: list[str], pending: int = 0) -> None:
        """A NotifyPeriodicEventStream: a SEND frame (type 6), never answered."""
        payload = {
            "id": stream_id,
            "pending": pending,
            "basetime": utc_now(),
            "data": [{"t": index, "v": value} for index, value in enumerate(values)],
        }
        frame = [6, str(uuid.uuid4()), "NotifyPeriodicEventStream", payload]
        await self._send(json.dumps(frame))

    # ---- charging profiles: kept, and the limit in force ----------------

    def _to_w(self, profile: dict[str, Any]) -> float:
        schedule = profile["chargingSchedule"][0]
        period = schedule["chargingSchedulePeriod"][0]
        if schedule["chargingRateUnit"] == "W":
            return float(period["limit"])
        phases = period.get("numberPhases", self.options.phases)
        return float(period["limit"]) * self.options.voltage * phases

    def limit_w(self, evse_id: int = 1) -> float | None:
        """The limit in force on the EVSE (OCPP 2.0.1 K01: the lowest of the
        station maximum and the transaction's, or default, profile)."""
        limits = [
            self._to_w(p["profile"])
            for p in self.profiles.values()
            if p["profile"]["chargingProfilePurpose"] == "ChargingStationMaxProfile"
        ]
        tx = [
            p
            for p in self.profiles.values()
            if p["profile"]["chargingProfilePurpose"] == "TxProfile"
            and p["profile"].get("transactionId") == self.transaction_id
            and self.transaction_id is not None
        ]
        defaults = [
            p
            for p in self.profiles.values()
            if p["profile"]["chargingProfilePurpose"] == "TxDefaultProfile"
            and p["evseId"] in (evse_id, 0)
        ]
        chosen = tx or sorted(defaults, key=lambda p: p["evseId"] == 0)
        if chosen:
            limits.append(self._to_w(chosen[0]["profile"]))
        return min(limits) if limits else None

    def power_w(self, evse_id: int = 1) -> float:
        return self.options.draw(self.limit_w(evse_id))

    @on("SetChargingProfile")
    def on_set_charging_profile(self, **_: Any) -> Any:
        payload = self._wire
        profile = payload["chargingProfile"]
        status = self._status("SetChargingProfile")
        unit = profile["chargingSchedule"][0]["chargingRateUnit"]
        if profile["chargingProfilePurpose"] in self.options.rejected_purposes:
            status = "Rejected"
        elif unit not in self.options.accepted_units:
            status = "Rejected"
        elif profile["stackLevel"] > (self.options.max_stack_level or 0):
            status = "Rejected"
        if status == "Accepted":
            self.profiles[profile["id"]] = {"evseId": payload["evseId"], "profile": profile}
            if self.options.on_profile is not None:
                self.options.on_profile(self)
        return self._call_result.SetChargingProfile(status=status)

    @on("ClearChargingProfile")
    def on_clear_charging_profile(self, **_: Any) -> Any:
        profile_id = self._wire.get("chargingProfileId")
        found = self.profiles.pop(profile_id, None) if profile_id is not None else None
        status = "Accepted" if found is not None else "Unknown"
        return self._call_result.ClearChargingProfile(
            status=self._status("ClearChargingProfile", status)
        )

    @on("GetCompositeSchedule")
    def on_get_composite_schedule(self, **_: Any) -> Any:
        evse_id = self._wire["evseId"]
        limit = self.limit_w(evse_id or 1)
        schedule = {
            "evseId": evse_id,
            "duration": self._wire["duration"],
            "scheduleStart": utc_now(),
            "chargingRateUnit": "W",
            "chargingSchedulePeriod": [
                {
                    "startPeriod": 0,
                    "limit": limit if limit is not None else self.options.max_power_w,
                }
            ],
        }
        return self._call_result.GetCompositeSchedule(status="Accepted", schedule=schedule)

    # ---- variables and reports -------------------------------------------

    def _variable_result(self, data: dict[str, Any]) -> dict[str, Any]:
        entry = self.variables.get(_path(data["component"], data["variable"]))
        result: dict[str, Any] = {"component": data["component"], "variable": data["variable"]}
        if "attributeType" in data:
            result["attributeType"] = data["attributeType"]
        if (data["component"], data["variable"]) == (
            {"name": "EVSE", "evse": {"id": 1}},
            {"name": "Power"},
        ) and data.get("attributeType") == "MaxSet":
            entry = (str(self.options.max_power_w), True)
        if entry is None:
            result["attributeStatus"] = "UnknownVariable"
        else:
            result["attributeStatus"] = "Accepted"
            result["attributeValue"] = entry[0]
        return result

    @on("GetVariables")
    def on_get_variables(self, **_: Any) -> Any:
        results = [self._variable_result(d) for d in self._wire["getVariableData"]]
        return self._call_result.GetVariables(get_variable_result=results)

    @on("SetVariables")
    def on_set_variables(self, **_: Any) -> Any:
        results = []
        for data in self._wire["setVariableData"]:
            name = _path(data["component"], data["variable"])
            entry = self.variables.get(name)
            if entry is None:
                status = "UnknownVariable"
            elif entry[1]:
                status = "Rejected"
            else:
                status = self._status("SetVariables")
                if status == "Accepted":
                    self.variables[name] = (data["attributeValue"], False)
            results.append(
                {
                    "attributeStatus": status,
                    "component": data["component"],
                    "variable": data["variable"],
                }
            )
        return self._call_result.SetVariables(set_variable_result=results)

    @on("GetBaseReport")
    def on_get_base_report(self, **_: Any) -> Any:
        return self._call_result.GetBaseReport(status=self._status("GetBaseReport"))

    @after("GetBaseReport")
    def after_get_base_report(self, **_: Any) -> None:
        self._spawn(self._report(self._wire["requestId"]))

    async def _report(self, request_id: int) -> None:
        # In two parts, the first with tbc, as large reports come.
        items = [
            {
                "component": {"name": name.split(".")[0]},
                "variable": {"name": name.split(".")[1]},
                "variableAttribute": [{"type": "Actual", "value": value}],
            }
            for name, (value, _) in self.variables.items()
        ]
        items.append(
            {
                "component": {"name": "EVSE", "evse": {"id": 1}},
                "variable": {"name": "Power"},
                "variableAttribute": [{"value": "0"}],  # what it draws now
                "variableCharacteristics": {
                    "dataType": "decimal",
                    "maxLimit": self.options.max_power_w,
                    "supportsMonitoring": False,
                },
            }
        )
        half = len(items) // 2
        for seq_no, (part, tbc) in enumerate(((items[:half], True), (items[half:], False))):
            await self.call(
                self._call.NotifyReport(
                    request_id=request_id,
                    generated_at=utc_now(),
                    seq_no=seq_no,
                    report_data=part,
                    tbc=tbc,
                )
            )

    # ---- triggers and other commands -------------------------------------

    @on("TriggerMessage")
    def on_trigger_message(self, **_: Any) -> Any:
        return self._call_result.TriggerMessage(status=self._status("TriggerMessage"))

    @after("TriggerMessage")
    def after_trigger_message(self, **_: Any) -> None:
        if self._status("TriggerMessage") != "Accepted":
            return
        message = self._wire["requestedMessage"]
        evse_id = (self._wire.get("evse") or {}).get("id")
        if message == "BootNotification":
            self._spawn(self.boot("Triggered"))
        elif message == "StatusNotification":
            evses = [evse_id] if evse_id else range(1, self.options.connectors + 1)
            self._spawn(self._each(self.send_status(e) for e in evses))
        elif message == "MeterValues":
            self._spawn(self.send_meter_values(evse_id or 1, 0))
        elif message == "Heartbeat":
            self._spawn(self.heartbeat())
        elif message == "FirmwareStatusNotification":
            self._spawn(self.call(self._call.FirmwareStatusNotification(status="Idle")))
        elif message == "LogStatusNotification":
            self._spawn(self.call(self._call.LogStatusNotification(status="Idle")))
        elif message == "TransactionEvent" and self.transaction_id is not None:
            self._spawn(self.transaction_event("Updated", "Trigger"))

    async def _each(self, coroutines: Any) -> None:
        for coroutine in coroutines:
            await coroutine

    @on("RequestStartTransaction")
    def on_request_start_transaction(self, **_: Any) -> Any:
        return self._call_result.RequestStartTransaction(
            status=self._status("RequestStartTransaction")
        )

    @after("RequestStartTransaction")
    def after_request_start_transaction(self, **_: Any) -> None:
        if self._status("RequestStartTransaction") == "Accepted":
            payload = self._wire
            self._spawn(
                self.start_transaction(
                    payload.get("evseId", 1),
                    payload["idToken"]["idToken"],
                    payload["remoteStartId"],
                )
            )

    @on("RequestStopTransaction")
    def on_request_stop_transaction(self, **_: Any) -> Any:
        known = self._wire["transactionId"] == self.transaction_id
        status = self._status("RequestStopTransaction") if known else "Rejected"
        return self._call_result.RequestStopTransaction(status=status)

    @after("RequestStopTransaction")
    def after_request_stop_transaction(self, **_: Any) -> None:
        if self._wire["transactionId"] == self.transaction_id:
            self._spawn(self.stop_transaction("Remote"))

    @on("ChangeAvailability")
    def on_change_availability(self, **_: Any) -> Any:
        return self._call_result.ChangeAvailability(status=self._status("ChangeAvailability"))

    @on("Reset")
    def on_reset(self, **_: Any) -> Any:
        return self._call_result.Reset(status=self._status("Reset"))

    @on("UnlockConnector")
    def on_unlock_connector(self, **_: Any) -> Any:
        return self._call_result.UnlockConnector(status=self._status("UnlockConnector", "Unlocked"))

    @on("DataTransfer")
    def on_data_transfer(self, **_: Any) -> Any:
        return self._call_result.DataTransfer(
            status=self._status("DataTransfer"), data={"echo": self._wire.get("data")}
        )

    @on("UpdateFirmware")
    def on_update_firmware(self, **_: Any) -> Any:
        return self._call_result.UpdateFirmware(status=self._status("UpdateFirmware"))

    @after("UpdateFirmware")
    def after_update_firmware(self, **_: Any) -> None:
        request_id = self._wire["requestId"]
        self._spawn(
            self._each(
                self.call(self._call.FirmwareStatusNotification(status=s, request_id=request_id))
                for s in ("Downloading", "Downloaded", "Installing", "Installed")
            )
        )

    @on("GetLog")
    def on_get_log(self, **_: Any) -> Any:
        return self._call_result.GetLog(status=self._status("GetLog"), filename="diagnostics.zip")

    @after("GetLog")
    def after_get_log(self, **_: Any) -> None:
        request_id = self._wire["requestId"]
        self._spawn(
            self._each(
                self.call(self._call.LogStatusNotification(status=s, request_id=request_id))
                for s in ("Uploading", "Uploaded")
            )
        )

    # ---- monitors and periodic event streams (2.1) -----------------------

    @on("SetVariableMonitoring")
    def on_set_variable_monitoring(self, **_: Any) -> Any:
        results = []
        for data in self._wire["setMonitoringData"]:
            monitor_id = self._fresh_id()
            self.monitors[monitor_id] = data
            results.append(
                {
                    "id": monitor_id,
                    "status": self._status("SetVariableMonitoring"),
                    "type": data["type"],
                    "severity": data["severity"],
                    "component": data["component"],
                    "variable": data["variable"],
                }
            )
        return self._call_result.SetVariableMonitoring(set_monitoring_result=results)

    @after("SetVariableMonitoring")
    def after_set_variable_monitoring(self, **_: Any) -> None:
        if not self.version.has(Feature.PERIODIC_EVENT_STREAMS):
            return
        for monitor_id, data in list(self.monitors.items()):
            if "periodicEventStream" in data and monitor_id not in {
                s["variableMonitoringId"] for s in self.streams.values()
            }:
                self._spawn(self.open_stream(monitor_id, data["periodicEventStream"]))

    async def open_stream(self, monitor_id: int, params: dict[str, Any]) -> int:
        stream_id = self._fresh_id()
        stream = {"id": stream_id, "variableMonitoringId": monitor_id, "params": params}
        self.streams[stream_id] = stream
        await self.call(self._call.OpenPeriodicEventStream(constant_stream_data=stream))
        return stream_id

    async def close_stream(self, stream_id: int) -> None:
        self.streams.pop(stream_id, None)
        await self.call(self._call.ClosePeriodicEventStream(id=stream_id))

    @on("ClearVariableMonitoring")
    def on_clear_variable_monitoring(self, **_: Any) -> Any:
        results = []
        for monitor_id in self._wire["id"]:
            found = self.monitors.pop(monitor_id, None) is not None
            results.append({"id": monitor_id, "status": "Accepted" if found else "NotFound"})
        return self._call_result.ClearVariableMonitoring(clear_monitoring_result=results)

    @on("AdjustPeriodicEventStream")
    def on_adjust_periodic_event_stream(self, **_: Any) -> Any:
        stream = self.streams.get(self._wire["id"])
        if stream is None:
            return self._call_result.AdjustPeriodicEventStream(status="Rejected")
        stream["params"] = {**stream["params"], **self._wire["params"]}
        return self._call_result.AdjustPeriodicEventStream(status="Accepted")

    @on("GetPeriodicEventStream")
    def on_get_periodic_event_stream(self, **_: Any) -> Any:
        streams = list(self.streams.values()) or None
        return self._call_result.GetPeriodicEventStream(constant_stream_data=streams)
