# A small asyncio MQTT 3.1.1 client for the co-processor.
#
# It is given a connected socket (plain or TLS: the board's socket factory made it), speaks
# CONNECT/CONNACK, PUBLISH QoS 0/1, PUBACK, SUBSCRIBE, PINGREQ and DISCONNECT, and reports what
# it receives through two callbacks. Each packet goes out in ONE write under a lock (two tasks
# must never interleave bytes, and the stream's drain is not re-entrant). A dead link is found
# by the time since the last byte received, not by a TCP error that may never come (half-open).
# What to send again after a reconnect is the uploader's business: this client keeps no copies.
import asyncio

import mqtt_codec as codec
from micropython import const
from mqtt_codec import MQTTError, ProtocolError

_RX_SIZE = const(1024)


class ConnectRefused(MQTTError):
    def __init__(self, code):
        super().__init__("CONNACK refused %d: %s" % (code, codec.REFUSED.get(code, "unknown")))
        self.code = code


class LinkDead(MQTTError):
    pass


def _noop(*args):
    pass


class MQTTClient:
    def __init__(self, client_id, ticks_ms, ticks_diff, keepalive_s=60, dead_ms=0):
        self.client_id = client_id
        self.keepalive_s = keepalive_s
        # Silence longer than this means the link is dead even if TCP says nothing.
        self.dead_ms = dead_ms or keepalive_s * 1000
        self._ticks = ticks_ms
        self._diff = ticks_diff
        self.on_message = _noop  # (topic: bytes, payload: memoryview, qos)
        self.on_puback = _noop  # (pid)
        self._stream = None
        self._lock = asyncio.Lock()
        self._rx = bytearray(_RX_SIZE)
        self._rxv = memoryview(self._rx)
        self._have = 0
        self._pid = 0
        self._last_rx = 0
        self._last_tx = 0
        self._ping_at = None
        self.rtt_ms = None  # round trip of the last PINGREQ/PINGRESP
        self.rx_bytes = 0
        self.tx_bytes = 0

    # -- connection -------------------------------------------------------------------------
    async def connect(
        self, sock, will=None, clean=False, user=None, password=None, timeout_ms=15000
    ):
        # -> session_present. Raises ConnectRefused, MQTTError (timeout, garbage) or OSError.
        self._stream = asyncio.StreamReader(sock)
        self._have = 0
        self._ping_at = None
        now = self._ticks()
        self._last_rx = now
        self._last_tx = now
        await self._send(
            codec.connect(self.client_id, self.keepalive_s, clean, will, user, password)
        )
        try:
            packet = await asyncio.wait_for_ms(self._read_packet(), timeout_ms)  # type: tuple
        except asyncio.TimeoutError:
            raise MQTTError("no CONNACK within %d ms" % timeout_ms)
        first, body = packet
        if first != codec.CONNACK:
            raise ProtocolError("expected CONNACK, got 0x%02x" % first)
        present, code = codec.parse_connack(body)
        if code:
            raise ConnectRefused(code)
        return present

    def close(self):
        stream, self._stream = self._stream, None
        if stream is not None:
            try:
                stream.close()
            except OSError:
                pass

    async def disconnect(self):
        try:
            await self._send(codec.disconnect())
        finally:
            self.close()

    # -- sending ----------------------------------------------------------------------------
    async def _send(self, packet):
        async with self._lock:
            stream = self._stream
            if stream is None:
                raise MQTTError("not connected")
            stream.write(packet)
            await stream.drain()
            self._last_tx = self._ticks()
            self.tx_bytes += len(packet)

    def next_pid(self):
        self._pid = self._pid % 65535 + 1
        return self._pid

    async def publish(self, topic, payload, qos=0, retain=False):
        # -> the packet id (0 for QoS 0). The packet is built whole, then written once.
        pid = self.next_pid() if qos else 0
        head = codec.publish_header(topic, len(payload), qos, retain, pid)
        head += payload
        await self._send(head)
        return pid

    async def publish_into(self, topic, buf, start, end, qos=1):
        # Publishes buf[start:end] with the header written into the room in front of it:
        # one packet, one write, no copy of a large payload. -> the packet id.
        pid = self.next_pid() if qos else 0
        head = codec.publish_header(topic, end - start, qos, False, pid)
        begin = start - len(head)
        if begin < 0:
            raise MQTTError("no room for the PUBLISH header")
        buf[begin:start] = head
        await self._send(memoryview(buf)[begin:end])
        return pid

    async def subscribe(self, topics, timeout_ms=15000):
        # Waits for the SUBACK; messages that arrive first (a persistent session's queue) are
        # delivered as usual. Call before run() starts reading.
        pid = self.next_pid()
        await self._send(codec.subscribe(pid, topics))
        try:
            await asyncio.wait_for_ms(self._until_suback(pid, len(topics)), timeout_ms)
        except asyncio.TimeoutError:
            raise MQTTError("no SUBACK within %d ms" % timeout_ms)

    async def _until_suback(self, pid, n):
        while True:
            first, body = await self._read_packet()
            if first == codec.SUBACK and codec.parse_pid(body) == pid:
                codes = bytes(body[2:])
                if len(codes) != n or 0x80 in codes:
                    raise MQTTError("subscription refused %r" % codes)
                return
            await self._handle(first, body)

    async def ping(self):
        self._ping_at = self._ticks()
        await self._send(codec.pingreq())

    # -- receiving --------------------------------------------------------------------------
    def idle_rx_ms(self):
        return self._diff(self._ticks(), self._last_rx)

    def idle_tx_ms(self):
        return self._diff(self._ticks(), self._last_tx)

    async def _fill(self):
        stream = self._stream
        if stream is None:
            raise MQTTError("not connected")
        if self._have >= _RX_SIZE:
            raise ProtocolError("packet larger than the receive buffer")
        n = await stream.readinto(self._rxv[self._have :])
        if not n:
            raise MQTTError("connection closed by the broker")
        self._have += n
        self.rx_bytes += n
        self._last_rx = self._ticks()

    async def _read_packet(self):
        # -> (first byte, body memoryview valid until the next read). Partial reads are normal.
        while True:
            have = self._have
            if have >= 2:
                n = 0
                shift = 0
                pos = 1
                while pos < have and pos <= 4:
                    byte = self._rx[pos]
                    n |= (byte & 0x7F) << shift
                    shift += 7
                    pos += 1
                    if not byte & 0x80:
                        break
                else:
                    if pos > 4:
                        raise ProtocolError("bad remaining length")
                    await self._fill()
                    continue
                if pos + n > _RX_SIZE:
                    raise ProtocolError("incoming packet of %d bytes is too large" % n)
                if have >= pos + n:
                    first = self._rx[0]
                    body = bytes(self._rxv[pos : pos + n])
                    rest = have - pos - n
                    if rest:
                        self._rxv[0:rest] = self._rxv[pos + n : have]
                    self._have = rest
                    return first, body
            await self._fill()

    async def _handle(self, first, body):
        kind = first & 0xF0
        if kind == codec.PUBLISH:
            topic, payload, qos, pid = codec.parse_publish(first, memoryview(body))
            if qos == 1:
                await self._send(codec.puback(pid))
            elif qos == 2:
                # This client only subscribes with QoS <= 1; a broker must not send QoS 2.
                raise ProtocolError("QoS 2 PUBLISH")
            self.on_message(topic, payload, qos)
        elif first == codec.PUBACK:
            self.on_puback(codec.parse_pid(body))
        elif first == codec.PINGRESP:
            if self._ping_at is not None:
                self.rtt_ms = self._diff(self._ticks(), self._ping_at)
                self._ping_at = None
        elif first == codec.SUBACK:
            pass  # a late SUBACK of an earlier session: harmless
        else:
            raise ProtocolError("unexpected packet 0x%02x" % first)

    async def run(self):
        # Read and dispatch until the connection fails; always ends by raising.
        while True:
            first, body = await self._read_packet()
            await self._handle(first, body)

    async def keepalive(self, check_ms=1000):
        # Ping when the broker has been quiet for half the dead time, and declare the link
        # dead when nothing at all came back within the dead time. Always ends by raising.
        half = self.dead_ms // 2
        ka_ms = self.keepalive_s * 1000 // 2
        while True:
            await asyncio.sleep_ms(min(check_ms, half))
            idle = self.idle_rx_ms()
            if idle >= self.dead_ms:
                raise LinkDead("no byte received for %d ms" % idle)
            if self._ping_at is None and (idle >= half or self.idle_tx_ms() >= ka_ms):
                await self.ping()
