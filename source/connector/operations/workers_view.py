"""One HTTP server for OCPP_WORKERS (README "Operations"): the supervisor's, showing every worker.

Each worker serves its own figures on a port of its own on 127.0.0.1; the
supervisor's server (HTTP_PORT) asks them all at each request:
- ready when every worker is;
- `/metrics`: every worker's series, each with a `worker` label (its
  instance number), parsed and written again by the official client, so
  the exposition stays valid (one HELP and TYPE per metric);
- the status page: every worker's stations, merged and paged here.
A worker that does not answer (it is starting again) is left out, and named
by /readyz.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterable
from typing import Any
from urllib.parse import quote

import aiohttp
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import Metric
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import Collector
from prometheus_client.samples import Sample

from connector.operations import status as page_status

TIMEOUT = aiohttp.ClientTimeout(total=5)


class _Fixed(Collector):
    def __init__(self, families: Iterable[Metric]) -> None:
        self._families = list(families)

    def collect(self) -> Iterable[Metric]:
        return self._families


class WorkersView:
    def __init__(self, ports: dict[int, int]) -> None:
        """`ports`: instance number -> its worker's HTTP port on 127.0.0.1."""
        self.ports = ports

    async def _get(self, port: int, path: str) -> tuple[int, bytes] | None:
        try:
            async with (
                aiohttp.ClientSession(timeout=TIMEOUT) as session,
                session.get(f"http://127.0.0.1:{port}{path}") as response,
            ):
                return response.status, await response.read()
        except (aiohttp.ClientError, TimeoutError, OSError):
            return None

    async def _all(self, path: str) -> dict[int, tuple[int, bytes] | None]:
        answers = await asyncio.gather(*(self._get(port, path) for port in self.ports.values()))
        return dict(zip(self.ports, answers, strict=True))

    async def ready(self) -> list[str]:
        problems = []
        for instance, answer in sorted((await self._all("/readyz")).items()):
            if answer is None:
                problems.append(f"worker {instance} does not answer")
            elif answer[0] != 200:
                reason = answer[1].decode("utf-8", "replace").strip().removeprefix("not ready: ")
                problems.append(f"worker {instance}: {reason}")
        return problems

    async def metrics_text(self) -> bytes:
        families: dict[str, Metric] = {}
        for instance, answer in sorted((await self._all("/metrics")).items()):
            if answer is None or answer[0] != 200:
                continue
            for family in text_string_to_metric_families(answer[1].decode("utf-8")):
                merged = families.get(family.name)
                if merged is None:
                    merged = families[family.name] = Metric(
                        family.name, family.documentation, family.type, family.unit
                    )
                for sample in family.samples:
                    labels = {**sample.labels, "worker": str(instance)}
                    merged.samples.append(
                        Sample(sample.name, labels, sample.value, sample.timestamp, sample.exemplar)
                    )
        registry = CollectorRegistry()
        registry.register(_Fixed(families.values()))
        return generate_latest(registry)

    async def status(self, page: int, size: int, search: str, every: bool) -> dict[str, Any]:
        query = "/status.json?all=1&q=" + quote(search, safe="")
        parts: list[dict[str, Any]] = []
        connector: dict[str, Any] = {}
        groups: list[Any] = []
        for _, answer in sorted((await self._all(query)).items()):
            if answer is None or answer[0] != 200:
                continue
            data = json.loads(answer[1])
            parts.append(data["stations"])
            connector = connector or data["connector"]
            # Every instance computes the groups alike where it leads; the
            # leader's have its allocations.
            if not groups or any(g["allocations"] for g in data["groups"]):
                groups = data["groups"] if data["groups"] else groups
        stations = page_status.merge(parts, page, 100_000 if every else size, search)
        return {
            "connector": {**connector, "instance": None, "workers": len(self.ports)},
            "stations": stations,
            "groups": groups,
        }
