"""The OCPP 1.6J adapter: 1.6 messages in, 1.6 requests out (README "Datapoint keys", "Robustness
toward stations", "Charging control", "Actuators").

Handlers take the validated wire payload and return the wire answer; the
core (station.py) receives, validates and answers. Transaction ids are ours
(int32, unique across stations and restarts: transaction_ids.py).
"""

from __future__ import annotations

import logging
from typing import Any

from ocpp.routing import after, on
from ocpp.v16.enums import Action

from connector.core import charging_profiles as cp
from connector.core import datapoints as dp
from connector.core.capabilities import SAMPLE_INTERVAL, SAMPLED_DATA
from connector.core.electrical import measure
from connector.ocpp16 import mapping as m16
from connector.ocpp16 import requests as r16
from connector.ocpp16.configuration import (
    SAMPLE_INTERVAL_KEY,
    SAMPLED_DATA_KEY,
    capabilities,
    configuration_datapoints,
    missing_keys,
    read_configuration,
)
from connector.stations.frames import frame_action, frame_payload
from connector.stations.station import Station, now_ms
from connector.versions import OCPP16

log = logging.getLogger(__name__)


# The configuration keys of the sampling settings (core/capabilities.py).
SAMPLING_KEYS = {SAMPLED_DATA: SAMPLED_DATA_KEY, SAMPLE_INTERVAL: SAMPLE_INTERVAL_KEY}


class StationV16(Station):
    version = OCPP16
    known_actions = frozenset(a.value for a in Action)
    # A station's own backend (upstream.py): its transaction messages, and the
    # transaction id it gives.
    kept_always = frozenset({"StartTransaction", "StopTransaction"})
    kept_with_transaction = frozenset({"MeterValues"})
    decided_by_backend = frozenset({"StartTransaction"})

    def ends_transaction(self, frame: str) -> bool:
        return frame_action(frame) == "StopTransaction"

    def transaction_id_given(self, action: str, response: str) -> int | None:
        if action != "StartTransaction":
            return None
        answer = frame_payload(response)
        given = answer.get("transactionId") if answer is not None else None
        return given if isinstance(given, int) and not isinstance(given, bool) else None

    def status_key(self, payload: dict[str, Any]) -> Any:
        return payload.get("connectorId")

    def profile_request(self, target: cp.Target, rate: cp.Rate, level: int) -> dict[str, Any]:
        return r16.set_charging_profile(target, rate, level)

    def clear_request(self, profile_id: int) -> dict[str, Any]:
        return {"id": profile_id}

    def trigger_request(self, message: str, connector_id: int | None) -> dict[str, Any]:
        return r16.trigger_payload(message, connector_id)

    async def learn(
        self, sampled_data: bool, sample_interval: bool, phase_switching: bool = False
    ) -> None:
        """GetConfiguration for all keys; the smart-charging keys by name when
        the answer for all keys leaves them out (some stations do)."""
        status, answer = await self.command("GetConfiguration", {})
        missing = missing_keys(self.take_configuration(answer, replace=True))
        if missing and status == "Accepted":  # a station that timed out would again
            _, answer = await self.command("GetConfiguration", {"key": missing})
            self.take_configuration(answer)

    def sampling_setting(self, setting: str, value: str) -> str:
        return f"{SAMPLING_KEYS[setting]}={value}"

    # ---- handlers: wire payload in, wire payload out ------------------

    @on(Action.boot_notification)
    def on_boot_notification(self, payload: dict[str, Any]) -> dict[str, Any]:
        self.hooks.publish(m16.boot_notification(self.id, payload, now_ms()))
        log.info(
            "%s: boot accepted (%s %s)",
            self.id,
            payload.get("chargePointVendor"),
            payload.get("chargePointModel"),
        )
        return self.boot_answer()

    @after(Action.boot_notification)
    async def after_boot_notification(self, payload: dict[str, Any]) -> None:
        self.boot_accepted()

    @on(Action.heartbeat)
    def on_heartbeat(self, payload: dict[str, Any]) -> dict[str, Any]:
        return self.heartbeat_answer()

    @on(Action.status_notification)
    def on_status_notification(self, payload: dict[str, Any]) -> dict[str, Any]:
        self.note_connector(payload["connectorId"])
        self.hooks.publish(m16.status_notification(self.id, payload, now_ms()))
        return {}

    @on(Action.meter_values)
    def on_meter_values(self, payload: dict[str, Any]) -> dict[str, Any]:
        connector_id = payload["connectorId"]
        transaction_id = payload.get("transactionId")
        if transaction_id is not None:
            seen = transaction_id in self.transactions
            self.transactions.track(transaction_id, connector_id)
            if not seen:
                if self.hooks.on_transaction_seen is not None:
                    self.hooks.on_transaction_seen(self, connector_id)
                if self.hooks.on_session is not None:
                    self.hooks.on_session(self, connector_id, True)
        self.electrical.observe(connector_id, measure(payload["meterValue"]))
        mapped = dp.meter_values(
            self.id, connector_id, payload["meterValue"], now_ms(), transaction_id
        )
        self._publish_mapped(connector_id, mapped)
        return {}

    @on(Action.start_transaction)
    def on_start_transaction(self, payload: dict[str, Any]) -> dict[str, Any]:
        # The station's own backend gives the id where it is there (upstream.py).
        backend = self.backend_answer
        if backend is not None:
            return self._started(payload, backend["transactionId"], backend["idTagInfo"])
        transaction_id = self.hooks.next_transaction_id()
        return self._started(payload, transaction_id, self._id_tag_info(payload["idTag"]))

    def _started(
        self, payload: dict[str, Any], transaction_id: int, id_tag_info: dict[str, Any]
    ) -> dict[str, Any]:
        self.transactions.track(transaction_id, payload["connectorId"])
        # A new session may start a new register (or a new session counter).
        self.energy_guard.reset(payload["connectorId"])
        self.hooks.publish(m16.start_transaction(self.id, payload, transaction_id, now_ms()))
        if self.hooks.on_session is not None:
            self.hooks.on_session(self, payload["connectorId"], True)
        log.info(
            "%s: transaction %d started on connector %d",
            self.id,
            transaction_id,
            payload["connectorId"],
        )
        return {"transactionId": transaction_id, "idTagInfo": id_tag_info}

    @on(Action.stop_transaction)
    def on_stop_transaction(self, payload: dict[str, Any]) -> dict[str, Any]:
        transaction_id = payload["transactionId"]
        connector_id = self.transactions.end(transaction_id)
        if connector_id is None:
            log.warning(
                "%s: stop of unknown transaction %s; published under connector 0",
                self.id,
                transaction_id,
            )
            connector_id = 0
        elif self.hooks.on_session is not None and self.transactions.running(connector_id) is None:
            self.hooks.on_session(self, connector_id, False)
        self._publish_mapped(
            connector_id, m16.stop_transaction(self.id, connector_id, payload, now_ms())
        )
        response: dict[str, Any] = {}
        if payload.get("idTag"):
            response["idTagInfo"] = {"status": "Accepted"}
        return response

    @on(Action.authorize)
    def on_authorize(self, payload: dict[str, Any]) -> dict[str, Any]:
        self.hooks.publish(m16.authorize(self.id, payload, now_ms()))
        return {"idTagInfo": self._id_tag_info(payload["idTag"])}

    def _id_tag_info(self, id_tag: str) -> dict[str, str]:
        return {"status": self.token_status(id_tag)}

    @on(Action.data_transfer)
    def on_data_transfer(self, payload: dict[str, Any]) -> dict[str, Any]:
        self.hooks.publish(m16.data_transfer(self.id, payload, now_ms()))
        return {"status": "Accepted"}

    @on(Action.diagnostics_status_notification)
    def on_diagnostics_status(self, payload: dict[str, Any]) -> dict[str, Any]:
        self.hooks.publish(
            m16.status_only(self.id, "DiagnosticsStatusNotification", payload, now_ms())
        )
        return {}

    @on(Action.firmware_status_notification)
    def on_firmware_status(self, payload: dict[str, Any]) -> dict[str, Any]:
        self.hooks.publish(
            m16.status_only(self.id, "FirmwareStatusNotification", payload, now_ms())
        )
        return {}

    def take_configuration(
        self, answer: dict[str, Any], replace: bool = False
    ) -> dict[str, str | None]:
        """Keys of a GetConfiguration answer: kept, published as
        `<cp>__Configuration__<key>`, and what the station can do read anew."""
        config = read_configuration(answer)
        if replace:
            self.config = {}
        self.config.update(config)
        self.capabilities = capabilities(self.config)
        if config:
            self.hooks.publish(configuration_datapoints(self.id, config, now_ms()))
        return config
