"""Transaction ids unique across stations and restarts, within a signed int32.

Two sources make an id safe after a restart, even without a volume:
- the clock: ids never fall below the seconds since 2020, so a restarted
  connector starts above anything it issued at up to one id per second;
- the last id issued, kept retained on the broker and handed to `observe`.

Several instances (README "Several instances") need no shared counter, which an instance's
death could block: instance n issues only ids with id % 64 == n, above its
own last id and the clock. One id in 64 per instance still lasts until 2088
at up to one session a minute per instance, and above that the ids simply run
ahead of the clock.
"""

from __future__ import annotations

import time
from collections.abc import Callable

EPOCH_2020 = 1_577_836_800
INT32_MAX = 2**31 - 1
MAX_INSTANCES = 64
# A kept id must leave room for this many more, and may run at most AHEAD
# ahead of the clock: anyone who may write the broker's retained state could
# otherwise set 2147483647 and make every StartTransaction fail, across
# restarts. Ids run ahead of the clock only at more than one session a second
# (one per 64 s per instance with several): 2^30 is 34 years of that.
RESERVE = 2**24
AHEAD = 2**30


class TransactionIds:
    def __init__(self, clock: Callable[[], float] = time.time, instance: int | None = None) -> None:
        """`instance`: this process's CONNECTOR_INSTANCE, or None for a single instance."""
        self._clock = clock
        self._instance = instance
        self._last = self._clock_floor()

    def _clock_floor(self) -> int:
        return int(self._clock()) - EPOCH_2020

    def plausible(self, issued: object) -> bool:
        """Whether an id kept on the broker can be one we issued, with room to go on."""
        return (
            isinstance(issued, int)
            and not isinstance(issued, bool)
            and 0 < issued <= min(INT32_MAX - RESERVE, self._clock_floor() + AHEAD)
        )

    def observe(self, issued: int) -> None:
        """Raise the floor to an id issued earlier (e.g. by a previous run);
        an implausible one (see `plausible`) is ignored."""
        if self.plausible(issued):
            self._last = max(self._last, issued)

    @property
    def last(self) -> int:
        return self._last

    def next(self) -> int:
        candidate = max(self._last + 1, self._clock_floor())
        if self._instance is not None:
            # The next id of our residue class.
            candidate += (self._instance - candidate) % MAX_INSTANCES
        if candidate > INT32_MAX:
            # Reached only after 2088, or after two billion sessions.
            raise OverflowError("transaction ids exhausted the int32 range")
        self._last = candidate
        return candidate
