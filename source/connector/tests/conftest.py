"""Fixtures only; what they are built from is in helpers.py.

- `mosquitto`: a real Mosquitto for the session; `name`: the test's own
  CONNECTOR_NAME; `probe`: an MQTT client that watches the test's topics.
- `start_connector(settings=None, **overrides)`: the connector on that broker,
  as an async context manager; overrides are Settings fields.
- `start_station(bridge, cp_id, version="1.6", options=None, ...)`: a
  simulated station of that OCPP version connected to it.

An `async def` test runs in a fresh event loop, bounded by TEST_TIMEOUT
seconds or by `@pytest.mark.within(seconds)`, so a hang fails instead of
blocking CI.
"""

from __future__ import annotations

import inspect
import uuid
from collections.abc import Iterator
from contextlib import AbstractAsyncContextManager
from dataclasses import replace
from typing import Any

import pytest

from connector.bridge import Bridge
from connector.settings import Settings
from connector.tests.helpers import (
    TEST_TIMEOUT,
    Mosquitto,
    Probe,
    StartConnector,
    StartStation,
    connector_settings,
    run,
    running_connector,
    simulated_station,
)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "within(seconds): bound of an async test (default 60 s)")


@pytest.hookimpl(tryfirst=True)
def pytest_pyfunc_call(pyfuncitem: pytest.Function) -> bool | None:
    """Runs an `async def` test in its own event loop, with a hard bound."""
    if not inspect.iscoroutinefunction(pyfuncitem.obj):
        return None
    marker = pyfuncitem.get_closest_marker("within")
    timeout = float(marker.args[0]) if marker else TEST_TIMEOUT
    arguments = {arg: pyfuncitem.funcargs[arg] for arg in pyfuncitem._fixtureinfo.argnames}
    run(pyfuncitem.obj(**arguments), timeout)
    return True


@pytest.fixture(scope="session")
def mosquitto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mosquitto]:
    broker = Mosquitto(tmp_path_factory.mktemp("mosquitto"))
    broker.start()
    yield broker
    broker.stop()


@pytest.fixture
def name() -> str:
    return f"test-{uuid.uuid4().hex[:10]}"


@pytest.fixture
def probe(mosquitto: Mosquitto, name: str) -> Iterator[Probe]:
    client = Probe(mosquitto.port, name)
    yield client
    client.close()


@pytest.fixture
def start_connector(mosquitto: Mosquitto, name: str) -> StartConnector:
    def start(
        settings: Settings | None = None, **overrides: Any
    ) -> AbstractAsyncContextManager[Bridge]:
        base = settings or connector_settings(name, mosquitto.port)
        return running_connector(replace(base, **overrides))

    return start


@pytest.fixture
def start_station() -> StartStation:
    return simulated_station
