"""Puts the charging limits users ask for in force on their stations (README "Charging control").

charging_profiles.py plans what to send; this module sends it, falls back,
reports one `<cp>__SetChargingProfile__status` with the final outcome, and
publishes `<cp>__ChargingLimit…` once a station accepted a limit.

Limits are applied one at a time per connector. A value overtaken by a newer
one while it waited is skipped: an energy manager that sends a new limit
every second to a slow station gets the newest limit through, not a backlog.
Requests are coalesced: per connector one application runs and at most one
waits, whatever the number of requests (5,000 limits to a silent station
were 5,000 tasks).

A value equal to the limit the station accepted on this connection is not
sent again: many stations write every profile to flash, and an energy
manager (or a map that echoes our own ChargingLimit back) repeats values.
A boot, a reconnect or a restart of the connector still applies every limit
again, and a clear is always sent.
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ocpp.exceptions import OCPPError

from connector.core import charging_profiles as cp
from connector.core import datapoints as dp
from connector.core.commands import InvalidCommand
from connector.core.limit_store import LimitStore, decode, encode, state_name
from connector.core.transactions import TransactionId
from connector.settings import Settings
from connector.stations.station import DISCONNECTED, CallFailed, Station, now_ms

log = logging.getLogger(__name__)


def _session(station: Station, connector_id: int) -> TransactionId | None:
    # A new session may need its own TxProfile, so a limit is in force per session.
    return station.transactions.running(connector_id) if connector_id else None


@dataclass
class StationCharging:
    """What charging control knows of one station's connection; its own, and
    gone with the connection (a new one starts afresh)."""

    # connectorId -> the lock of its applications, one at a time.
    locks: dict[int, asyncio.Lock] = field(default_factory=dict)
    # connectorId -> the generation (limit_store.py) applied on this connection.
    applied: dict[int, int] = field(default_factory=dict)
    # connectorId -> (W, transactionId) the station accepted on this connection.
    in_force: dict[int, tuple[float, TransactionId | None]] = field(default_factory=dict)
    # connectorId -> an application waiting for its lock, and whether it must
    # apply even a limit already applied (a new session).
    scheduled: dict[int, bool] = field(default_factory=dict)
    # Learned on this connection: what is not worth asking again.
    refuses_station_max: bool = False
    refuses_power: bool = False


class StationGone(Exception):
    """The station disconnected mid-way; its limits are applied on reconnect."""


class Shared:
    """Site budgets (site_budgets.py) as charging control sees them: connectors
    whose limit a group sets, and a user's own limit on them as a cap."""

    def shares(self, cp_id: str, connector_id: int) -> bool:
        return False

    def own_limit_changed(self, cp_id: str) -> None:
        """A user's own limit on the station or one of its connectors changed."""


class ChargingControl:
    def __init__(
        self,
        settings: Settings,
        publish: Callable[[list[dp.Datapoint]], None],
        persist: Callable[[str, dict[str, Any] | None], None],
    ) -> None:
        self.settings = settings
        self.store = LimitStore()
        self.shared = Shared()
        self._publish = publish
        self._persist = persist
        # Per station connection. Weak: a station that left takes its state.
        self._stations: weakref.WeakKeyDictionary[Station, StationCharging] = (
            weakref.WeakKeyDictionary()
        )

    def _of(self, station: Station) -> StationCharging:
        state = self._stations.get(station)
        if state is None:
            state = self._stations[station] = StationCharging()
        return state

    def booted(self, station: Station) -> None:
        """A boot forgets the profiles: every limit is sent again after it."""
        self._of(station).in_force.clear()

    def profiles_lost(self, station: Station) -> None:
        """Another party (the station's own backend) changed its profiles:
        nothing is known to be in force, and every limit is applied anew."""
        state = self._of(station)
        state.in_force.clear()
        state.applied.clear()

    # ---- requests from MQTT and the broker's retained state -----------

    def request(
        self,
        station: Station | None,
        cp_id: str,
        connector_id: int,
        limit: float | None,
        speaks: bool = True,
    ) -> None:
        """`speaks`: False on an instance that neither holds the station nor
        speaks for stations held nowhere (README "Several instances"): it only remembers the
        limit, for when the station connects to it."""
        if (
            limit is not None
            and station is not None
            and self._in_force(station, connector_id, limit)
        ):
            log.debug(
                "%s: %s W on connector %d is already in force; not sent again",
                cp_id,
                dp.tidy_number(limit),
                connector_id,
            )
            return
        self.store.set(cp_id, connector_id, limit)
        if not speaks:
            return
        self._save(cp_id)
        self.shared.own_limit_changed(cp_id)
        if connector_id and self.shared.shares(cp_id, connector_id):
            # Its group sends its limit: this one is a cap on its share.
            return
        if station is None:
            log.warning(
                "%s: not connected; the limit (%s W on connector %d) is kept and applied "
                "when it connects",
                cp_id,
                limit,
                connector_id,
            )
            return
        self._schedule(station, connector_id)

    def _schedule(self, station: Station, connector_id: int, force: bool = False) -> None:
        """Apply the connector's latest limit soon; coalesced with a waiting one."""
        scheduled = self._of(station).scheduled
        if connector_id in scheduled:
            scheduled[connector_id] = scheduled[connector_id] or force
            return
        scheduled[connector_id] = force
        station.spawn(self._apply_scheduled(station, connector_id))

    async def _apply_scheduled(self, station: Station, connector_id: int) -> None:
        scheduled = self._of(station).scheduled
        started = False
        try:
            await station.learned.wait()  # the unit and stack level depend on it
            lock = self._of(station).locks.setdefault(connector_id, asyncio.Lock())
            async with lock:
                # Requests from now on schedule another pass (whose entry this
                # pass must then leave alone).
                started = True
                force = scheduled.pop(connector_id, False)
                await self._apply_locked(station, connector_id, None if force else "latest")
        finally:
            if not started:  # cancelled while waiting: the station is gone
                scheduled.pop(connector_id, None)

    def _in_force(self, station: Station, connector_id: int, limit: float) -> bool:
        """The station accepted this very limit on this connection, for the session
        running now, and no other value for the connector is waiting to be applied."""
        entry = self.store.get(station.id, connector_id)
        return (
            entry is not None
            and entry[0] == limit
            and self._of(station).applied.get(connector_id) == entry[1]
            and self._of(station).in_force.get(connector_id)
            == (limit, _session(station, connector_id))
        )

    def restore(self, cp_id: str, payload: bytes) -> bool:
        """Limits kept retained on the broker by an earlier run; True when taken."""
        limits = decode(payload) if payload else None
        if limits is None:
            if payload:
                log.warning("%s: ignored unreadable charging limits kept on the broker", cp_id)
            return False
        restored = self.store.restore(cp_id, limits)
        if restored:
            log.info("%s: restored the charging limits kept on the broker: %s", cp_id, limits)
        return restored

    def _save(self, cp_id: str) -> None:
        limits = self.store.of_station(cp_id)
        self._persist(state_name(cp_id), encode(limits) if limits else None)

    def transaction_seen(self, station: Station, connector_id: int) -> None:
        """A transaction we did not see start: under `auto` it gets its TxProfile,
        for stations that apply a TxDefaultProfile only to later sessions."""
        entry = self.store.get(station.id, connector_id)
        if (
            self.settings.ocpp_charging_profile_strategy == cp.AUTO
            and entry is not None
            and entry[0] is not None
        ):
            self._schedule(station, connector_id, force=True)

    # ---- applying ----------------------------------------------------

    async def apply_all(self, station: Station) -> None:
        """Send every limit of the station again: after a boot or a reconnect."""
        for connector_id in self.store.connectors(station.id):
            await self.apply(station, connector_id)

    async def apply(
        self, station: Station, connector_id: int, generation: int | None = None
    ) -> None:
        """Apply the connector's current limit.

        With a generation (a request from MQTT), skip when a newer value
        overtook it or this very value was already applied on this connection.
        """
        await station.learned.wait()  # the unit and stack level depend on it
        lock = self._of(station).locks.setdefault(connector_id, asyncio.Lock())
        async with lock:
            await self._apply_locked(station, connector_id, generation)

    async def _apply_locked(
        self, station: Station, connector_id: int, generation: int | str | None
    ) -> None:
        """`generation`: None applies whatever is current; "latest" too, unless it
        was applied on this connection already; a number only if still current."""
        entry = self.store.get(station.id, connector_id)
        if entry is None or (connector_id and self.shared.shares(station.id, connector_id)):
            return  # its group sends its limit (site_budgets.py)
        limit, current = entry
        if generation == "latest":
            generation = current
        if generation is not None and (
            generation != current or self._of(station).applied.get(connector_id) == current
        ):
            return
        try:
            if limit is None:
                await self._clear(station, connector_id, current)
            else:
                await self._set(station, connector_id, limit)
        except StationGone:
            return
        self._of(station).applied[connector_id] = current

    async def enforce(
        self,
        station: Station,
        connector_id: int,
        limit: float,
        purpose: str,
        phases: int | None = None,
        voltage: float | None = None,
    ) -> bool:
        """Site budgets: one profile of that purpose (a TxProfile for the session
        running, a TxDefaultProfile for later ones); True once Accepted.
        `phases`: numberPhases to send (a switch from three phases to one);
        `voltage`: the group's, which its shares in A were rounded at. A station
        not learned within its response timeout is a refusal, never a wait."""
        try:
            await asyncio.wait_for(station.learned.wait(), self.settings.ocpp_response_timeout)
        except TimeoutError:
            return False
        lock = self._of(station).locks.setdefault(connector_id, asyncio.Lock())
        async with lock:
            try:
                return await self._set(station, connector_id, limit, purpose, phases, voltage)
            except (StationGone, OCPPError):
                return False

    async def _call(self, station: Station, action: str, payload: dict[str, Any]) -> str:
        try:
            answer = await station.call_action(action, payload)
        except CallFailed as failure:
            if failure.status == DISCONNECTED:
                raise StationGone from None
            log.warning("%s: %s ended in %s: %s", station.id, action, failure.status, failure)
            return failure.status
        return str(answer.get("status", ""))

    async def _set(
        self,
        station: Station,
        connector_id: int,
        limit: float,
        purpose: str | None = None,
        phases: int | None = None,
        voltage: float | None = None,
    ) -> bool:
        """`purpose`: that one profile (site budgets); else the strategy's plan."""
        settings = self.settings
        try:
            if purpose is None:
                cp.check_target(settings.ocpp_charging_profile_strategy, connector_id)
        except InvalidCommand as error:
            # A limit kept from a run with another strategy.
            log.warning(
                "%s: the kept limit of %s W on connector %d is not applied: %s",
                station.id,
                limit,
                connector_id,
                error,
            )
            return False
        caps = station.capabilities
        if caps.lacks_smart_charging:
            log.warning(
                "%s: %s; trying anyway",
                station.id,
                station.smart_charging_off,
            )
        level = cp.stack_level(settings.ocpp_stack_level, caps.max_stack_level)
        rate = self._rate(
            station,
            connector_id,
            limit,
            caps.allows_power and not self._of(station).refuses_power,
            phases,
            voltage,
        )
        outcome, sent = await self._send_plan(station, connector_id, rate, level, purpose)
        if (outcome == "Rejected" or outcome.startswith("CallError:")) and rate.unit == "W":
            # Some stations list Power but take only A. Remembered for the
            # connection once A works.
            log.info("%s: a limit in W was refused; trying A", station.id)
            rate_a = self._rate(station, connector_id, limit, False, phases, voltage)
            outcome_a, sent_a = await self._send_plan(station, connector_id, rate_a, level, purpose)
            sent += sent_a
            if outcome_a == cp.ACCEPTED:
                self._of(station).refuses_power = True
                rate, outcome = rate_a, outcome_a
        if cp.below_minimum_current(rate):
            log.warning(
                "%s: the limit on connector %d is %s A; most vehicles stop charging below %s A",
                station.id,
                connector_id,
                rate.limit,
                cp.MIN_CHARGING_CURRENT_A,
            )
        now = now_ms()
        self._publish(dp.command_status(station.id, "SetChargingProfile", outcome, now))
        unit = f"{rate.limit} A on {rate.number_phases} phases" if rate.unit == "A" else "W"
        if outcome == cp.ACCEPTED:
            self._of(station).in_force[connector_id] = (limit, _session(station, connector_id))
            self._publish(cp.limit_datapoints(station.id, connector_id, limit, rate, now))
            log.info(
                "%s: limit %s W on connector %d in force (%s; %s; stack level %d)",
                station.id,
                dp.tidy_number(limit),
                connector_id,
                unit,
                ", ".join(sent),
                level,
            )
            return True
        else:
            self._of(station).in_force.pop(connector_id, None)
            log.warning(
                "%s: SetChargingProfile for %s W on connector %d ended in %s (%s; %s); the "
                "README's troubleshooting table lists what helps",
                station.id,
                dp.tidy_number(limit),
                connector_id,
                outcome,
                unit,
                ", ".join(sent),
            )
            return False

    def _rate(
        self,
        station: Station,
        connector_id: int,
        limit: float,
        power: bool,
        switched: int | None = None,
        group_voltage: float | None = None,
    ) -> cp.Rate:
        """`switched`: the phases a site budget chose, numberPhases in W too;
        `group_voltage`: a site budget's, so A and W agree with its rounding."""
        measured = station.electrical.get(connector_id)
        settings = self.settings
        voltage = measured.voltage if measured.voltage is not None else settings.ocpp_voltage
        if group_voltage is not None:
            voltage = group_voltage
        phases = measured.phases if measured.phases is not None else settings.ocpp_phases
        if switched is not None:
            rate = cp.to_rate(limit, power, voltage, switched)
            return cp.Rate(rate.unit, rate.limit, switched)
        return cp.to_rate(limit, power, voltage, phases)

    async def _send_plan(
        self,
        station: Station,
        connector_id: int,
        rate: cp.Rate,
        level: int,
        purpose: str | None = None,
    ) -> tuple[str, list[str]]:
        """Send the strategy's profiles with their fallbacks, or the one profile of
        `purpose`: (outcome, what was answered)."""
        transaction_id = station.transactions.running(connector_id) if connector_id else None
        statuses: list[str] = []
        sent: list[str] = []
        if purpose is None:
            steps = cp.plan(
                self.settings.ocpp_charging_profile_strategy, connector_id, transaction_id
            )
        elif purpose == cp.TX_PROFILE and transaction_id is None:
            return "NoTransaction", ["TxProfile: no transaction runs"]
        else:
            tx = transaction_id if purpose == cp.TX_PROFILE else None
            steps = [(cp.Target(purpose, connector_id, tx),)]
        for alternatives in steps:
            choices = [
                t
                for t in alternatives
                if not (
                    t.purpose == cp.CHARGE_POINT_MAX_PROFILE
                    and self._of(station).refuses_station_max
                    and len(alternatives) > 1
                )
            ]
            status = ""
            for index, target in enumerate(choices):
                status = await self._call(
                    station, "SetChargingProfile", station.profile_request(target, rate, level)
                )
                sent.append(f"{target.purpose} {rate.unit} {status}")
                if status not in cp.FALLBACK_STATUSES or index == len(choices) - 1:
                    break
                if target.purpose == cp.CHARGE_POINT_MAX_PROFILE:
                    # Remembered for this connection: no point asking again.
                    self._of(station).refuses_station_max = True
                log.info(
                    "%s: %s answered %s; falling back to %s",
                    station.id,
                    target.purpose,
                    status,
                    choices[index + 1].purpose,
                )
            statuses.append(status)
        return cp.combined_outcome(statuses), sent

    async def _clear(self, station: Station, connector_id: int, generation: int) -> None:
        statuses = [
            await self._call(station, "ClearChargingProfile", station.clear_request(profile_id))
            for profile_id in cp.clear_ids(
                self.settings.ocpp_charging_profile_strategy, connector_id
            )
        ]
        outcome = cp.combined_clear_outcome(statuses)
        now = now_ms()
        self._publish(dp.command_status(station.id, "ClearChargingProfile", outcome, now))
        self._of(station).in_force.pop(connector_id, None)
        if outcome in (cp.ACCEPTED, "Unknown"):
            # Unknown: none of our profiles was there, so none is in force.
            self._publish(cp.limit_datapoints(station.id, connector_id, None, None, now))
            log.info("%s: limit on connector %d cleared (%s)", station.id, connector_id, outcome)
            if self.store.cleared(station.id, connector_id, generation):
                self._save(station.id)
        else:
            log.warning(
                "%s: clearing the limit on connector %d ended in %s; retried on reconnect",
                station.id,
                connector_id,
                outcome,
            )
