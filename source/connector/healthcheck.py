"""The image's HEALTHCHECK (Dockerfile): exit 0 while /healthz answers 200, else 1.

Run with the container's environment: HTTP_PORT (8080; 0 turns the server,
and so the check, off: healthy) and HTTP_HOST (a wildcard address is asked
on loopback). Only the standard library: the image installs nothing for it.
"""

from __future__ import annotations

import os
import sys
import urllib.request

WILDCARDS = ("", "0.0.0.0", "::")


def main() -> int:
    port = os.environ.get("HTTP_PORT", "8080").strip() or "8080"
    if port == "0":
        return 0
    host = os.environ.get("HTTP_HOST", "0.0.0.0").strip()
    host = "127.0.0.1" if host in WILDCARDS else host
    if ":" in host:
        host = f"[{host}]"
    try:
        with urllib.request.urlopen(f"http://{host}:{port}/healthz", timeout=4) as answer:
            return 0 if answer.status == 200 else 1
    except OSError:
        return 1


if __name__ == "__main__":
    sys.exit(main())
