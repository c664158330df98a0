"""Entrypoint: read settings, set up logging, run the bridge, exit codes.

Run from the repository root: `python source/connector/main.py`.
Exit codes: 0 after a clean stop (SIGTERM/SIGINT), 2 for invalid settings.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
from pathlib import Path

# Run as a script, this file's folder is on sys.path, not the package's parent.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from connector.bridge import Bridge
from connector.runtime.workers import Workers
from connector.settings import Settings, SettingsError, load_settings

__version__ = "0.12.0"

EXIT_SETTINGS = 2


def configure_logging(settings: Settings) -> None:
    logging.basicConfig(
        level=logging.DEBUG if settings.debug else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    # The libraries log every frame and handshake at INFO; that belongs in
    # DEBUG output, not on the BEMCom log topic.
    for noisy in ("ocpp", "websockets", "paho"):
        logging.getLogger(noisy).setLevel(logging.DEBUG if settings.debug else logging.WARNING)


async def serve(settings: Settings) -> None:
    runner: Bridge | Workers
    # OCPP_WORKERS > 1: this process supervises that many instances (workers.py).
    runner = Workers(settings) if settings.ocpp_workers > 1 else Bridge(settings, __version__)
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, runner.request_stop)
    await runner.run()


def main() -> int:
    try:
        settings = load_settings()
    except SettingsError as error:
        for problem in error.problems:
            print(f"settings error: {problem}", file=sys.stderr)
        return EXIT_SETTINGS
    configure_logging(settings)
    asyncio.run(serve(settings))
    return 0


if __name__ == "__main__":
    sys.exit(main())
