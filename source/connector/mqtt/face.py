"""One face of the connector on MQTT, behind one small interface.

BEMCom's protocol (bemcom.py), the direct topics (direct.py), Home Assistant
discovery (discovery.py), the connector's kept state (state.py) and the
coordination of several instances (cluster.py) are each a Face. The hub
(hub.py) owns the broker connection and the latest value of every key; it
subscribes to what each face asks for, hands each message to the faces until
one takes it, and fans every batch of datapoints out to them. A face that is
off is simply not attached: nothing asks whether it is on.

A face's constructor only stores what it is given; it acts once attached.
"""

from __future__ import annotations

from connector.core.datapoints import Datapoint


class Face:
    """The interface, and the null face: every method does nothing."""

    # Its `forget` goes before the other faces' (Home Assistant's configurations
    # before the state topics their entities read).
    forget_first = False

    def subscriptions(self) -> list[tuple[str, bool]]:
        """(topic filter, no_local) to subscribe to after each (re)connect.
        no_local: on MQTT 5 the broker keeps our own publishes there from us."""
        return []

    def connected(self) -> None:
        """After each (re)connect, once the subscriptions are asked for."""

    def message(self, topic: str, payload: bytes, retained: bool) -> bool:
        """A message on a subscribed topic: True when this face took it."""
        return False

    def datapoints(self, points: list[Datapoint], new_keys: list[str]) -> None:
        """A batch of values, all finite and within their station's budget;
        `new_keys`: those of them seen for the first time."""

    def forget(self, cp_id: str, keys: list[str]) -> int:
        """Remove what the face keeps on the broker for a station
        (execute_forget_station); `keys`: the station's keys. How many topics."""
        return 0

    async def run(self) -> None:
        """Work of its own for as long as the connector runs (a heartbeat, ...)."""
