"""execute_remote_stop_transaction: stop a session (README "Actuators", "OCPP 2.0.1 and 2.1
stations").

The station key takes a transaction id; a connector key (any value) stops
the transaction running there, which `prepare` looks up when it is sent.
"""

from __future__ import annotations

import logging
from typing import Any

from connector.actuators import Actuator, Request, Scope
from connector.core.commands import checked_text, checked_whole
from connector.core.ha_discovery import Control
from connector.versions import Family, Version

log = logging.getLogger(__name__)

INT32_MAX = 2**31 - 1
# The transaction id of a connector key's request, until `prepare` fills it in.
RUNNING_TRANSACTION = None


def build_v16(value: Any, connector_id: int | None, version: Version) -> Request:
    if connector_id is not None:
        return Request("RemoteStopTransaction", {"transactionId": RUNNING_TRANSACTION})
    transaction_id = checked_whole(value, "the transactionId", 0, INT32_MAX)
    return Request("RemoteStopTransaction", {"transactionId": transaction_id})


def build_v2(value: Any, evse_id: int | None, version: Version) -> Request:
    if evse_id is not None:
        return Request("RequestStopTransaction", {"transactionId": RUNNING_TRANSACTION})
    return Request(
        "RequestStopTransaction", {"transactionId": checked_text(value, "the transactionId", 36)}
    )


def prepare(station: Any, request: Request, connector_id: int | None) -> Request | None:
    """The running transaction of a connector key's request; None (nothing to
    send, with a WARNING) when none is known to run there."""
    if request.payload["transactionId"] is not RUNNING_TRANSACTION:
        return request
    assert connector_id is not None
    transaction_id = station.transactions.running(connector_id)
    if transaction_id is None:
        log.warning(
            "%s: no transaction is known to run on %s %d; nothing was sent",
            station.id,
            station.connector_noun,
            connector_id,
        )
        return None
    return Request(request.action, {"transactionId": transaction_id}, request.actuator)


ACTUATOR = Actuator(
    name="execute_remote_stop_transaction",
    scope=Scope.BOTH,
    example=12345,
    builders={Family.OCPP16: build_v16, Family.OCPP2: build_v2},
    prepare=prepare,
    home_assistant=(
        Control(
            component="button",
            object_id="stop_{connector}",
            name="Stop charging {connector}",
            fields={"payload_press": "1"},
            per_connector=True,
        ),
    ),
)
