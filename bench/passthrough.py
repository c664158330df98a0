"""A bare WebSocket -> paho passthrough: the yardstick of bench/fast_path.py.

What the cheapest bridge we can write does per frame, and nothing more: parse
the JSON, answer the CALL, and for MeterValues publish one value (QoS 1,
retained, BEMCom payload with the sample's timestamp). No ocpp library, no
validation, no state. Run as its own process by the benchmark:

    python bench/passthrough.py --ocpp-port 9100 --mqtt-port 1883 --topic bench-fast-values

It is built as cheaply as the connector's own plumbing allows, so the ratio
measures the connector's work, not a handicap of the yardstick:
- paho is driven from the event loop (no network thread of its own, which
  fought the event loop for the GIL at every acknowledgement);
- the broker's socket is read in 64 KB chunks (paho reads each packet with
  three or more recv() calls), written once per turn of the loop, with
  TCP_NODELAY;
- no cap of paho's on messages in flight;
- no permessage-deflate toward stations.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import socket
from datetime import datetime
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from websockets.asyncio.server import ServerConnection, serve


def sample_ms(stamp: str) -> int:
    return int(datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp() * 1000)


class ChunkedClient(mqtt.Client):
    """paho's client with its reads served from one recv() of up to 64 KB."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.buffer = b""
        self.position = 0

    def _sock_recv(self, bufsize: int) -> bytes:
        if self.position >= len(self.buffer):
            data = super()._sock_recv(65536)
            if not data:
                return data
            self.buffer, self.position = data, 0
        start = self.position
        self.position = min(start + bufsize, len(self.buffer))
        return self.buffer[start : self.position]


class LoopDriver:
    """Drives a paho client from the running event loop."""

    def __init__(self, client: ChunkedClient, loop: asyncio.AbstractEventLoop) -> None:
        self.client = client
        self.loop = loop
        self.write_soon = False
        client.on_socket_open = self._opened
        client.on_socket_close = lambda c, u, sock: loop.remove_reader(sock)
        client.on_socket_register_write = self._want_write
        client.on_socket_unregister_write = lambda c, u, sock: loop.remove_writer(sock)

    def _opened(self, client: mqtt.Client, userdata: Any, sock: Any) -> None:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.loop.add_reader(sock, self._read)

    def _read(self) -> None:
        self.client.loop_read()
        while self.client.position < len(self.client.buffer):
            self.client.loop_read()

    def _want_write(self, client: mqtt.Client, userdata: Any, sock: Any) -> None:
        # Once per turn of the loop, with every publish of that turn.
        if not self.write_soon:
            self.write_soon = True
            self.loop.call_soon(self._write, sock)

    def _write(self, sock: Any) -> None:
        self.write_soon = False
        self.client.loop_write()
        if self.client.want_write():
            self.loop.add_writer(sock, self.client.loop_write)

    async def keep_alive(self) -> None:
        while True:
            await asyncio.sleep(1)
            self.client.loop_misc()


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--ocpp-port", type=int, required=True)
    parser.add_argument("--mqtt-port", type=int, required=True)
    parser.add_argument("--topic", default="bench-fast-values")
    args = parser.parse_args()

    loop = asyncio.get_running_loop()
    client = ChunkedClient(callback_api_version=CallbackAPIVersion.VERSION2)
    client.max_inflight_messages_set(0)
    client.max_queued_messages_set(0)
    driver = LoopDriver(client, loop)
    client.connect("127.0.0.1", args.mqtt_port)  # before any station: blocking is fine
    keep_alive = asyncio.create_task(driver.keep_alive())
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
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    async with serve(
        handler,
        "127.0.0.1",
        args.ocpp_port,
        subprotocols=["ocpp1.6", "ocpp2.0.1", "ocpp2.1"],  # type: ignore[list-item]
        compression=None,
    ):
        await stop.wait()
    keep_alive.cancel()
    client.disconnect()


if __name__ == "__main__":
    asyncio.run(main())
