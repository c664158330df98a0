"""A bare WebSocket -> paho passthrough: the yardstick of bench/fast_path.py.

What the cheapest possible bridge does per frame, and nothing more: parse the
JSON, answer the CALL, and for MeterValues publish one value (QoS 1, retained,
BEMCom payload with the sample's timestamp). No ocpp library, no validation,
no state. Run as its own process by the benchmark:

    python bench/passthrough.py --ocpp-port 9100 --mqtt-port 1883 --topic bench-fast-values
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
from datetime import datetime

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from websockets.asyncio.server import ServerConnection, serve


def sample_ms(stamp: str) -> int:
    return int(datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp() * 1000)


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--ocpp-port", type=int, required=True)
    parser.add_argument("--mqtt-port", type=int, required=True)
    parser.add_argument("--topic", default="bench-fast-values")
    args = parser.parse_args()

    client = mqtt.Client(callback_api_version=CallbackAPIVersion.VERSION2)
    client.max_queued_messages_set(0)
    client.connect("127.0.0.1", args.mqtt_port)
    client.loop_start()
    boot = {"status": "Accepted", "currentTime": "2026-01-01T00:00:00Z", "interval": 300}

    async def handler(ws: ServerConnection) -> None:
        cp_id = ws.request.path.rsplit("/", 1)[-1] if ws.request else "?"
        topic = f"{args.topic}/{cp_id}"
        async for raw in ws:
            frame = json.loads(raw)
            if frame[0] != 2:
                continue
            action, payload = frame[2], frame[3]
            answer: dict[str, object] = boot if action == "BootNotification" else {}
            await ws.send(json.dumps([3, frame[1], answer]))
            if action == "MeterValues":
                sample = payload["meterValue"][0]
                value = float(sample["sampledValue"][0]["value"])  # 1.6: a string; 2.x: a number
                message = json.dumps({"value": value, "timestamp": sample_ms(sample["timestamp"])})
                client.publish(topic, message, qos=1, retain=True)

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    async with serve(
        handler,
        "127.0.0.1",
        args.ocpp_port,
        subprotocols=["ocpp1.6", "ocpp2.0.1", "ocpp2.1"],
        compression=None,  # type: ignore[list-item]
    ):
        await stop.wait()
    client.loop_stop()


if __name__ == "__main__":
    asyncio.run(main())
