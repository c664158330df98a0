"""A small MQTT 3.1.1 broker for local trials, when no broker is configured.

Why not amqtt, the maintained pure-Python broker: it pins websockets==15.0.1
and brings seven more runtime packages (argon2, psutil, typer, ...) into every
deployment for a feature meant only for trying the connector out. This broker
covers what a trial needs: QoS 0/1/2 publishes in, delivery at QoS 0,
retained messages, wildcard subscriptions, keep-alive and last wills.
Clean sessions only, no authentication: for production, run Mosquitto.
"""

from __future__ import annotations

import asyncio
import logging
import struct
from dataclasses import dataclass, field

log = logging.getLogger(__name__)

CONNECT, CONNACK, PUBLISH, PUBACK, PUBREC, PUBREL, PUBCOMP = 1, 2, 3, 4, 5, 6, 7
SUBSCRIBE, SUBACK, UNSUBSCRIBE, UNSUBACK, PINGREQ, PINGRESP, DISCONNECT = (
    8,
    9,
    10,
    11,
    12,
    13,
    14,
)
MAX_PACKET = 64 * 1024 * 1024
# A subscriber whose socket buffer grows past this is too slow; drop it
# rather than let the broker grow without bound.
MAX_WRITE_BUFFER = 32 * 1024 * 1024


class ProtocolViolation(Exception):
    pass


def topic_matches(topic_filter: str, topic: str) -> bool:
    """MQTT wildcard matching; `+` and `#` do not match `$`-topics at level one."""
    if topic.startswith("$") and topic_filter[:1] in ("+", "#"):
        return False
    filter_levels = topic_filter.split("/")
    topic_levels = topic.split("/")
    for index, level in enumerate(filter_levels):
        if level == "#":
            return True
        if index >= len(topic_levels):
            return False
        if level != "+" and level != topic_levels[index]:
            return False
    return len(filter_levels) == len(topic_levels)


def encode_length(length: int) -> bytes:
    out = bytearray()
    while True:
        byte, length = length % 128, length // 128
        out.append(byte | (0x80 if length else 0))
        if not length:
            return bytes(out)


def _string(data: bytes, offset: int) -> tuple[str, int]:
    (length,) = struct.unpack_from("!H", data, offset)
    end = offset + 2 + length
    if end > len(data):
        raise ProtocolViolation("string runs past the packet")
    return data[offset + 2 : end].decode("utf-8"), end


def _bytes_field(data: bytes, offset: int) -> tuple[bytes, int]:
    (length,) = struct.unpack_from("!H", data, offset)
    return data[offset + 2 : offset + 2 + length], offset + 2 + length


def publish_packet(topic: str, payload: bytes, retain: bool) -> bytes:
    encoded = topic.encode("utf-8")
    body = struct.pack("!H", len(encoded)) + encoded + payload
    return bytes([PUBLISH << 4 | int(retain)]) + encode_length(len(body)) + body


@dataclass(eq=False)
class _Client:
    writer: asyncio.StreamWriter
    client_id: str = ""
    subscriptions: set[str] = field(default_factory=set)
    will: tuple[str, bytes, bool] | None = None

    def send(self, packet: bytes) -> None:
        if self.writer.is_closing():
            return
        if self.writer.transport.get_write_buffer_size() > MAX_WRITE_BUFFER:
            log.warning("embedded broker: dropping slow client %s", self.client_id)
            self.writer.close()
            return
        self.writer.write(packet)


class EmbeddedBroker:
    def __init__(self, host: str = "127.0.0.1", port: int = 1883) -> None:
        self.host = host
        self.port = port
        self._clients: set[_Client] = set()
        self._retained: dict[str, bytes] = {}
        self._server: asyncio.Server | None = None
        self._sessions: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, self.host, self.port)
        if self.port == 0:
            self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            for session in list(self._sessions):
                session.cancel()
            await asyncio.gather(*self._sessions, return_exceptions=True)
            await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        session = asyncio.current_task()
        assert session is not None
        self._sessions.add(session)
        client = _Client(writer)
        clean = False
        keepalive: float | None = 10.0  # until CONNECT says otherwise
        try:
            while True:
                header, body = await asyncio.wait_for(_read_packet(reader), keepalive)
                kind = header >> 4
                if kind == CONNECT:
                    keepalive = self._connect(client, body)
                    self._clients.add(client)
                elif kind == DISCONNECT:
                    clean = True
                    return
                else:
                    self._handle(client, header, body)
        except (TimeoutError, asyncio.IncompleteReadError, asyncio.CancelledError, ConnectionError):
            pass
        except (ProtocolViolation, struct.error, UnicodeDecodeError) as error:
            log.warning("embedded broker: closing %s: %s", client.client_id or "a client", error)
        finally:
            self._clients.discard(client)
            self._sessions.discard(session)
            if client.will is not None and not clean:
                self._route(*client.will)
            writer.close()

    def _connect(self, client: _Client, body: bytes) -> float | None:
        _, offset = _string(body, 0)
        level, flags = body[offset], body[offset + 1]
        (keepalive,) = struct.unpack_from("!H", body, offset + 2)
        if level != 4:
            client.send(bytes([CONNACK << 4, 2, 0, 1]))  # unacceptable protocol version
            raise ProtocolViolation(f"protocol level {level} (only MQTT 3.1.1 is served)")
        client.client_id, offset = _string(body, offset + 4)
        if flags & 0x04:
            will_topic, offset = _string(body, offset)
            will_payload, offset = _bytes_field(body, offset)
            client.will = (will_topic, will_payload, bool(flags & 0x20))
        client.send(bytes([CONNACK << 4, 2, 0, 0]))
        return keepalive * 1.5 if keepalive else None

    def _handle(self, client: _Client, header: int, body: bytes) -> None:
        kind = header >> 4
        if kind == PUBLISH:
            qos, retain = (header >> 1) & 3, bool(header & 1)
            topic, offset = _string(body, 0)
            if qos:
                packet_id = body[offset : offset + 2]
                offset += 2
                client.send(bytes([(PUBACK if qos == 1 else PUBREC) << 4, 2]) + packet_id)
            self._route(topic, body[offset:], retain)
        elif kind == PUBREL:
            client.send(bytes([PUBCOMP << 4, 2]) + body[:2])
        elif kind == SUBSCRIBE:
            packet_id, offset, granted = body[:2], 2, bytearray()
            filters = []
            while offset < len(body):
                topic_filter, offset = _string(body, offset)
                offset += 1  # requested QoS; delivery is at QoS 0
                filters.append(topic_filter)
                granted.append(0)
            client.subscriptions.update(filters)
            client.send(
                bytes([SUBACK << 4]) + encode_length(2 + len(granted)) + packet_id + granted
            )
            for topic, payload in self._retained.items():
                if any(topic_matches(f, topic) for f in filters):
                    client.send(publish_packet(topic, payload, retain=True))
        elif kind == UNSUBSCRIBE:
            offset = 2
            while offset < len(body):
                topic_filter, offset = _string(body, offset)
                client.subscriptions.discard(topic_filter)
            client.send(bytes([UNSUBACK << 4, 2]) + body[:2])
        elif kind == PINGREQ:
            client.send(bytes([PINGRESP << 4, 0]))
        # PUBACK, PUBREC and PUBCOMP from clients need nothing: we deliver at QoS 0.

    def _route(self, topic: str, payload: bytes, retain: bool) -> None:
        if retain:
            if payload:
                self._retained[topic] = payload
            else:
                self._retained.pop(topic, None)
        packet = publish_packet(topic, payload, retain=False)
        for client in list(self._clients):
            if any(topic_matches(f, topic) for f in client.subscriptions):
                client.send(packet)


async def _read_packet(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    header = (await reader.readexactly(1))[0]
    length, multiplier = 0, 1
    for _ in range(4):
        byte = (await reader.readexactly(1))[0]
        length += (byte & 0x7F) * multiplier
        if not byte & 0x80:
            break
        multiplier *= 128
    else:
        raise ProtocolViolation("malformed remaining length")
    if length > MAX_PACKET:
        raise ProtocolViolation(f"packet of {length} bytes is too large")
    return header, await reader.readexactly(length)
