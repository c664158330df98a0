"""Keeps station credentials out of every log.

websockets logs each request header at DEBUG, `< Authorization: Basic …`
included, so with DEBUG=TRUE a station's password would reach the console
and `<name>/logs`. A filter on websockets' loggers replaces the value before
any handler sees the record. It logs every frame at DEBUG too: a frame that
may hold a secret (a GetConfiguration answer with `AuthorizationKey`, a
ChangeConfiguration setting it: core/secrets.py) is not shown.
"""

from __future__ import annotations

import logging

from connector.core.secrets import may_hold_secret

REDACTED = "<redacted>"
_SECRET_HEADERS = {"authorization", "proxy-authorization"}
_LOGGERS = ("websockets", "websockets.server", "websockets.client")


class RedactCredentials(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and len(args) >= 2:
            name = args[0]
            if isinstance(name, str) and name.strip().lower() in _SECRET_HEADERS:
                record.args = (name, REDACTED, *args[2:])
        if record.levelno <= logging.DEBUG and args:
            try:
                message = record.getMessage()
            except Exception:  # a record that cannot be formatted is not ours to fix
                return True
            if may_hold_secret(message):
                record.msg, record.args = "%s", (f"{message[:2]} <a frame that may hold a secret>",)
        return True


def install() -> None:
    """Idempotent: one filter per logger, however often the connector starts."""
    for name in _LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, RedactCredentials) for f in logger.filters):
            logger.addFilter(RedactCredentials())
