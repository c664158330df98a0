"""OCPP_WORKERS=N: N instances on one machine, sharing OCPP_PORT (README "Several instances").

Each worker is this program again, as instance CONNECTOR_INSTANCE + i (0 when
unset), with SO_REUSEPORT on the port, so the kernel spreads stations over
the workers and each worker uses a core. They act as one connector through
the broker like any other instances. This process only supervises:
- a worker that dies is started again after RESTART_DELAY s;
- SIGTERM or SIGINT is passed on to the workers, one after the other, and
  each stops gracefully (README "Reliability"); one still running after STOP_TIMEOUT s
  is killed;
- with no MQTT_BROKER_HOST, the embedded broker runs here, for all of them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
import sys
from pathlib import Path

from connector.mqtt.embedded_broker import EmbeddedBroker
from connector.operations.http_server import HttpServer
from connector.operations.workers_view import WorkersView
from connector.settings import Settings

log = logging.getLogger(__name__)

MAIN = Path(__file__).resolve().parents[1] / "main.py"
RESTART_DELAY = 1.0
STOP_TIMEOUT = 15.0


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Workers:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.first = settings.connector_instance or 0
        self._stop = asyncio.Event()
        self._processes: dict[int, asyncio.subprocess.Process] = {}
        self._env = dict(os.environ)
        self._http_ports: dict[int, int] = {}

    def request_stop(self) -> None:
        self._stop.set()

    async def run(self) -> None:
        broker: EmbeddedBroker | None = None
        if self.settings.embedded_broker:
            broker = EmbeddedBroker("127.0.0.1", self.settings.mqtt_broker_port)
            await broker.start()
            self._env["MQTT_BROKER_HOST"] = "127.0.0.1"
            self._env["MQTT_BROKER_PORT"] = str(broker.port)
            log.warning(
                "MQTT_BROKER_HOST is empty: started the embedded broker on 127.0.0.1:%d "
                "for the workers; it is for local trials only",
                broker.port,
            )
        count = self.settings.ocpp_workers
        log.info(
            "starting %d workers, instances %d to %d, on port %d",
            count,
            self.first,
            self.first + count - 1,
            self.settings.ocpp_port,
        )
        # One HTTP server, this one, for all: each worker serves on a port of its own on
        # 127.0.0.1, which the view asks (README "Operations").
        http: HttpServer | None = None
        if self.settings.http_port:
            self._http_ports = {self.first + i: _free_port() for i in range(count)}
            settings = self.settings
            http = HttpServer(
                settings.http_host,
                settings.http_port,
                settings.http_basic_auth,
                WorkersView(self._http_ports),
            )
            if not await http.start():
                http = None
        keepers = [asyncio.create_task(self._keep(self.first + i)) for i in range(count)]
        await self._stop.wait()
        # One after the other, the lowest instance last: the last one standing
        # knows it is, and sets <name>/status offline (README "Several instances").
        for instance in sorted(self._processes, reverse=True):
            process = self._processes[instance]
            if process.returncode is None:
                process.send_signal(signal.SIGTERM)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(process.wait(), STOP_TIMEOUT)
        await asyncio.gather(*keepers, return_exceptions=True)
        if http is not None:
            await http.stop()
        if broker is not None:
            await broker.stop()

    async def _keep(self, instance: int) -> None:
        """Run one worker; start it again when it dies, until we stop."""
        env = {**self._env, "CONNECTOR_INSTANCE": str(instance), "OCPP_WORKERS": "1"}
        port = self._http_ports.get(instance)
        env["HTTP_PORT"] = str(port) if port is not None else "0"
        env["HTTP_HOST"] = "127.0.0.1"
        env["HTTP_BASIC_AUTH"] = ""  # loopback only; the supervisor's server asks (not .env)
        while not self._stop.is_set():
            process = await asyncio.create_subprocess_exec(sys.executable, str(MAIN), env=env)
            self._processes[instance] = process
            waiting = asyncio.ensure_future(process.wait())
            stopping = asyncio.ensure_future(self._stop.wait())
            await asyncio.wait({waiting, stopping}, return_when=asyncio.FIRST_COMPLETED)
            if self._stop.is_set():
                stopping.cancel()
                try:
                    await asyncio.wait_for(waiting, STOP_TIMEOUT)
                except TimeoutError:
                    log.warning("worker %d did not stop in %s s; killed", instance, STOP_TIMEOUT)
                    process.kill()
                    await process.wait()
                return
            stopping.cancel()
            log.warning(
                "worker %d ended with code %s; starting it again in %s s",
                instance,
                process.returncode,
                RESTART_DELAY,
            )
            await asyncio.sleep(RESTART_DELAY)
