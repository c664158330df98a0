"""Pure tests of the log flood guard, with a clock the test moves."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import pytest

from connector.runtime.log_flood import LogFloodGuard


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[tuple[int, str]] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append((record.levelno, record.getMessage()))


@pytest.fixture
def setup() -> Iterator[tuple[logging.Logger, LogFloodGuard, Clock, list[Collect]]]:
    clock = Clock()
    guard = LogFloodGuard(window=1.0, burst=3, clock=clock)
    logger = logging.getLogger("connector.test_flood")
    logger.propagate = False
    logger.setLevel(logging.DEBUG)
    handlers = [Collect(), Collect()]  # the console and <name>/logs
    for handler in handlers:
        logger.addHandler(handler)
    guard.install(handlers)  # type: ignore[arg-type]
    yield logger, guard, clock, handlers
    for handler in handlers:
        logger.removeHandler(handler)
    logger.propagate = True


def test_a_flood_is_collapsed_with_a_count(setup: Any) -> None:
    logger, guard, clock, handlers = setup
    for n in range(50):
        logger.error("invalid command on %s: %s", "topic", n)
    logger.error("another problem")  # a different template passes
    for handler in handlers:
        assert [m for _, m in handler.lines] == [
            "invalid command on topic: 0",
            "invalid command on topic: 1",
            "invalid command on topic: 2",
            "another problem",
        ]
    guard.flush()  # the window has not ended: nothing yet
    assert len(handlers[0].lines) == 4
    clock.now += 1.0
    guard.flush()
    for handler in handlers:
        level, summary = handler.lines[-1]
        assert level == logging.ERROR
        assert summary.startswith("suppressed 47 more lines like this in 1 s")
        assert "invalid command on %s: %s" in summary
    guard.flush()
    assert len(handlers[0].lines) == 5
    # A new window lets lines through again.
    logger.error("invalid command on %s: %s", "topic", "later")
    assert handlers[1].lines[-1][1] == "invalid command on topic: later"


def test_info_and_slow_repeats_are_never_suppressed(setup: Any) -> None:
    logger, guard, clock, handlers = setup
    for n in range(20):
        logger.info("station %s connected", n)
    for n in range(10):
        logger.warning("slow warning %s", n)
        clock.now += 0.5
        guard.flush()
    messages = [m for _, m in handlers[0].lines]
    assert len(messages) == 30
    assert not any(m.startswith("suppressed") for m in messages)
