"""What happens after a station connects or boots (README "Charging control", "OCPP 2.0.1 and 2.1
stations").

1. If no BootNotification arrives within OCPP_BOOT_WAIT (10 s) of a connect:
   - OCPP 1.6: trigger BootNotification and StatusNotification: some
     stations reconnect after a restart of either side without booting,
     and their state would stay stale;
   - OCPP 2.x forbids triggering a BootNotification once a station is
     accepted. A station with a boot record on the broker (an earlier run
     accepted it) is served as accepted: TriggerMessage StatusNotification,
     then steps 2 to 4. Without a record, it is left to boot.
2. Learn the station:
   - 1.6: GetConfiguration for all keys, each published as
     `<cp>__Configuration__<key>`; the smart-charging keys are asked for by
     name when the answer for all keys leaves them out;
   - 2.x: GetVariables of SmartChargingCtrlr.Enabled, .RateUnit and
     .ProfileStackLevel (and the sampling variables of step 3, when set),
     each published as `<cp>__Variable__<component>__<variable>`.
3. Write OCPP_METER_VALUES_SAMPLED_DATA and OCPP_METER_VALUE_SAMPLE_INTERVAL
   where they differ from what the station reported, and read them back, as
   execute_change_configuration does (2.x: SampledDataCtrlr.TxUpdatedMeasurands
   and .TxUpdatedInterval).
4. Apply the charging limits in force.

Each version's adapter learns the station its way (`Station.learn`) and
names its sampling settings (`Station.sampling_setting`); the setup itself
is the same for every version.

One setup runs at a time per station; a BootNotification starts another,
unless one is already waiting to run (it will see that boot): a station that
sends BootNotifications as fast as it can gets one setup running and one
waiting, not one task per boot.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import weakref
from collections.abc import Callable

from connector import actuators
from connector.core.capabilities import sampling_changes
from connector.settings import Settings
from connector.stations.charging_control import ChargingControl
from connector.stations.command_runner import CommandRunner
from connector.stations.station import Flag, Station

log = logging.getLogger(__name__)

# Connector actuators offered from NumberOfConnectors before any
# StatusNotification; a larger number is more likely a wrong value.
MAX_CONNECTORS_FROM_CONFIG = 32
CHANGE_CONFIGURATION = "execute_change_configuration"


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
        has_boot_record: Callable[[str], bool] = lambda cp_id: False,
    ) -> None:
        self.settings = settings
        self.charging = charging
        self.commands = commands
        # Whether an earlier run (or this one) accepted the station's boot.
        self._has_boot_record = has_boot_record
        # Per station: one setup at a time (its lock), and the stations with a
        # setup waiting for it. Weak: a station that left is gone from both.
        self._locks: weakref.WeakKeyDictionary[Station, asyncio.Lock] = weakref.WeakKeyDictionary()
        self._waiting: weakref.WeakSet[Station] = weakref.WeakSet()

    def connected(self, station: Station) -> None:
        station.spawn(self._after_connect(station))

    def booted(self, station: Station) -> None:
        if station not in self._waiting:
            self._waiting.add(station)
            station.spawn(self.setup(station))

    async def _after_connect(self, station: Station) -> None:
        wait = self.settings.ocpp_boot_wait
        if await _wait(station.booted, wait):
            return  # the BootNotification started the setup
        if station.boot_refused:
            log.info(
                "%s: its own backend did not accept its BootNotification; left alone until it does",
                station.id,
            )
            return
        if not station.may_trigger_boot:
            await self._without_boot_record(station, wait)
            return
        log.info(
            "%s: no BootNotification within %s s of connecting; asking for one", station.id, wait
        )
        status, _ = await station.command(
            "TriggerMessage", station.trigger_request("BootNotification", None)
        )
        await station.command("TriggerMessage", station.trigger_request("StatusNotification", None))
        if status == "Accepted" and await _wait(station.booted, wait):
            return
        await self.setup(station)

    async def _without_boot_record(self, station: Station, wait: float) -> None:
        if not self._has_boot_record(station.id):
            log.info(
                "%s: no BootNotification within %s s of connecting, and no record of an "
                "earlier boot; waiting for it (OCPP %s forbids asking for one)",
                station.id,
                wait,
                station.version,
            )
            return
        log.info(
            "%s: no BootNotification within %s s of connecting; served as accepted, from the "
            "record of its earlier boot",
            station.id,
            wait,
        )
        await station.command("TriggerMessage", station.trigger_request("StatusNotification", None))
        await self.setup(station)

    async def setup(self, station: Station) -> None:
        self._waiting.add(station)
        lock = self._locks.setdefault(station, asyncio.Lock())
        started = False
        try:
            async with lock:
                started = True
                self._waiting.discard(station)  # a boot from now on needs another setup
                try:
                    await self._learn(station)
                    await self._configure_sampling(station)
                finally:
                    station.learned.set()
                await self.charging.apply_all(station)
        finally:
            if not started:  # cancelled while waiting: the station is gone
                self._waiting.discard(station)

    async def _learn(self, station: Station) -> None:
        settings = self.settings
        await station.learn(
            settings.ocpp_meter_values_sampled_data is not None,
            settings.ocpp_meter_value_sample_interval is not None,
            # Site budgets may switch a connector to one phase where it can.
            bool(settings.ocpp_groups.by_name),
        )
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

    async def _configure_sampling(self, station: Station) -> None:
        changes = sampling_changes(
            station.capabilities,
            self.settings.ocpp_meter_values_sampled_data,
            self.settings.ocpp_meter_value_sample_interval,
        )
        for setting, value in changes:
            # As execute_change_configuration does: reported, and read back.
            change = actuators.build(
                CHANGE_CONFIGURATION,
                station.sampling_setting(setting, value),
                None,
                station.version,
            )
            await self.commands.run(station, change)
