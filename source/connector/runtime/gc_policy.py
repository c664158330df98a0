"""Garbage collection tuned for thousands of long-lived connections.

CPython's full (oldest generation) collection scans every tracked object. At
1,500 stations that is a pause of 100-175 ms, and under a steady 1 Hz load it
came every few seconds: each value's objects live about a second, until the
next value replaces them, so they reach the oldest generation and make it
look as if it grew. Meanwhile every station waits; the pause was most of the
p99 latency (bench/fast_path.py).

Nearly all of those objects are freed by reference counting; the collector is
only needed for reference cycles, which are rare here. So:
- what start-up built (modules, compiled schemas, the ocpp library's tables)
  is frozen after start, and never scanned again;
- automatic collections clean the young generations only, as before;
- a full collection runs every FULL_COLLECTION_INTERVAL from the event loop,
  to free the cycles that grew old.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import time

log = logging.getLogger(__name__)

FULL_COLLECTION_INTERVAL = 600.0  # s
# Young generations as CPython's defaults; the oldest never by itself.
THRESHOLDS = (700, 10, 1_000_000_000)


def after_start() -> None:
    gc.collect()
    gc.freeze()
    gc.set_threshold(*THRESHOLDS)


async def run_full_collections(interval: float = FULL_COLLECTION_INTERVAL) -> None:
    while True:
        await asyncio.sleep(interval)
        started = time.perf_counter()
        freed = gc.collect()
        log.debug(
            "full garbage collection: %d objects freed in %.0f ms",
            freed,
            1000 * (time.perf_counter() - started),
        )
