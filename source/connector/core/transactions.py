"""Pure: the sessions a station runs, by transaction id.

Ids are ours on 1.6 (ints), the station's on 2.x (strings).

Bounded, so a station that never ends its sessions (or invents ids) cannot
grow memory without end: the oldest are forgotten first.
"""

from __future__ import annotations

MAX_TRACKED = 64

TransactionId = int | str


class Transactions:
    def __init__(self, limit: int = MAX_TRACKED) -> None:
        self._limit = limit
        # transactionId -> connectorId (EVSE id on 2.x), oldest first.
        self._connectors: dict[TransactionId, int] = {}

    def __contains__(self, transaction_id: object) -> bool:
        return transaction_id in self._connectors

    def track(self, transaction_id: TransactionId, connector_id: int) -> None:
        """A session runs (or goes on) on the connector; it is the newest now."""
        self._connectors.pop(transaction_id, None)
        self._connectors[transaction_id] = connector_id
        while len(self._connectors) > self._limit:
            del self._connectors[next(iter(self._connectors))]

    def connector_of(self, transaction_id: TransactionId) -> int | None:
        return self._connectors.get(transaction_id)

    def end(self, transaction_id: TransactionId) -> int | None:
        """The session ended; the connector it ran on, if known."""
        return self._connectors.pop(transaction_id, None)

    def running(self, connector_id: int) -> TransactionId | None:
        """The newest session known on the connector, if any."""
        for transaction_id, connector in reversed(self._connectors.items()):
            if connector == connector_id:
                return transaction_id
        return None
