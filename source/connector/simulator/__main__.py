"""Run a simulated station from the command line:

PYTHONPATH=source python -m connector.simulator ws://127.0.0.1:9000/CP_1
PYTHONPATH=source python -m connector.simulator --ocpp 2.1 ws://127.0.0.1:9000/CP_2
"""

from __future__ import annotations

import argparse
import asyncio
import logging

from connector.simulator.core import SimulatorOptions, run_simulator
from connector.versions import BY_NAME, OCPP16


def main() -> None:
    parser = argparse.ArgumentParser(
        prog="python -m connector.simulator", description="A simulated OCPP charging station."
    )
    parser.add_argument("url", help="ws://host:port/<charge point id>")
    parser.add_argument("--connectors", type=int, default=1)
    parser.add_argument("--interval", type=float, default=10.0, help="meter values every N s")
    parser.add_argument("--ocpp", choices=tuple(BY_NAME), default=OCPP16.name)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    options = SimulatorOptions(connectors=args.connectors, meter_interval=args.interval)
    try:
        asyncio.run(run_simulator(args.url, options, BY_NAME[args.ocpp]))
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
