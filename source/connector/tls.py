"""TLS contexts: wss:// for stations (OCPP Security Profiles 2 and 3), and TLS to the broker."""

from __future__ import annotations

import ssl


class TlsError(ValueError):
    pass


def server_context(cert: str, key: str, ca: str = "") -> ssl.SSLContext:
    """Profile 2 with a certificate and key; profile 3 also requires client
    certificates signed by `ca`."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2  # OCPP 1.6 security whitepaper
    try:
        context.load_cert_chain(cert, key)
        if ca:
            context.load_verify_locations(cafile=ca)
            context.verify_mode = ssl.CERT_REQUIRED
    except (OSError, ssl.SSLError) as error:
        raise TlsError(f"cannot load: {error}") from None
    return context


def client_context(ca: str = "") -> ssl.SSLContext:
    """Verifies the broker against `ca`, or the system's CAs when empty."""
    context = ssl.create_default_context()
    try:
        if ca:
            context.load_verify_locations(cafile=ca)
    except (OSError, ssl.SSLError) as error:
        raise TlsError(f"cannot load: {error}") from None
    return context
