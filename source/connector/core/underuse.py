"""Pure: power a car leaves unused, given to the others (README "Sharing a supply").

A connector whose measured power stays more than 10 % and 500 W below its
allocation for 60 s (a car that is full, or limits itself) is capped at its
measured power plus 500 W (at least its minimum). When its measured power
comes within half of that margin of the cap (closer than the reading that set
it, so one reading cannot set and clear it), the cap goes, and it gets its
share back.
"""

from __future__ import annotations

from dataclasses import dataclass

MARGIN_W = 500.0
SHARE = 0.9
HOLD_S = 60.0


@dataclass
class Underuse:
    """One connector's state; `seen` is fed every measured power."""

    below_since: float | None = None
    cap_w: float | None = None

    def seen(self, measured_w: float, allocation_w: float, min_w: float, now: float) -> bool:
        """True when the cap changed (the group should rebalance)."""
        if self.cap_w is not None:
            if measured_w >= self.cap_w - MARGIN_W / 2:
                self.cap_w = None
                self.below_since = None
                return True
            return False
        if (
            allocation_w > 0
            and measured_w < allocation_w * SHARE
            and (measured_w < allocation_w - MARGIN_W)
        ):
            if self.below_since is None:
                self.below_since = now
            elif now - self.below_since >= HOLD_S:
                self.cap_w = max(measured_w + MARGIN_W, min_w)
                return True
        else:
            self.below_since = None
        return False
