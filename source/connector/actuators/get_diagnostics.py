"""execute_get_diagnostics: a URL to upload to (README "Actuators"; 2.x: GetLog)."""

from __future__ import annotations

from typing import Any

from connector.actuators import Actuator, Request, Scope
from connector.core.commands import checked_url
from connector.core.datapoints import SEP, Datapoint
from connector.ocpp2.requests import fresh_id
from connector.versions import Family, Version


def build_v16(value: Any, connector_id: int | None, version: Version) -> Request:
    return Request("GetDiagnostics", {"location": checked_url(value, "the upload URL")})


def build_v2(value: Any, evse_id: int | None, version: Version) -> Request:
    log = {"remoteLocation": checked_url(value, "the upload URL")}
    return Request("GetLog", {"logType": "DiagnosticsLog", "requestId": fresh_id(), "log": log})


def results(cp_id: str, request: Request, answer: dict[str, Any], now: int) -> list[Datapoint]:
    if request.action == "GetLog":
        return [Datapoint(f"{cp_id}{SEP}GetLog{SEP}filename", answer.get("filename"), now)]
    return [Datapoint(f"{cp_id}{SEP}GetDiagnostics{SEP}fileName", answer.get("fileName"), now)]


ACTUATOR = Actuator(
    name="execute_get_diagnostics",
    scope=Scope.STATION,
    example="ftp://example.com/upload/",
    builders={Family.OCPP16: build_v16, Family.OCPP2: build_v2},
    results=results,
    result_names={
        Family.OCPP16: ("GetDiagnostics__fileName",),
        Family.OCPP2: ("GetLog__filename",),
    },
)
