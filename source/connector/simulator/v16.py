"""A simulated OCPP 1.6J charge point, built on the ocpp library's client side.

For trials and tests (`python -m connector.simulator`, README "Trying it").
It boots, reports the status of each connector, sends meter values
periodically, and answers SetChargingProfile, ClearChargingProfile,
TriggerMessage (then sends the triggered message), GetConfiguration and
ChangeConfiguration. Switches make it answer Rejected, a CALLERROR, or
nothing at all, per action; and the quirk switches play the behaviours of
real stations that charging control must cope with (README, "Charging
control"). It keeps the profiles it accepted and works out the power limit
in force from them, as OCPP 1.6 §3.13 describes, so tests can check the
outcome rather than the messages alone.
"""

from __future__ import annotations

import asyncio
from typing import Any

from ocpp.routing import after, on
from ocpp.v16 import ChargePoint, call, call_result
from ocpp.v16.enums import Action
from websockets.asyncio.client import ClientConnection

from connector.simulator.core import CallSwitches, SimulatorOptions, utc_now
from connector.versions import OCPP16, Version


class SimulatedChargePoint(CallSwitches, ChargePoint):
    PROFILE_FIELD = "csChargingProfiles"

    def __init__(
        self,
        cp_id: str,
        connection: ClientConnection,
        options: SimulatorOptions,
        version: Version = OCPP16,
    ) -> None:
        super().__init__(cp_id, connection, response_timeout=10)
        self.version = version
        self.options = options
        # Every call the central system sent: (action, payload as on the wire).
        self.received: list[tuple[str, dict[str, Any]]] = []
        self.call_received = asyncio.Event()
        self.energy_wh = 0.0
        self.glitch_energy_once = False  # the next register reads 0, once
        # chargingProfileId -> the accepted profile, as on the wire, plus
        # "connectorId" and "duringTransaction" (the transaction it arrived in)
        self.profiles: dict[int, dict[str, Any]] = {}
        self.transaction_id: int | None = None
        self.transaction_connector: int | None = None
        self.config: dict[str, tuple[str | None, bool]] = self._initial_config()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._wire: Any = None  # the payload of the call being handled
        self._stopping = False

    def _initial_config(self) -> dict[str, tuple[str | None, bool]]:
        """key -> (value, readonly)"""
        options = self.options
        config: dict[str, tuple[str | None, bool]] = {
            "HeartbeatInterval": ("300", False),
            "NumberOfConnectors": (str(options.connectors), True),
            "SupportedFeatureProfiles": (
                "Core,FirmwareManagement,RemoteTrigger,SmartCharging",
                True,
            ),
            "MeterValuesSampledData": ("Energy.Active.Import.Register", False),
            "MeterValueSampleInterval": (str(int(options.meter_interval)), False),
        }
        if options.rate_units is not None:
            config["ChargingScheduleAllowedChargingRateUnit"] = (options.rate_units, True)
        if options.max_stack_level is not None:
            config["ChargeProfileMaxStackLevel"] = (str(options.max_stack_level), True)
        for key, value in options.extra_config.items():
            config[key] = (value, False)
        return config

    def _status(self, action: str) -> str:
        default = "Unlocked" if action == "UnlockConnector" else "Accepted"
        return self.options.responses.get(action, default)

    def _spawn(self, coroutine: Any) -> None:
        task = asyncio.ensure_future(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # ---- station-initiated messages ----------------------------------

    async def boot(self) -> Any:
        return await self.call(
            call.BootNotification(
                charge_point_vendor=self.options.vendor,
                charge_point_model=self.options.model,
                firmware_version="1.0.0",
            )
        )

    async def send_status(self, connector_id: int, status: str = "Available") -> None:
        await self.call(
            call.StatusNotification(
                connector_id=connector_id,
                error_code="NoError",
                status=status,
                timestamp=utc_now(),
            )
        )

    async def send_all_status(self) -> None:
        for connector_id in range(0, self.options.connectors + 1):
            await self.send_status(connector_id)

    # ---- the limit in force (OCPP 1.6 §3.13) -----------------------------

    def _to_w(self, profile: dict[str, Any]) -> float:
        schedule = profile["chargingSchedule"]
        period = schedule["chargingSchedulePeriod"][0]
        if schedule["chargingRateUnit"] == "W":
            return float(period["limit"])
        phases = period.get("numberPhases", 3)
        return float(period["limit"]) * self.options.voltage * phases

    def profile(self, purpose: str, connector_id: int, **match: Any) -> dict[str, Any] | None:
        """The profile of that purpose on that connector with the highest stack level."""
        found = [
            p
            for p in self.profiles.values()
            if p["chargingProfilePurpose"] == purpose
            and p["connectorId"] == connector_id
            and all(p.get(k) == v for k, v in match.items())
        ]
        return max(found, key=lambda p: p["stackLevel"], default=None)

    def limit_w(self, connector_id: int = 1) -> float | None:
        """The power limit in force on a connector, in W; None when there is none."""
        tx = self.transaction_id if self.transaction_connector == connector_id else None
        governing = None
        if tx is not None:
            governing = self.profile("TxProfile", connector_id, transactionId=tx)
        if governing is None:
            for target in (connector_id, 0):
                governing = self.profile("TxDefaultProfile", target)
                if (
                    governing is not None
                    and tx is not None
                    and self.options.ignores_tx_default_in_transaction
                    and governing.get("duringTransaction") == tx
                ):
                    governing = None  # the quirk: it waits for the next session
                if governing is not None:
                    break
        limits = [self._to_w(p) for p in (governing, self.profile("ChargePointMaxProfile", 0)) if p]
        return min(limits) if limits else None

    def power_w(self, connector_id: int = 1) -> float:
        return self.options.draw(self.limit_w(connector_id))

    def forget_profiles(self) -> None:
        """What a station that keeps no profiles across a reboot does."""
        self.profiles.clear()

    # ---- meter values -----------------------------------------------------

    def _sampled_values(self, power: float) -> list[dict[str, Any]]:
        options = self.options
        if self.glitch_energy_once:
            self.glitch_energy_once = False
            energy = "0"
        elif options.energy_unit == "kWh":
            energy = f"{self.energy_wh / 1000:.3f}"
        else:
            energy = f"{self.energy_wh:.1f}"
        values: list[dict[str, Any]] = [
            {"value": energy, "unit": options.energy_unit},
            {"value": f"{power:.0f}", "measurand": "Power.Active.Import", "unit": "W"},
        ]
        if options.report_electrical:
            values.append(
                {
                    "value": f"{options.voltage}",
                    "measurand": "Voltage",
                    "phase": "L1-N",
                    "unit": "V",
                }
            )
            amps = power / (options.voltage * options.phases)
            for phase in ("L1", "L2", "L3")[: options.phases]:
                values.append(
                    {
                        "value": f"{amps:.1f}",
                        "measurand": "Current.Import",
                        "phase": phase,
                        "unit": "A",
                    }
                )
        return values

    async def send_meter_values(self, connector_id: int = 1, seconds: float = 1.0) -> None:
        power = self.power_w(connector_id)
        self.energy_wh += power * seconds / 3600
        await self.call(
            call.MeterValues(
                connector_id=connector_id,
                transaction_id=self.transaction_id,
                meter_value=[{"timestamp": utc_now(), "sampledValue": self._sampled_values(power)}],
            )
        )

    async def start_transaction(self, connector_id: int = 1, id_tag: str = "TAG1") -> int:
        response = await self.call(
            call.StartTransaction(
                connector_id=connector_id,
                id_tag=id_tag,
                meter_start=int(self.energy_wh),
                timestamp=utc_now(),
            )
        )
        self.transaction_id = response.transaction_id
        self.transaction_connector = connector_id
        return response.transaction_id

    async def stop_transaction(self, reason: str = "Local") -> None:
        assert self.transaction_id is not None
        await self.call(
            call.StopTransaction(
                transaction_id=self.transaction_id,
                meter_stop=int(self.energy_wh),
                timestamp=utc_now(),
                reason=reason,
            )
        )
        # A TxProfile ends with its transaction.
        for profile_id, profile in list(self.profiles.items()):
            if profile.get("transactionId") == self.transaction_id:
                del self.profiles[profile_id]
        self.transaction_id = None
        self.transaction_connector = None

    async def run_meter_loop(self) -> None:
        while self.options.meter_interval > 0:
            await asyncio.sleep(self.options.meter_interval)
            for connector_id in range(1, self.options.connectors + 1):
                await self.send_meter_values(connector_id, self.options.meter_interval)

    # ---- central-system-initiated calls ------------------------------

    @on(Action.set_charging_profile)
    def on_set_charging_profile(self, **_: Any):
        if self._status(Action.set_charging_profile) != "Accepted":
            return call_result.SetChargingProfile(status=self._status(Action.set_charging_profile))
        connector_id = self._wire["connectorId"]
        profile = dict(self._wire["csChargingProfiles"])
        purpose = profile["chargingProfilePurpose"]
        status = self._check_profile(connector_id, profile)
        if status == "Accepted":
            profile["connectorId"] = connector_id
            if purpose == "TxDefaultProfile" and self.transaction_id is not None:
                profile["duringTransaction"] = self.transaction_id
            # Same id, or same purpose and stack level on the connector: replaced.
            for old_id, old in list(self.profiles.items()):
                if old_id == profile["chargingProfileId"] or (
                    old["chargingProfilePurpose"] == purpose
                    and old["stackLevel"] == profile["stackLevel"]
                    and old["connectorId"] == connector_id
                ):
                    del self.profiles[old_id]
            self.profiles[profile["chargingProfileId"]] = profile
            if self.options.on_profile is not None:
                self.options.on_profile(self)
        return call_result.SetChargingProfile(status=status)

    def _check_profile(self, connector_id: int, profile: dict[str, Any]) -> str:
        options = self.options
        purpose = profile["chargingProfilePurpose"]
        if purpose in options.rejected_purposes:
            return "Rejected"
        if profile["chargingSchedule"]["chargingRateUnit"] not in options.accepted_units:
            return "Rejected"
        if options.max_stack_level is not None and profile["stackLevel"] > options.max_stack_level:
            return "Rejected"
        if purpose == "ChargePointMaxProfile" and connector_id != 0:
            return "Rejected"
        if purpose == "TxProfile" and (
            profile.get("transactionId") is None
            or profile.get("transactionId") != self.transaction_id
            or connector_id != self.transaction_connector
        ):
            return "Rejected"  # OCPP 1.6: a TxProfile needs the running transaction
        return "Accepted"

    @on(Action.clear_charging_profile)
    def on_clear_charging_profile(self, **_: Any):
        request = self._wire
        matches = [
            profile_id
            for profile_id, profile in self.profiles.items()
            if ("id" not in request or request["id"] == profile_id)
            and ("connectorId" not in request or request["connectorId"] == profile["connectorId"])
            and (
                "chargingProfilePurpose" not in request
                or request["chargingProfilePurpose"] == profile["chargingProfilePurpose"]
            )
            and ("stackLevel" not in request or request["stackLevel"] == profile["stackLevel"])
        ]
        if not matches:
            return call_result.ClearChargingProfile(status="Unknown")
        status = self._status(Action.clear_charging_profile)
        if status == "Accepted":
            for profile_id in matches:
                del self.profiles[profile_id]
        return call_result.ClearChargingProfile(status=status)

    @on(Action.trigger_message)
    def on_trigger_message(self, requested_message: str, **_: Any):
        return call_result.TriggerMessage(status=self._status(Action.trigger_message))

    @after(Action.trigger_message)
    def after_trigger_message(
        self, requested_message: str, connector_id: int | None = None, **_: Any
    ):
        if self._status(Action.trigger_message) != "Accepted":
            return
        senders = {
            "BootNotification": self.boot,
            "Heartbeat": lambda: self.call(call.Heartbeat()),
            "MeterValues": lambda: self.send_meter_values(connector_id or 1, 0),
            "StatusNotification": (
                (lambda: self.send_status(connector_id))
                if connector_id is not None
                else self.send_all_status
            ),
            "DiagnosticsStatusNotification": lambda: self.call(
                call.DiagnosticsStatusNotification(status="Idle")
            ),
            "FirmwareStatusNotification": lambda: self.call(
                call.FirmwareStatusNotification(status="Idle")
            ),
        }
        self._spawn(senders[requested_message]())

    @on(Action.get_configuration)
    def on_get_configuration(self, key: list[str] | None = None, **_: Any):
        names = (
            [k for k in self.config if k not in self.options.unlisted_config] if not key else key
        )
        known = [
            {"key": name, "readonly": self.config[name][1], "value": self.config[name][0]}
            for name in names
            if name in self.config
        ]
        unknown = [name for name in names if name not in self.config]
        return call_result.GetConfiguration(configuration_key=known, unknown_key=unknown)

    @on(Action.change_configuration)
    def on_change_configuration(self, key: str, value: str, **_: Any):
        if key not in self.config:
            return call_result.ChangeConfiguration(status="NotSupported")
        if self.config[key][1]:
            return call_result.ChangeConfiguration(status="Rejected")
        status = self._status(Action.change_configuration)
        if status in ("Accepted", "RebootRequired"):
            self.config[key] = (value, False)
        return call_result.ChangeConfiguration(status=status)

    # ---- the rest of the commands (README "Actuators") ----------------------------

    @on(Action.remote_start_transaction)
    def on_remote_start_transaction(self, **_: Any):
        return call_result.RemoteStartTransaction(status=self._status("RemoteStartTransaction"))

    @after(Action.remote_start_transaction)
    def after_remote_start_transaction(self, **_: Any):
        if self._status("RemoteStartTransaction") == "Accepted" and self.transaction_id is None:
            request = self._wire
            self._spawn(self.start_transaction(request.get("connectorId", 1), request["idTag"]))

    @on(Action.remote_stop_transaction)
    def on_remote_stop_transaction(self, **_: Any):
        status = self._status("RemoteStopTransaction")
        if self._wire["transactionId"] != self.transaction_id:
            status = "Rejected"
        self._stopping = status == "Accepted"
        return call_result.RemoteStopTransaction(status=status)

    @after(Action.remote_stop_transaction)
    def after_remote_stop_transaction(self, **_: Any):
        if self._stopping:
            self._spawn(self.stop_transaction("Remote"))

    @on(Action.change_availability)
    def on_change_availability(self, **_: Any):
        return call_result.ChangeAvailability(status=self._status("ChangeAvailability"))

    @after(Action.change_availability)
    def after_change_availability(self, **_: Any):
        if self._status("ChangeAvailability") == "Accepted":
            request = self._wire
            status = "Available" if request["type"] == "Operative" else "Unavailable"
            self._spawn(self.send_status(request["connectorId"], status))

    @on(Action.reset)
    def on_reset(self, **_: Any):
        return call_result.Reset(status=self._status("Reset"))

    @after(Action.reset)
    def after_reset(self, **_: Any):
        if self._status("Reset") == "Accepted":
            self._spawn(self.boot())

    @on(Action.unlock_connector)
    def on_unlock_connector(self, **_: Any):
        return call_result.UnlockConnector(status=self._status("UnlockConnector"))

    @on(Action.data_transfer)
    def on_data_transfer(self, **_: Any):
        data = self._wire.get("data")
        return call_result.DataTransfer(
            status=self._status("DataTransfer"), data=None if data is None else f"echo:{data}"
        )

    @on(Action.get_composite_schedule)
    def on_get_composite_schedule(self, **_: Any):
        status = self._status("GetCompositeSchedule")
        if status != "Accepted":
            return call_result.GetCompositeSchedule(status=status)
        connector_id = self._wire["connectorId"]
        limit = self.power_w(connector_id or 1)
        return call_result.GetCompositeSchedule(
            status=status,
            connector_id=connector_id,
            schedule_start=utc_now(),
            charging_schedule={
                "duration": self._wire["duration"],
                "chargingRateUnit": "W",
                "chargingSchedulePeriod": [{"startPeriod": 0, "limit": round(limit, 1)}],
            },
        )

    @on(Action.update_firmware)
    def on_update_firmware(self, **_: Any):
        return call_result.UpdateFirmware()

    @after(Action.update_firmware)
    def after_update_firmware(self, **_: Any):
        self._spawn(
            self._notify_each(
                call.FirmwareStatusNotification,
                ["Downloading", "Downloaded", "Installing", "Installed"],
            )
        )

    @on(Action.get_diagnostics)
    def on_get_diagnostics(self, **_: Any):
        return call_result.GetDiagnostics(file_name=f"diagnostics-{self.id}.zip")

    @after(Action.get_diagnostics)
    def after_get_diagnostics(self, **_: Any):
        self._spawn(
            self._notify_each(call.DiagnosticsStatusNotification, ["Uploading", "Uploaded"])
        )

    async def _notify_each(self, message: Any, statuses: list[str]) -> None:
        for status in statuses:
            await self.call(message(status=status))
