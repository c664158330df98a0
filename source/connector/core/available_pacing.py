"""Pure: how often `available_datapoints` may go out again.

With thousands of stations, republishing it per new key costs O(keys²), and
the document is several MB that BEMCom's API reads in full each time: it is
republished at most once a second, no faster than 1 MB/s on average, and a
change always goes out within 5 s.
"""

from __future__ import annotations

MIN_INTERVAL = 1.0
BYTES_PER_SECOND = 1_000_000
MAX_INTERVAL = 5.0


def available_interval(size: int) -> float:
    """Seconds before available_datapoints may go out again after `size` bytes."""
    return min(MAX_INTERVAL, max(MIN_INTERVAL, size / BYTES_PER_SECOND))
