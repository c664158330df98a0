"""The operator's HTTP server (README "Operations"), with aiohttp, in the connector's event loop.

- `GET /healthz`: 200 while the process serves (never asks for a password:
  Docker's and Kubernetes' probes have none);
- `GET /readyz`: 200 once the OCPP server listens and the broker is
  connected, else 503 with the reasons;
- `GET /metrics`: Prometheus' text format (metrics.py);
- `GET /`: the status page (page.html, page.js, page.css: no asset from
  elsewhere), which polls `GET /status.json` every 2 s.
Everything is read-only: there is no other method and no other path.
HTTP_BASIC_AUTH guards every path but /healthz.

Stations come first: a port already in use is an ERROR, and the connector
runs on without its HTTP server.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
import logging
from collections.abc import Awaitable, Callable
from importlib import resources
from typing import Any, Protocol

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST

log = logging.getLogger(__name__)

PUBLIC = frozenset({"/healthz"})
LOOPBACK = frozenset({"127.0.0.1", "::1"})
ASSETS = {
    "/": ("page.html", "text/html"),
    "/page.js": ("page.js", "text/javascript"),
    "/page.css": ("page.css", "text/css"),
}
# Nothing from elsewhere, no frames, no inline script: a value a station chose
# (its id, its vendor) can never run as code on the page.
HEADERS = {
    "Content-Security-Policy": "default-src 'self'; frame-ancestors 'none'; form-action 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


class Source(Protocol):
    """What the server shows; the bridge (or the workers' supervisor) gives it."""

    async def ready(self) -> list[str]:
        """Why it is not ready; empty when it is."""
        ...

    async def metrics_text(self) -> bytes: ...

    async def status(self, page: int, size: int, search: str, every: bool) -> dict[str, Any]:
        """A page of stations; `every`: all that match, unpaged (the workers'
        supervisor asks each worker so)."""
        ...


def _asset(name: str) -> bytes:
    return resources.files("connector.operations").joinpath(name).read_bytes()


class HttpServer:
    def __init__(self, host: str, port: int, auth: tuple[str, str] | None, source: Source) -> None:
        self.host = host
        self.port = port
        self._auth = auth
        self._source = source
        self._runner: web.AppRunner | None = None
        self._assets = {path: (_asset(name), kind) for path, (name, kind) in ASSETS.items()}

    def _app(self) -> web.Application:
        app = web.Application(middlewares=[self._guard], client_max_size=1024)
        app.router.add_get("/healthz", self._healthz)
        app.router.add_get("/readyz", self._readyz)
        app.router.add_get("/metrics", self._metrics)
        app.router.add_get("/status.json", self._status)
        for path in self._assets:
            app.router.add_get(path, self._serve_asset)
        return app

    async def start(self) -> bool:
        """Listen; False (with an ERROR) when the port cannot be had."""
        runner = web.AppRunner(self._app(), access_log=None, handle_signals=False)
        await runner.setup()
        site = web.TCPSite(runner, self.host, self.port, backlog=128)
        try:
            await site.start()
        except OSError as error:
            await runner.cleanup()
            log.error(
                "HTTP_PORT %d on %s: %s; the connector runs on without its HTTP server "
                "(metrics, health, status page)",
                self.port,
                self.host or "*",
                error.strerror or error,
            )
            return False
        self._runner = runner
        log.info(
            "HTTP server on http://%s:%d/ (metrics, health, status page)", self.host, self.port
        )
        return True

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    # ---- handlers -------------------------------------------------------

    @web.middleware
    async def _guard(
        self,
        request: web.Request,
        handler: Callable[[web.Request], Awaitable[web.StreamResponse]],
    ) -> web.StreamResponse:
        if self._auth is not None and request.path not in PUBLIC and not self._allowed(request):
            response: web.StreamResponse = web.Response(
                status=401,
                text="who are you?\n",
                headers={"WWW-Authenticate": 'Basic realm="ocpp-connector", charset="UTF-8"'},
            )
        else:
            response = await handler(request)
        response.headers.update(HEADERS)
        return response

    def _allowed(self, request: web.Request) -> bool:
        assert self._auth is not None
        header = request.headers.get("Authorization", "")
        scheme, _, encoded = header.partition(" ")
        if scheme.lower() != "basic":
            return False
        try:
            given = base64.b64decode(encoded, validate=True)
        except (binascii.Error, ValueError):
            return False
        user, password = self._auth
        expected = f"{user}:{password}".encode()
        return hmac.compare_digest(given, expected)

    async def _healthz(self, request: web.Request) -> web.Response:
        return web.Response(text="ok\n")

    async def _readyz(self, request: web.Request) -> web.Response:
        problems = await self._source.ready()
        if problems:
            return web.Response(status=503, text="not ready: " + "; ".join(problems) + "\n")
        return web.Response(text="ready\n")

    async def _metrics(self, request: web.Request) -> web.Response:
        response = web.Response(body=await self._source.metrics_text())
        response.headers["Content-Type"] = CONTENT_TYPE_LATEST
        return response

    async def _status(self, request: web.Request) -> web.Response:
        query = request.query
        try:
            page = int(query.get("page", "1"))
            size = int(query.get("size", "100"))
        except ValueError:
            return web.Response(status=400, text="page and size are numbers\n")
        search = query.get("q", "")[:100]
        # Unpaged: for the workers' supervisor, on loopback only (it costs as
        # much as there are stations).
        every = query.get("all") == "1" and request.remote in LOOPBACK
        body = json.dumps(await self._source.status(page, size, search, every), allow_nan=False)
        return web.Response(body=body.encode(), content_type="application/json")

    async def _serve_asset(self, request: web.Request) -> web.Response:
        body, kind = self._assets[request.path]
        return web.Response(body=body, content_type=kind, charset="utf-8")
