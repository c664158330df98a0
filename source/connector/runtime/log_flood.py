"""Collapse floods of the same WARNING or ERROR, on the console and on `<name>/logs`.

One bad station or one wrong map can make the connector log the same
problem hundreds of times a second; every line is a retained publish and a
console write. Records are "the same" when they share logger, level and
message template (the `%s` text before its arguments), since the arguments
of a flood differ (values, timestamps). Each template may log LOG_FLOOD_BURST
lines per LOG_FLOOD_WINDOW seconds; the rest are suppressed, and when the
window ends, one line at the same level says how many.

One guard is added to every handler: the decision is kept on the record, so
a record is counted once however many handlers see it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

LOG_FLOOD_WINDOW = 1.0  # s
LOG_FLOOD_BURST = 5  # lines per template and window
# Templates tracked at most; a library that logs preformatted text could
# otherwise grow this without bound.
MAX_TEMPLATES = 1000
_DECISION = "_flood_guard_passed"

Key = tuple[str, int, str]


@dataclass
class _Window:
    started: float
    count: int = 0
    suppressed: int = 0


class LogFloodGuard(logging.Filter):
    def __init__(
        self,
        window: float = LOG_FLOOD_WINDOW,
        burst: int = LOG_FLOOD_BURST,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__()
        self.window = window
        self.burst = burst
        self._clock = clock
        self._windows: dict[Key, _Window] = {}
        # Records come from the event loop and from paho's thread.
        self._lock = threading.Lock()

    def filter(self, record: logging.LogRecord) -> bool:
        decided = record.__dict__.get(_DECISION)
        if decided is not None:
            return bool(decided)
        passed = record.levelno < logging.WARNING or self._admit(record)
        record.__dict__[_DECISION] = passed
        return passed

    def _admit(self, record: logging.LogRecord) -> bool:
        key = (record.name, record.levelno, str(record.msg))
        now = self._clock()
        with self._lock:
            window = self._windows.get(key)
            if window is None or (now - window.started >= self.window and not window.suppressed):
                if window is None and len(self._windows) >= MAX_TEMPLATES:
                    self._forget_idle(now)
                window = self._windows[key] = _Window(now)
            window.count += 1
            if window.count <= self.burst:
                return True
            window.suppressed += 1
            return False

    def flush(self) -> None:
        """Say how many lines each ended window suppressed. Called about once a window."""
        now = self._clock()
        summaries: list[tuple[Key, int]] = []
        with self._lock:
            for key, window in self._windows.items():
                if window.suppressed and now - window.started >= self.window:
                    summaries.append((key, window.suppressed))
                    # A new window starts: a flood that goes on is reported again.
                    self._windows[key] = _Window(now)
            self._forget_idle(now)
        for (name, level, template), count in summaries:
            record = logging.getLogger(name).makeRecord(
                name,
                level,
                "(log_flood)",
                0,
                "suppressed %d more lines like this in %.0f s: %s",
                (count, self.window, template),
                None,
            )
            record.__dict__[_DECISION] = True
            logging.getLogger(name).handle(record)

    def _forget_idle(self, now: float) -> None:
        idle = [
            key
            for key, window in self._windows.items()
            if not window.suppressed and now - window.started >= self.window
        ]
        for key in idle:
            del self._windows[key]

    def install(self, handlers: list[logging.Handler]) -> None:
        for handler in handlers:
            handler.addFilter(self)

    def uninstall(self, handlers: list[logging.Handler]) -> None:
        for handler in handlers:
            handler.removeFilter(self)
