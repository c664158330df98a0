"""What happens after a station connects or boots (CONTRACT §5).

1. If no BootNotification arrives within OCPP_BOOT_WAIT (10 s) of a connect,
   trigger BootNotification and StatusNotification: some stations reconnect
   after a restart of either side without booting, and their state would
   stay stale.
2. Learn the station: GetConfiguration for all keys, each published as
   `<cp>__Configuration__<key>`; the smart-charging keys are asked for by
   name when the answer for all keys leaves them out.
3. Write OCPP_METER_VALUES_SAMPLED_DATA and OCPP_METER_VALUE_SAMPLE_INTERVAL
   where they differ from what the station reported, and read them back, as
   execute_change_configuration does.
4. Apply the charging limits in force.

One setup runs at a time per station; a BootNotification starts another.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from connector import actuators as act
from connector import station_config as sc
from connector.charging_control import ChargingControl
from connector.command_runner import CommandRunner
from connector.settings import Settings
from connector.station import Flag, Station

log = logging.getLogger(__name__)

# Connector actuators offered from NumberOfConnectors before any
# StatusNotification; a larger number is more likely a wrong value.
MAX_CONNECTORS_FROM_CONFIG = 32


async def _wait(event: Flag, seconds: float) -> bool:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(event.wait(), seconds)
    return event.is_set()


class StationSetup:
    def __init__(
        self,
        settings: Settings,
        charging: ChargingControl,
        commands: CommandRunner,
    ) -> None:
        self.settings = settings
        self.charging = charging
        self.commands = commands

    def connected(self, station: Station) -> None:
        station.spawn(self._after_connect(station))

    def booted(self, station: Station) -> None:
        station.spawn(self.setup(station))

    async def _after_connect(self, station: Station) -> None:
        wait = self.settings.ocpp_boot_wait
        if await _wait(station.booted, wait):
            return  # the BootNotification started the setup
        log.info(
            "%s: no BootNotification within %s s of connecting; asking for one", station.id, wait
        )
        status, _ = await station.command(
            "TriggerMessage", {"requestedMessage": "BootNotification"}
        )
        await station.command("TriggerMessage", {"requestedMessage": "StatusNotification"})
        if status == "Accepted" and await _wait(station.booted, wait):
            return
        await self.setup(station)

    async def setup(self, station: Station) -> None:
        async with station.setup_lock:
            try:
                await self._learn(station)
                await self._configure_metering(station)
            finally:
                station.learned.set()
            await self.charging.apply_all(station)

    async def _learn(self, station: Station) -> None:
        status, answer = await station.command("GetConfiguration", {})
        missing = sc.missing_keys(station.take_configuration(answer, replace=True))
        if missing and status == "Accepted":  # a station that timed out would again
            _, answer = await station.command("GetConfiguration", {"key": missing})
            station.take_configuration(answer)
        caps = station.capabilities
        log.info(
            "%s: charging rate units %s, max stack level %s, %s connectors",
            station.id,
            "/".join(sorted(caps.rate_units)),
            caps.max_stack_level if caps.max_stack_level is not None else "unknown",
            caps.number_of_connectors if caps.number_of_connectors is not None else "unknown",
        )
        if caps.number_of_connectors:
            for connector_id in range(
                1, min(caps.number_of_connectors, MAX_CONNECTORS_FROM_CONFIG) + 1
            ):
                station.note_connector(connector_id)

    async def _configure_metering(self, station: Station) -> None:
        changes = sc.metering_changes(
            station.capabilities,
            self.settings.ocpp_meter_values_sampled_data,
            self.settings.ocpp_meter_value_sample_interval,
        )
        for key, value in changes:
            # As execute_change_configuration: reported, and read back.
            change = act.Request("ChangeConfiguration", {"key": key, "value": value})
            await self.commands.run(station, change)
