"""README "Operations": the status page in a real browser.

Debian's Chromium, headless, driven through its ChromeDriver over the W3C
WebDriver protocol (plain HTTP: no client library). The page must show a
station's values and limit, and a group's, change them without a reload,
and write nothing.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from connector.core.groups import parse_groups
from connector.simulator.core import SimulatorOptions
from connector.tests.helpers import Probe, StartConnector, StartStation, free_port

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
# As root, without a screen, on a machine whose network reaches no Google host.
ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


# Real Mosquitto (the Docker build runs only the tests without it).
pytestmark = pytest.mark.broker


class Browser:
    def __init__(self) -> None:
        self.port = free_port()
        self.driver = subprocess.Popen(
            [CHROMEDRIVER, f"--port={self.port}"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self.profile = tempfile.mkdtemp(prefix="chromium-")
        deadline = time.monotonic() + 20
        while True:
            try:
                self._request("GET", "/status")
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        options = {"binary": CHROMIUM, "args": [*ARGS, f"--user-data-dir={self.profile}"]}
        capabilities = {"alwaysMatch": {"goog:chromeOptions": options}}
        answer = self._request("POST", "/session", {"capabilities": capabilities})
        self.session = answer["value"]["sessionId"]

    def _request(self, method: str, path: str, body: Any = None) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.port}{path}",
            data=data,
            method=method,
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=60) as response:
            return json.loads(response.read())

    def open(self, url: str) -> None:
        self._request("POST", f"/session/{self.session}/url", {"url": url})

    def run(self, script: str, *args: Any) -> Any:
        """A function body run in the page; its return value."""
        answer = self._request(
            "POST", f"/session/{self.session}/execute/sync", {"script": script, "args": list(args)}
        )
        return answer["value"]

    def close(self) -> None:
        try:
            self._request("DELETE", f"/session/{self.session}")
        finally:
            self.driver.terminate()
            self.driver.wait(10)
            shutil.rmtree(self.profile, ignore_errors=True)


@pytest.fixture
def browser() -> Iterator[Browser]:
    if not os.path.exists(CHROMEDRIVER) or not os.path.exists(CHROMIUM):
        pytest.fail("chromium-driver is not installed: `make test` installs it from Debian")
    opened = Browser()
    yield opened
    opened.close()


# The text of one station's cell, by column name; None while it is not shown.
CELL = """
const [station, column] = arguments;
const headers = [...document.querySelectorAll('#stations thead th')].map(th => th.textContent);
const row = document.querySelector(`#stations tr[data-station="${station}"]`);
if (!row) return null;
return row.children[headers.indexOf(column)].textContent;
"""
NONE = "\u2013"  # what the page shows for no value
GROUP = """
const row = document.querySelector(`#groups tr[data-group="${arguments[0]}"]`);
return row ? [...row.children].map(td => td.textContent) : null;
"""


async def shown(browser: Browser, check: Callable[[], Any], timeout: float = 15.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = await asyncio.to_thread(check)
        if value:
            return value
        if time.monotonic() > deadline:
            page = await asyncio.to_thread(browser.run, "return document.body.innerText;")
            raise AssertionError(f"not shown in time; the page reads:\n{page}")
        await asyncio.sleep(0.2)


@pytest.mark.within(90)
async def test_the_page_shows_and_follows_the_site(
    start_connector: StartConnector,
    start_station: StartStation,
    probe: Probe,
    browser: Browser,
) -> None:
    port = free_port()
    groups = parse_groups('{"garage": {"max_w": 22000, "members": ["WB1"]}}')
    probe.map(actuators=["WB1__execute_send_charging_profile"])
    async with start_connector(http_port=port, http_host="127.0.0.1", ocpp_groups=groups) as bridge:
        options = SimulatorOptions(meter_interval=0, vendor="<b>Vendor</b>")
        async with start_station(bridge, "WB1", options=options) as station:
            await station.send_meter_values(1)
            await asyncio.to_thread(browser.open, f"http://127.0.0.1:{port}/")
            # A value a station chose is text, never markup.
            vendor = await shown(browser, lambda: browser.run(CELL, "WB1", "vendor"))
            assert vendor == "<b>Vendor</b>"
            assert (
                await asyncio.to_thread(browser.run, "return document.querySelector('b');") is None
            )
            assert await asyncio.to_thread(browser.run, CELL, "WB1", "state") == "connected"
            assert await asyncio.to_thread(browser.run, CELL, "WB1", "OCPP") == "1.6"
            assert await asyncio.to_thread(browser.run, CELL, "WB1", "status") == "Available"
            energy = await asyncio.to_thread(browser.run, CELL, "WB1", "energy")
            assert energy.endswith("kWh")
            group = await shown(browser, lambda: browser.run(GROUP, "garage"))
            assert group[0] == "garage" and group[1] == "22.00 kW"
            # Without a reload: a mark left on the page stays while values change.
            await asyncio.to_thread(browser.run, "window.mark = 'still here';")
            for _ in range(3):
                await station.send_meter_values(1, seconds=600)
            await shown(browser, lambda: browser.run(CELL, "WB1", "energy") != energy)
            probe.command(probe.actuator_topic("WB1__execute_send_charging_profile"), 7000)
            await shown(browser, lambda: browser.run(CELL, "WB1", "limit") not in (NONE, None))
            assert await asyncio.to_thread(browser.run, "return window.mark;") == "still here"
            # Nothing on the page writes: no form, and nothing but the search field to type in.
            controls = await asyncio.to_thread(
                browser.run,
                "return [...document.querySelectorAll('form, input, textarea, select')]"
                ".map(e => e.id);",
            )
            assert controls == ["search"]
        await shown(browser, lambda: browser.run(CELL, "WB1", "state") == "disconnected")
