"""The only module that knows both sides: stations and BEMCom's MQTT.

It owns the lifecycle (start, run, graceful stop) and wires the parts:
stations (central_system.py), their set-up (station_setup.py), charging
limits (charging_control.py), transaction ids, and BEMCom's MQTT.
"""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from dataclasses import asdict, replace
from typing import Any
from urllib.parse import quote, unquote

from prometheus_client import generate_latest
from websockets.asyncio.server import ServerConnection

from connector import actuators
from connector.actuators import Actuator, Request, Route
from connector.core import charging_profiles as cp
from connector.core import commands as cmd
from connector.core import datapoints as dp
from connector.core import direct_topics
from connector.core.groups import GROUP_PREFIX, LIMIT_ACTUATOR
from connector.core.ha_discovery import station_object_id
from connector.core.key_budget import KeyBudget
from connector.core.limit_store import cp_id_of
from connector.core.secrets import redact_text
from connector.core.transaction_ids import TransactionIds
from connector.core.upstream import droppable, is_forwarded
from connector.mqtt.bemcom import Bemcom, MqttLogHandler
from connector.mqtt.cluster import Cluster
from connector.mqtt.direct import DirectTopics
from connector.mqtt.discovery import Discovery
from connector.mqtt.embedded_broker import EmbeddedBroker
from connector.mqtt.groups_link import GroupsLink
from connector.mqtt.hub import MqttHub
from connector.mqtt.mqtt_link import KEEPALIVE, MqttLink, MqttOptions
from connector.mqtt.state import StateStore
from connector.mqtt.upstream_store import UpstreamStore
from connector.operations import status as page_status
from connector.operations.http_server import HttpServer
from connector.operations.metrics import Metrics, Snapshot
from connector.runtime import gc_policy, log_redaction
from connector.runtime.log_flood import LogFloodGuard
from connector.settings import Settings, upstream_context
from connector.stations import central_system
from connector.stations.central_system import CentralSystem, ServerOptions
from connector.stations.charging_control import ChargingControl
from connector.stations.command_runner import CommandRunner
from connector.stations.site_budgets import STATE_GROUP_LIMIT, SiteBudgets
from connector.stations.station import Station, StationHooks, now_ms
from connector.stations.station_setup import StationSetup
from connector.stations.upstream import Upstream, UpstreamOptions
from connector.tls import client_context, server_context
from connector.versions import BY_NAME, VERSIONS, Version

log = logging.getLogger(__name__)

STATE_PREFIX = "state/"
STATE_TRANSACTION_ID = "last_transaction_id"
# Keep-alive toward the broker with several instances: a lost instance's will
# goes out within 1.5 of these, so its stations are reported within 30 s.
CLUSTER_KEEPALIVE = 10
# A retained record per OCPP 2.x station whose boot was accepted (README "OCPP 2.0.1 and 2.1
# stations").
STATE_BOOT_RECORD = "boot_records/"
# Wait for the retained datapoint map and state before accepting stations.
READY_TIMEOUT = 5.0
# SIGTERM ends within this many seconds (README "Reliability"), whatever stations do:
# they get CLOSE_TIMEOUT for their closing handshake, then their TCP
# connections are dropped; MQTT is flushed in what is left.
SHUTDOWN_TIMEOUT = 4.0
CLOSE_TIMEOUT = 1.0
CLOSE_GOING_AWAY = 1001
# The status page's answer is reused for this long (README "Operations").
STATUS_CACHE_SECONDS = 1.0


def boot_record_name(cp_id: str) -> str:
    return STATE_BOOT_RECORD + quote(cp_id, safe="")


def handshakes_per_address(settings: Settings) -> int:
    """OCPP_HANDSHAKE_SHARE_PER_ADDRESS of OCPP_MAX_CONNECTIONS; 0 (no limit) at 100 %."""
    share = settings.ocpp_handshake_share_per_address
    if share >= 100:
        return 0
    return max(1, settings.ocpp_max_connections * share // 100)


def loads_or_none(payload: bytes) -> Any:
    try:
        return json.loads(payload.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        return None


def valid_boot_record(payload: bytes) -> bool:
    """`{"ocpp": "2.0.1", "accepted": <ms>}`, as _on_boot writes it."""
    record = loads_or_none(payload)
    return (
        isinstance(record, dict)
        and record.get("ocpp") in BY_NAME
        and isinstance(record.get("accepted"), int)
        and not isinstance(record.get("accepted"), bool)
        and record["accepted"] > 0
    )


class Bridge:
    def __init__(self, settings: Settings, version: str) -> None:
        self.settings = settings
        self.version = version
        self.instance = settings.connector_instance
        # OCPP_CONFIG, and those offered with direct topics (README "Direct topics").
        self.actuators = settings.ocpp_config + tuple(
            name
            for name, actuator in actuators.ACTUATORS.items()
            if actuator.with_direct_topics
            and settings.direct_topics
            and name not in settings.ocpp_config
        )
        # How each kind of actuator is carried out (actuators.Route).
        self._routes = {
            Route.COMMAND: self._command,
            Route.LIMIT: self._limit,
            Route.CLEAR: self._clear,
            Route.LOCAL: self._local,
        }
        self.transaction_ids = TransactionIds(instance=self.instance)
        # Several instances (README "Several instances"): each keeps its own last id.
        self._state_transaction_id = STATE_TRANSACTION_ID + (
            f"@{self.instance}" if self.instance is not None else ""
        )
        self.cluster: Cluster | None = None
        self._presence: MqttLink | None = None
        self.charging = ChargingControl(settings, self._publish, self._persist)
        # Site budgets (README "Sharing a supply"): only with OCPP_GROUPS.
        self.site: SiteBudgets | None = None
        if settings.ocpp_groups.by_name:
            self.site = SiteBudgets(
                settings.ocpp_groups,
                settings,
                self.charging,
                self._publish,
                self._persist,
                lambda cp_id: self._holder(cp_id)[0],  # ours to act on
                lambda key: self.mqtt.latest(key) if self.mqtt is not None else None,
            )
            self.charging.shared = self.site
        self.commands = CommandRunner(self._publish)
        self._boot_records: set[str] = set()
        self.setup = StationSetup(
            settings, self.charging, self.commands, self._boot_records.__contains__
        )
        self.broker: EmbeddedBroker | None = None
        # The broker connection, and its faces (mqtt/face.py).
        self.mqtt: MqttHub | None = None
        self.bemcom: Bemcom | None = None
        self.state: StateStore | None = None
        # A station's own backend (README "Keeping a station's own backend").
        self.upstreams: UpstreamStore | None = None
        self._upstream_options: UpstreamOptions | None = None
        self._upstream_of: dict[str, Upstream] = {}
        self._forgetting: set[asyncio.Task[None]] = set()
        self._status_cache: dict[tuple[int, int, str, bool], tuple[float, dict[str, Any]]] = {}
        self.central: CentralSystem | None = None
        self._log_handler: MqttLogHandler | None = None
        self._log_flood = LogFloodGuard()
        self._guarded_handlers: list[logging.Handler] = []
        self._hooks: StationHooks | None = None
        # Operations (README "Operations"): each station as last seen here,
        # the metrics, and the HTTP server that shows them.
        self.presence: dict[str, page_status.Presence] = {}
        self.metrics = Metrics(self._snapshot)
        self.http: HttpServer | None = None
        self._tasks: list[asyncio.Task[Any]] = []
        self._stop = asyncio.Event()

    # ---- lifecycle --------------------------------------------------

    async def start(self) -> None:
        settings = self.settings
        log_redaction.install()
        host = settings.mqtt_broker_host
        if settings.embedded_broker:
            host = "127.0.0.1"
            self.broker = EmbeddedBroker(host, settings.mqtt_broker_port)
            await self.broker.start()
            log.warning(
                "MQTT_BROKER_HOST is empty: started the embedded broker on %s:%d. It is "
                "for local trials only; set MQTT_BROKER_HOST to use a real broker.",
                host,
                self.broker.port,
            )
        port = self.broker.port if self.broker else settings.mqtt_broker_port
        self._start_mqtt(host, port, asyncio.get_running_loop())
        mqtt = self.mqtt
        assert mqtt is not None and self.bemcom is not None
        level = logging.DEBUG if settings.debug else logging.INFO
        self._log_handler = MqttLogHandler(mqtt.link, self.bemcom.topic_logs, level, self.instance)
        logging.getLogger().addHandler(self._log_handler)
        # The console and <name>/logs alike collapse floods of one message.
        self._guarded_handlers = list(logging.getLogger().handlers)
        self._log_flood.install(self._guarded_handlers)
        # <name>/logs carries INFO and above (DEBUG with DEBUG=TRUE) of our own
        # loggers, whatever the root logger's level.
        logging.getLogger("connector").setLevel(level)
        mqtt.start()
        try:
            await asyncio.wait_for(mqtt.ready.wait(), READY_TIMEOUT)
        except TimeoutError:
            log.warning(
                "MQTT broker %s:%d not reachable yet; serving stations anyway, values "
                "are queued until it is",
                host,
                port,
            )
        self.central = CentralSystem(
            settings.ocpp_host,
            settings.ocpp_port,
            self._make_station,
            self._on_connect,
            self._on_disconnect,
            ServerOptions(
                max_message_size=settings.ocpp_max_message_size,
                max_connections=settings.ocpp_max_connections,
                max_handshakes_per_address=handshakes_per_address(settings),
                ping_interval=settings.ocpp_ping_interval,
                allowed=settings.ocpp_allowed_charge_points,
                passwords=settings.ocpp_basic_auth,
                handshake_timeout=central_system.HANDSHAKE_TIMEOUT,
                compression=settings.ocpp_compression,
                subprotocols=settings.ocpp_versions,
                reuse_port=self.instance is not None,
                ssl_context=(
                    server_context(
                        settings.ocpp_tls_cert, settings.ocpp_tls_key, settings.ocpp_tls_ca
                    )
                    if settings.ocpp_tls_cert
                    else None
                ),
            ),
        )
        await self.central.start()
        if settings.http_port:
            self.http = HttpServer(
                settings.http_host, settings.http_port, settings.http_basic_auth, self
            )
            if not await self.http.start():
                self.http = None
        self._tasks = [
            asyncio.create_task(mqtt.run()),
            asyncio.create_task(self._run_log_flood_summaries()),
        ]
        if self.site is not None:
            mqtt.offer_actuators(self.site.actuator_keys(), None)
            self._tasks.append(asyncio.create_task(self.site.run()))
        if self.cluster is not None and mqtt.ready.is_set():  # the retained claims are in
            self.cluster.claims_of_earlier_run()

    def _start_mqtt(self, host: str, port: int, loop: asyncio.AbstractEventLoop) -> None:
        """The hub, and the faces the settings ask for, in the order they hear messages."""
        settings = self.settings
        mqtt = self.mqtt = MqttHub(
            settings.connector_name,
            host,
            port,
            loop,
            MqttOptions(
                username=settings.mqtt_broker_username,
                password=settings.mqtt_broker_password,
                tls_context=client_context(settings.mqtt_tls_ca) if settings.mqtt_tls else None,
                max_queued=settings.mqtt_max_queued,
                # The embedded broker speaks MQTT 3.1.1 only; no refused MQTT 5 first.
                mqtt5=not settings.embedded_broker,
                will=(f"{settings.connector_name}/status", b"offline"),
                keepalive=CLUSTER_KEEPALIVE if self.instance is not None else KEEPALIVE,
            ),
            KeyBudget(settings.ocpp_max_keys_per_station, settings.ocpp_max_key_bytes_per_station),
        )
        self.state = StateStore(mqtt, self._on_state)
        mqtt.attach(self.state)
        if settings.ocpp_upstream_url:
            forwarded = settings.ocpp_upstream_stations
            self.upstreams = UpstreamStore(
                mqtt,
                self._holds_upstream,
                lambda cp_id: is_forwarded(forwarded, cp_id),
                droppable,
            )
            mqtt.attach(self.upstreams)
            self._upstream_options = self._make_upstream_options()
        if self.instance is not None:
            self._start_cluster(mqtt, host, port, loop)
            if self.site is not None and self.cluster is not None:
                site = self.site
                link = GroupsLink(
                    mqtt, self.instance, site.on_report, site.on_apply, site.on_result
                )
                mqtt.attach(link)
                site.join(self.cluster, link)
        if settings.direct_topics:
            mqtt.attach(DirectTopics(mqtt, self._on_actuator))
        self.bemcom = Bemcom(
            mqtt, self.version, self._on_actuator, settings.heartbeat_interval, self.instance
        )
        mqtt.attach(self.bemcom)
        # Its entities read the direct topics.
        if settings.homeassistant_discovery and settings.direct_topics:
            prefix = settings.homeassistant_discovery_prefix
            mqtt.attach(Discovery(mqtt, prefix, self.actuators, settings.ocpp_groups))

    def _make_upstream_options(self) -> UpstreamOptions:
        settings = self.settings
        url = settings.ocpp_upstream_url
        if settings.ocpp_upstream_basic_auth and url.startswith("ws:"):
            log.warning(
                "OCPP_UPSTREAM_BASIC_AUTH is sent over ws://, unencrypted: use a wss:// "
                "OCPP_UPSTREAM_URL (Security Profile 2)"
            )
        return UpstreamOptions(
            url=url,
            passwords=settings.ocpp_upstream_basic_auth,
            ssl_context=upstream_context(settings) if url.startswith("wss:") else None,
            deny=settings.ocpp_upstream_deny,
            response_timeout=settings.ocpp_response_timeout,
            max_message_size=settings.ocpp_max_message_size,
            ping_interval=settings.ocpp_ping_interval,
            max_frames_per_second=settings.ocpp_max_frames_per_second,
        )

    def _holds_upstream(self, cp_id: str) -> bool:
        station = self._station(cp_id)
        return station is not None and station.upstream is not None

    def _start_cluster(
        self, mqtt: MqttHub, host: str, port: int, loop: asyncio.AbstractEventLoop
    ) -> None:
        assert self.instance is not None
        name = self.settings.connector_name
        # The main connection's options, with a will of its own (one per connection).
        presence_options = replace(
            mqtt.link.options, will=(f"{name}/instances/{self.instance}", b"offline")
        )
        self._presence = MqttLink(
            host,
            port,
            f"{name}-presence-{self.instance}-{uuid.uuid4().hex[:6]}",
            loop,
            lambda: self.cluster.announce() if self.cluster is not None else None,
            lambda topic, payload, retained: None,
            presence_options,
        )
        self.cluster = Cluster(mqtt, self.instance, self._presence, self._lost, self._gone)
        mqtt.attach(self.cluster)
        self._presence.start()

    def request_stop(self) -> None:
        self._stop.set()

    async def run(self) -> None:
        await self.start()
        gc_policy.after_start()
        self._tasks.append(asyncio.create_task(gc_policy.run_full_collections()))
        try:
            await self._stop.wait()
        finally:
            await self.stop()

    async def stop(self) -> None:
        """Close stations (1001), publish them disconnected, flush MQTT; all of it
        within SHUTDOWN_TIMEOUT."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + SHUTDOWN_TIMEOUT
        if self.cluster is not None:
            self.cluster.goodbye()
        elif self.mqtt is not None:
            # A single instance is the connector: it goes offline with it.
            self.mqtt.publish(self.mqtt.topic_status, b"offline", qos=1, retain=True)
        if self.central is not None:
            stations = list(self.central.stations.values())
            self.central.stations.clear()  # their ends are reported here, not twice
            closing = asyncio.gather(
                *(s.close(CLOSE_GOING_AWAY, "central system shutting down") for s in stations),
                return_exceptions=True,
            )
            try:
                await asyncio.wait_for(closing, CLOSE_TIMEOUT)
            except TimeoutError:
                # A station that does not answer the close (or floods us) must
                # not hold the shutdown: its TCP connection is dropped.
                for station in stations:
                    station.abort()
            for station in stations:
                self._publish(dp.connected(station.id, False, now_ms()))
            await self.central.stop(CLOSE_TIMEOUT / 2)
        for task in self._tasks:
            task.cancel()
        if self.http is not None:
            await self.http.stop()
        if self.mqtt is not None:
            flushed = await self.mqtt.link.flush(max(0.0, deadline - loop.time()))
            if not flushed:
                log.warning("MQTT: %d messages not delivered at shutdown", self.mqtt.link.unacked)
            self._log_flood.flush()
            self._log_flood.uninstall(self._guarded_handlers)
            if self._log_handler is not None:
                logging.getLogger().removeHandler(self._log_handler)
            self.mqtt.stop()
        if self._presence is not None:
            await self._presence.flush(max(0.1, deadline - loop.time()))
            self._presence.stop()
        if self.broker is not None:
            await self.broker.stop()

    async def _run_log_flood_summaries(self) -> None:
        while True:
            await asyncio.sleep(self._log_flood.window)
            self._log_flood.flush()

    # ---- stations ----------------------------------------------------

    def _publish(self, datapoints: list[dp.Datapoint]) -> None:
        assert self.mqtt is not None
        self.mqtt.publish_datapoints(datapoints)

    def _make_station(self, cp_id: str, connection: ServerConnection, version: Version) -> Station:
        # One StationHooks for all stations: they are the same for each.
        if self._hooks is None:
            self._hooks = self._station_hooks()
        station: Station = version.station_class(cp_id, connection, self._hooks)
        return station

    def _station_hooks(self) -> StationHooks:
        return StationHooks(
            publish=self._publish,
            next_transaction_id=self._next_transaction_id,
            heartbeat_interval=self.settings.ocpp_heartbeat_interval,
            response_timeout=self.settings.ocpp_response_timeout,
            on_raw_frame=self._on_raw_frame if self.settings.send_raw_message_to_db else None,
            on_answered=lambda station, action, ok: self.metrics.frame(
                station.version.name, action, ok
            ),
            on_refused=lambda station: self.metrics.refused(station.version.name),
            on_called=lambda station, action, status, seconds: self.metrics.call(
                station.version.name, action, status, seconds
            ),
            on_boot=self._on_boot,
            on_connector=self._offer_connector_actuators,
            on_transaction_seen=self.charging.transaction_seen,
            on_session=self.site.session if self.site is not None else None,
            energy_monotonic=self.settings.ocpp_energy_monotonic,
            max_clock_skew=self.settings.ocpp_max_clock_skew,
            id_tags=self.settings.ocpp_id_tags,
            max_frames_per_second=self.settings.ocpp_max_frames_per_second,
            mqtt_flowing=self.mqtt.link.flowing if self.mqtt is not None else None,
        )

    def _on_connect(self, station: Station) -> None:
        if self.cluster is not None:
            station.connection_id = uuid.uuid4().hex
            self.cluster.claim(station.id, station.connection_id)
        now = now_ms()
        self._publish(dp.connected(station.id, True, now))
        self._present(station, True, now)
        options = self._upstream_options
        if (
            options is not None
            and self.upstreams is not None
            and is_forwarded(self.settings.ocpp_upstream_stations, station.id)
        ):
            # A connection this one replaces sends nothing more to the backend.
            replaced = self._upstream_of.pop(station.id, None)
            if replaced is not None:
                replaced.close()
            station.upstream = self._upstream_of[station.id] = Upstream(
                station,
                options,
                self.upstreams.of(station.id),
                self._upstream_state,
                self._profiles_lost,
            )
        self._offer_actuators(station, None)
        self.setup.connected(station)
        if self.site is not None:
            self.site.connected(station)

    def _on_boot(self, station: Station) -> None:
        if not station.may_trigger_boot and station.id not in self._boot_records:
            # A restarted connector serves it as accepted if it does not boot.
            self._boot_records.add(station.id)
            record = {"ocpp": station.version.name, "accepted": now_ms()}
            self._persist(boot_record_name(station.id), record)
        self.charging.booted(station)
        self.setup.booted(station)
        if self.site is not None:
            self.site.booted(station)

    def _on_disconnect(self, station: Station) -> None:
        if self.cluster is not None:
            self.cluster.release(station.id, station.connection_id)
        now = now_ms()
        self._publish(dp.connected(station.id, False, now))
        self._present(station, False, now)
        if station.upstream is not None:
            station.upstream.close()
            if self._upstream_of.get(station.id) is station.upstream:
                del self._upstream_of[station.id]
            self._upstream_state(station, False)
        if self.site is not None:
            self.site.disconnected(station)

    def upstream_status(self) -> list[dict[str, Any]]:
        """Each forwarded station's backend connection: whether it is up, the
        messages kept for it, and its counters (upstream.UpstreamStats)."""
        if self.central is None:
            return []
        return [
            {
                "cp_id": station.id,
                "connected": station.upstream.connected,
                "kept": len(station.upstream.backlog),
                **asdict(station.upstream.stats),
            }
            for station in list(self.central.stations.values())
            if station.upstream is not None
        ]

    def _upstream_state(self, station: Station, connected: bool) -> None:
        self._publish(dp.upstream(station.id, connected, now_ms()))
        presence = self.presence.get(station.id)
        if presence is not None and self._station(station.id) is station:
            presence.upstream = connected

    # ---- operations (README "Operations") ------------------------------

    def _present(self, station: Station, connected: bool, now: int) -> None:
        """Each station as last seen here, for the status page."""
        previous = self.presence.get(station.id)
        connectors = tuple(sorted(c for c in station.connectors if c > 0))
        forwarded = self._upstream_options is not None and is_forwarded(
            self.settings.ocpp_upstream_stations, station.id
        )
        self.presence[station.id] = page_status.Presence(
            station.version.name,
            connected,
            now,
            connectors or (previous.connectors if previous is not None else ()),
            False if forwarded else None,  # until its backend connection says more
        )

    async def ready(self) -> list[str]:
        problems = []
        if self.central is None or not self.central.listening:
            problems.append("the OCPP server does not listen")
        if self.mqtt is None or not self.mqtt.link.connected.is_set():
            problems.append("the MQTT broker is not connected")
        return problems

    async def metrics_text(self) -> bytes:
        return generate_latest(self.metrics.registry)

    def _snapshot(self) -> Snapshot:
        stations: dict[str, int] = {version.name: 0 for version in VERSIONS}
        if self.central is not None:
            for station in self.central.stations.values():
                stations[station.version.name] += 1
        groups = {}
        if self.site is not None:
            for group in self.site.overview():
                groups[group.name] = (
                    group.limit_w,
                    group.allocated_w or 0.0,
                    group.measured_w or 0.0,
                )
        return Snapshot(
            stations=stations,
            mqtt=self.mqtt.link.stats() if self.mqtt is not None else {},
            upstream=self.upstream_status(),
            groups=groups,
        )

    async def status(self, page: int, size: int, search: str, every: bool) -> dict[str, Any]:
        """The status page's figures (operations/status.py), the same for a
        second: every open page asks every 2 s, and a client that asks in a
        loop costs the stations' event loop one answer a second."""
        key = (page, size, search, every)
        now = asyncio.get_running_loop().time()
        cached = self._status_cache.get(key)
        if cached is not None and now - cached[0] < STATUS_CACHE_SECONDS:
            return cached[1]
        if len(self._status_cache) > 64:
            self._status_cache.clear()
        answer = self._status_now(page, size, search, every)
        self._status_cache[key] = (now, answer)
        return answer

    def _status_now(self, page: int, size: int, search: str, every: bool) -> dict[str, Any]:
        latest = self.mqtt.latest if self.mqtt is not None else (lambda key: None)
        # A connected station's connectors as they are now.
        for cp_id, presence in self.presence.items():
            station = self._station(cp_id)
            if station is not None and presence.connected:
                presence.connectors = tuple(sorted(c for c in station.connectors if c > 0))
        return {
            "connector": {
                "name": self.settings.connector_name,
                "version": self.version,
                "instance": self.instance,
                "time": now_ms(),
            },
            "stations": (
                page_status.every(self.presence, latest, search)
                if every
                else page_status.page(self.presence, latest, page, size, search)
            ),
            "groups": [
                page_status.group_entry(g) for g in (self.site.overview() if self.site else [])
            ],
        }

    def _profiles_lost(self, station: Station) -> None:
        """The station's own backend set or cleared charging profiles: ours
        may be gone or overruled, so every limit is sent again."""
        self.charging.profiles_lost(station)
        station.spawn(self.charging.apply_all(station))
        if self.site is not None:
            self.site.profiles_lost(station)

    def _lost(self, cp_id: str) -> None:
        """A newer connection on another instance took the station: close ours,
        and say nothing (it stays connected, there)."""
        if self.central is not None:
            self.central.drop(cp_id, "replaced by a connection on another instance")

    def _gone(self, cp_id: str) -> None:
        """A dead instance's station that did not come back elsewhere."""
        log.warning("%s: its instance is gone and it did not reconnect; disconnected", cp_id)
        self._publish(dp.connected(cp_id, False, now_ms()))

    def _offer_connector_actuators(self, station: Station, connector_id: int) -> None:
        # Connector 0 is the station itself, already served by the station key.
        if 0 < connector_id <= cmd.MAX_CONNECTOR_ID:
            self._offer_actuators(station, connector_id)
            if self.site is not None:
                self.site.connector_seen(station, connector_id)

    def _offer_actuators(self, station: Station, connector_id: int | None) -> None:
        assert self.mqtt is not None
        for name in self.actuators:
            actuator = actuators.ACTUATORS[name]
            if actuator.offered_on(connector_id, station.version):
                key = cmd.actuator_key(station.id, name, connector_id)
                self.mqtt.offer_actuators([key], actuator.example_for(station.version))
                self.mqtt.offer_sensors(
                    actuator.result_keys(station.id, connector_id, station.version)
                )

    def _next_transaction_id(self) -> int:
        issued = self.transaction_ids.next()
        self._persist(self._state_transaction_id, issued)
        return issued

    def _on_raw_frame(self, cp_id: str, message: str) -> None:
        assert self.bemcom is not None
        self.bemcom.publish_raw(cp_id, message)

    def _persist(self, name: str, value: Any) -> None:
        assert self.state is not None
        self.state.publish(name, value)

    def _on_state(self, name: str, payload: bytes) -> None:
        """A retained state message (ours, from an earlier run or another instance).

        Anyone who may write the broker can write these: each is validated,
        and a bad one is ignored with a WARNING, never trusted into arithmetic."""
        if name.startswith(STATE_GROUP_LIMIT):
            if self.site is not None:
                self.site.restore(name[len(STATE_GROUP_LIMIT) :], payload)
            return
        if name.startswith(STATE_BOOT_RECORD):
            cp_id = unquote(name[len(STATE_BOOT_RECORD) :])
            if not payload:
                self._boot_records.discard(cp_id)
            elif valid_boot_record(payload):
                self._boot_records.add(cp_id)
            else:
                log.warning("%s: ignored an invalid boot record kept on the broker", cp_id)
            return
        # Our own last id, and the id of a single instance before (a floor for all).
        if name in (STATE_TRANSACTION_ID, self._state_transaction_id):
            issued = loads_or_none(payload)
            if self.transaction_ids.plausible(issued):
                self.transaction_ids.observe(issued)
            elif payload:
                log.warning(
                    "ignored %s%s kept on the broker: %s is no transaction id this connector "
                    "issued; ids go on from the clock",
                    STATE_PREFIX,
                    name,
                    payload[:40].decode("utf-8", "replace"),
                )
            return
        limited = cp_id_of(name)
        if limited is not None and self.charging.restore(limited, payload):
            # Kept limits that arrive late (the broker was away at start)
            # still reach a station that is already connected.
            station = self._station(limited)
            if station is not None:
                station.spawn(self.charging.apply_all(station))

    # ---- actuators from MQTT ----------------------------------------

    def _on_actuator(self, topic: str, key: str, payload: bytes) -> None:
        # Shortened, and without a secret an operator may have sent a station.
        shown = redact_text(payload[:200].decode("utf-8", "replace"))
        try:
            if key.startswith(GROUP_PREFIX):
                self._group_command(key, payload)
                return
            target = cmd.parse_actuator_key(key, self.actuators)
            value = cmd.parse_actuator_payload(payload)
            station, speaks = self._holder(target.cp_id)
            if not speaks:
                log.debug("%s: held by another instance, which acts on %s", target.cp_id, key)
            actuator = actuators.ACTUATORS[target.actuator]
            request = self._build(station, actuator, target, value)
            self._routes[actuator.route](station, speaks, actuator, target, request)
        except cmd.InvalidCommand as error:
            log.error("invalid command on %s, value %s: %s; nothing was sent", topic, shown, error)

    def _group_command(self, key: str, payload: bytes) -> None:
        """`@<group>__execute_set_group_limit`: every instance hears it."""
        group, _, actuator = key[len(GROUP_PREFIX) :].partition(dp.SEP)
        if self.site is None or actuator != LIMIT_ACTUATOR:
            raise cmd.InvalidCommand(f"{key} is no group actuator (OCPP_GROUPS)")
        self.site.command(group, cmd.parse_actuator_payload(payload))

    @staticmethod
    def _build(
        station: Station | None, actuator: Actuator, target: cmd.ActuatorKey, value: Any
    ) -> Request:
        """The request in the station's OCPP version. For a station that is not
        connected, a value valid in any version passes (it is kept or dropped
        later, with a WARNING); InvalidCommand names the problem otherwise."""
        versions = (station.version,) if station is not None else VERSIONS
        first: cmd.InvalidCommand | None = None
        for version in versions:
            try:
                return actuator.build(value, target.connector_id, version)
            except cmd.InvalidCommand as error:
                first = first or error
        assert first is not None
        raise first

    # ---- the routes of actuators.Route -------------------------------

    def _limit(
        self,
        station: Station | None,
        speaks: bool,
        actuator: Actuator,
        target: cmd.ActuatorKey,
        request: Request,
    ) -> None:
        """A charging limit: every instance remembers it (README "Several instances")."""
        limit = request.payload["limit"]
        connector_id = target.connector_id or 0
        if limit is not None:  # a clear is always possible, whatever the strategy
            cp.check_target(self.settings.ocpp_charging_profile_strategy, connector_id)
        self.charging.request(station, target.cp_id, connector_id, limit, speaks)

    def _clear(
        self,
        station: Station | None,
        speaks: bool,
        actuator: Actuator,
        target: cmd.ActuatorKey,
        request: Request,
    ) -> None:
        """The profiles this connector set, and the kept limit with them."""
        if speaks and self._connected(station, actuator, target, request):
            assert station is not None
            self.charging.request(station, target.cp_id, target.connector_id or 0, None)

    def _command(
        self,
        station: Station | None,
        speaks: bool,
        actuator: Actuator,
        target: cmd.ActuatorKey,
        request: Request,
    ) -> None:
        if speaks and self._connected(station, actuator, target, request):
            assert station is not None
            self.commands.submit(station, request, target.connector_id or None)

    def _local(
        self,
        station: Station | None,
        speaks: bool,
        actuator: Actuator,
        target: cmd.ActuatorKey,
        request: Request,
    ) -> None:
        """execute_forget_station: the connector's own retained topics."""
        if speaks:
            task = asyncio.create_task(self._forget(target.cp_id))
            self._forgetting.add(task)
            task.add_done_callback(self._forgetting.discard)

    async def _forget(self, cp_id: str) -> None:
        """What the broker keeps for the station goes, whatever this connector
        saw since its start: discovery configurations first, then the direct
        topics. A station still connected is announced again at once."""
        assert self.mqtt is not None
        settings = self.settings
        escaped = direct_topics.sensor_topic(f"{settings.connector_name}/direct/", f"{cp_id}__x")
        first = (
            [
                f"{settings.homeassistant_discovery_prefix}/+/ocpp_{station_object_id(cp_id)}/+/config"
            ]
            if settings.homeassistant_discovery
            else []
        )
        then = [escaped[: -len("/x")] + "/#"] if settings.direct_topics else []
        removed = await self.mqtt.forget_station(cp_id, first, then)
        if self._station(cp_id) is None:
            # Gone from available_datapoints and the status page; all new when it is back.
            self.mqtt.drop_keys(cp_id)
            self.presence.pop(cp_id, None)
        else:
            self.mqtt.announce_again(cp_id)
            log.info(
                "%s: forgotten: its retained topics (%d: direct topics, discovery) removed; "
                "it is connected, so it was announced again",
                cp_id,
                removed,
            )
            return
        log.info(
            "%s: forgotten: its retained topics (%d: direct topics, discovery) removed",
            cp_id,
            removed,
        )

    @staticmethod
    def _connected(
        station: Station | None, actuator: Actuator, target: cmd.ActuatorKey, request: Request
    ) -> bool:
        if station is None:
            log.warning(
                "%s: not connected; dropped %s, which is not kept for later: %s",
                target.cp_id,
                request.action,
                actuator.away,
            )
        return station is not None

    def _holder(self, cp_id: str) -> tuple[Station | None, bool]:
        """(our station, if we act on it; whether we speak for it).

        One instance: the station if connected, and always True. Several
        (README "Several instances"): every instance hears every command, and exactly one
        acts: the owner, or, for a station held nowhere, the leader, which
        keeps its limit on the broker and logs the WARNING. A station whose
        claim has not come back from the broker yet is not ours yet.
        """
        station = self._station(cp_id)
        cluster = self.cluster
        if cluster is None:
            return station, True
        if station is not None and cluster.owns(cp_id):
            return station, True
        if station is not None or cluster.held_elsewhere(cp_id):
            return None, False
        return None, cluster.is_leader

    def _station(self, cp_id: str) -> Station | None:
        # None before the OCPP server runs: a command heard that early is for
        # a station not connected yet (a limit is kept, the rest dropped).
        return self.central.stations.get(cp_id) if self.central is not None else None
