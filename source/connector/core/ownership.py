"""Pure: which instance serves a station, decided by the broker's order (README "Several
instances").

Several instances share one broker and nothing else. An instance that
accepts a station publishes a claim on `<name>/owners/<cp>`; every instance
hears every claim, its own included, in the order the broker handled them.
That order is the same for all of them, so they agree without clocks:

- the latest claim in the broker's order owns the station;
- an instance whose own claim has not come back yet is not the owner: a
  claim heard meanwhile was handled before ours, and ours will win;
- an instance that hears another claim after its own has lost the station,
  and closes its connection (cluster.py first checks that the claim comes
  from a running instance that stands by it: see there).

So a station that moves while its old socket is half-open, or two instances
that accept the same id within milliseconds, end with exactly one owner, and
a command (heard by every instance between the same claims) is acted on by
exactly one. A release (the station disconnected) is a claim with no owner.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

# Instance numbers (CONNECTOR_INSTANCE) and connection ids as we make them.
MAX_INSTANCE = 63
MAX_CONNECTION_ID = 64


@dataclass(frozen=True)
class Claim:
    instance: int | None  # None: released, held nowhere
    connection: str  # one id per accepted connection


def encode(claim: Claim) -> bytes:
    return json.dumps({"instance": claim.instance, "connection": claim.connection}).encode()


def decode(payload: bytes) -> Claim | None:
    """A claim from the broker, or None when it is not one (an empty retained message)."""
    try:
        data = json.loads(payload.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        return None
    if not isinstance(data, dict) or not isinstance(data.get("connection"), str):
        return None
    if not 0 < len(data["connection"]) <= MAX_CONNECTION_ID:
        return None
    instance = data.get("instance")
    if instance is not None and (
        not isinstance(instance, int)
        or isinstance(instance, bool)
        or not 0 <= instance <= MAX_INSTANCE
    ):
        return None
    return Claim(instance, data["connection"])


class Ownership:
    """One instance's view: the latest claim heard per station, and its own."""

    def __init__(self, instance: int) -> None:
        self.instance = instance
        self.latest: dict[str, Claim] = {}
        # Our connections: cp -> (connection id, whether our claim came back).
        self._ours: dict[str, tuple[str, bool]] = {}

    def claim(self, cp_id: str, connection: str) -> Claim:
        """We accepted a connection; the claim to publish."""
        self._ours[cp_id] = (connection, False)
        return Claim(self.instance, connection)

    def release(self, cp_id: str, connection: str) -> Claim | None:
        """Our connection ended; the release to publish, unless another took over."""
        ours = self._ours.get(cp_id)
        if ours is None or ours[0] != connection:
            return None
        del self._ours[cp_id]
        latest = self.latest.get(cp_id)
        if latest is not None and latest.connection != connection:
            return None  # someone else's claim is the latest: leave it
        return Claim(None, connection)

    def heard(self, cp_id: str, claim: Claim) -> str:
        """A claim came from the broker. Returns what we must do:
        "lost" (another claim is the latest: close our connection once `lose`
        is called), "reassert" (publish our claim again: an older connection's
        release overwrote it), or ""."""
        self.latest[cp_id] = claim
        ours = self._ours.get(cp_id)
        if ours is None:
            return ""
        connection, confirmed = ours
        if claim.connection == connection:
            self._ours[cp_id] = (connection, True)
            return ""
        if not confirmed:
            return ""  # handled before our claim: ours is later and wins
        if claim.instance is None:
            return "reassert"
        return "lost"

    def lose(self, cp_id: str, connection: str) -> bool:
        """We gave the station up (after "lost"); False if that connection is gone already."""
        ours = self._ours.get(cp_id)
        if ours is None or ours[0] != connection:
            return False
        del self._ours[cp_id]
        return True

    def ours(self) -> dict[str, str]:
        """Our stations and their connection ids."""
        return {cp: connection for cp, (connection, _) in self._ours.items()}

    def our_claim(self, cp_id: str) -> Claim | None:
        ours = self._ours.get(cp_id)
        return Claim(self.instance, ours[0]) if ours is not None else None

    def owns(self, cp_id: str) -> bool:
        """We hold the station and our claim is the latest heard: we act on commands."""
        ours = self._ours.get(cp_id)
        return (
            ours is not None and ours[1] and self.latest.get(cp_id) == Claim(self.instance, ours[0])
        )

    def holder(self, cp_id: str) -> int | None:
        """The instance of the latest claim heard, or None when released or unknown."""
        claim = self.latest.get(cp_id)
        return claim.instance if claim is not None else None

    def held_by(self, instance: int) -> list[str]:
        return [cp for cp, claim in self.latest.items() if claim.instance == instance]
