"""Pure: who may connect (OCPP 1.6 Security Profile 1, README "Security").

HTTP Basic credentials: the username is the station's id, the password the
one configured for it. Compared in constant time, as bytes, so a password
that is not UTF-8 is simply wrong rather than an error. Nothing here ever
returns or logs the secret.
"""

from __future__ import annotations

import base64
import binascii
import hmac
from collections.abc import Mapping


def basic_credentials(header: str | None) -> tuple[bytes, bytes] | None:
    """`Basic base64(user:password)` -> (user, password) as bytes; None if malformed."""
    if header is None:
        return None
    scheme, _, token = header.strip().partition(" ")
    if scheme.lower() != "basic" or not token:
        return None
    try:
        decoded = base64.b64decode(token.strip(), validate=True)
    except (binascii.Error, ValueError):
        return None
    user, colon, password = decoded.partition(b":")
    if not colon:
        return None
    return user, password


def refusal(
    cp_id: str,
    authorization: str | None,
    allowed: frozenset[str] | None,
    passwords: Mapping[str, str] | None,
) -> str | None:
    """Why the station may not connect (never naming the secret), or None."""
    if allowed is not None and cp_id not in allowed:
        return "the charge point id is not in OCPP_ALLOWED_CHARGE_POINTS"
    if passwords is None:
        return None
    credentials = basic_credentials(authorization)
    if credentials is None:
        return "no valid HTTP Basic credentials"
    user, password = credentials
    expected = passwords.get(cp_id)
    # Compare even when the id is unknown, so timing tells nothing about ids.
    user_ok = hmac.compare_digest(user, cp_id.encode("utf-8"))
    password_ok = hmac.compare_digest(password, (expected or "\x00unknown").encode("utf-8"))
    if expected is None or not (user_ok and password_ok):
        return "wrong HTTP Basic credentials"
    return None
