# A small asyncio MQTT 3.1.1 client for the co-processor.
#
# It is given a connected socket (plain or TLS: the board's socket factory made it), speaks
# CONNECT/CONNACK, PUBLISH QoS 0/1, PUBACK, SUBSCRIBE, PINGREQ and DISCONNECT, and reports what
# it receives through two callbacks. Each packet goes out in ONE write under a lock (two tasks
# must never interleave bytes, and the stream's drain is not re-entrant). A dead link is found
# by the time since the last byte received, not by a TCP error that may never come (half-open).
# What to send again after a reconnect is the uploader's business: this client keeps no copies.
import asyncio

from dzcore.uplink import mqtt_codec as codec
from dzcore.uplink.mqtt_codec import MQTTError, ProtocolError
from micropython import const

_RX_SIZE = const(1024)
# A PUBLISH whose topic and packet id do not fit in this many bytes is not one of ours.
_HEAD_MAX = const(256)


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
        self.on_message = _noop  # (topic: bytes, payload: memoryview, qos, retain)
        self.on_puback = _noop  # (pid)
        # (topic: bytes, size) for a PUBLISH too large for the receive buffer: it was read
        # past and PUBACKed, its payload never held.
        self.on_skipped = _noop
        self._stream = None
        self._sock = None
        self._lock = asyncio.Lock()
        self._rx = bytearray(_RX_SIZE)
        self._rxv = memoryview(self._rx)
        self._have = 0
        self._pid = 0
        self._last_rx = 0
        self._last_tx = 0
        self._ping_at = None
        self._skipped = (b"", 0, 0, 0)  # (topic, qos, pid, size) of the PUBLISH read past
        self.rtt_ms = None  # round trip of the last PINGREQ/PINGRESP
        self.rx_bytes = 0
        self.tx_bytes = 0

    # -- connection -------------------------------------------------------------------------
    async def connect(
        self, sock, will=None, clean=False, user=None, password=None, timeout_ms=15000
    ):
        # -> session_present. Raises ConnectRefused, MQTTError (timeout, garbage) or OSError.
        self.close()  # a previous session's socket, if any
        self._sock = sock
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
        # The socket itself is closed here: MicroPython's Stream.close() does nothing until
        # `await wait_closed()`, and this runs in `finally` blocks that cannot await. A socket
        # left open holds a descriptor (a module has a handful), delays the broker's will and
        # breaks MQTT-3.14.4-1 / MQTT-4.8.0-1 (close after DISCONNECT and after an error).
        sock, self._sock = self._sock, None
        self._stream = None
        if sock is not None:
            try:
                sock.close()
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
        # The first unanswered PINGREQ's time is kept: it measures the round trip, and how
        # long the broker has left a ping unanswered.
        if self._ping_at is None:
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
                    return await self._skip(pos, n)
                if have >= pos + n:
                    first = self._rx[0]
                    body = bytes(self._rxv[pos : pos + n])
                    rest = have - pos - n
                    if rest:
                        self._rxv[0:rest] = self._rxv[pos + n : have]
                    self._have = rest
                    return first, body
            await self._fill()

    async def _skip(self, pos, n):
        # A packet larger than the receive buffer. Only a PUBLISH may be that large; ending
        # the session would not help, as a persistent session redelivers it after every
        # CONNACK. So: parse its topic and packet id from the buffer, read the rest into the
        # same buffer and drop it, and return (first, None); the caller PUBACKs it.
        # -> (first, None), with self._skipped = (topic, qos, pid, size).
        first = self._rx[0]
        if first & 0xF0 != codec.PUBLISH:
            raise ProtocolError("packet 0x%02x of %d bytes" % (first, n))
        qos = (first >> 1) & 3
        while True:
            have = self._have
            if have >= pos + 2:
                head = pos + 2 + ((self._rx[pos] << 8) | self._rx[pos + 1]) + (2 if qos else 0)
                if head - pos > _HEAD_MAX:
                    raise ProtocolError("PUBLISH topic of %d bytes" % (head - pos))
                if have >= head:
                    break
            await self._fill()
        topic, _, qos, pid = codec.parse_publish(first, self._rxv[pos:head])
        left = pos + n - self._have  # still on the wire; never more than this is read
        self._have = 0
        stream = self._stream
        if stream is None:
            raise MQTTError("not connected")
        while left:
            got = await stream.readinto(self._rxv[: min(left, _RX_SIZE)])
            if not got:
                raise MQTTError("connection closed by the broker")
            left -= got
            self.rx_bytes += got
            self._last_rx = self._ticks()
        self._skipped = (topic, qos, pid, n)
        return first, None

    async def _handle(self, first, body):
        kind = first & 0xF0
        if kind == codec.PUBLISH:
            if body is None:
                topic, qos, pid, size = self._skipped
            else:
                topic, payload, qos, pid = codec.parse_publish(first, memoryview(body))
            if qos == 1:
                await self._send(codec.puback(pid))
            elif qos == 2:
                # This client only subscribes with QoS <= 1; a broker must not send QoS 2.
                raise ProtocolError("QoS 2 PUBLISH")
            if body is None:
                self.on_skipped(topic, size)
            else:
                self.on_message(topic, payload, qos, first & 1)
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
        # A PINGREQ left unanswered for the dead time also ends the link, whatever else
        # arrives (stray bytes prove the socket, not the broker's session), and the client
        # keeps sending one every half keepalive while it sends nothing else (MQTT-3.1.2-23),
        # answered or not.
        half = self.dead_ms // 2
        ka_ms = self.keepalive_s * 1000 // 2
        while True:
            await asyncio.sleep_ms(min(check_ms, half))
            idle = self.idle_rx_ms()
            if idle >= self.dead_ms:
                raise LinkDead("no byte received for %d ms" % idle)
            ping_at = self._ping_at
            if ping_at is not None:
                waited = self._diff(self._ticks(), ping_at)
                if waited >= self.dead_ms:
                    raise LinkDead("no PINGRESP for %d ms" % waited)
            if self.idle_tx_ms() >= ka_ms or (ping_at is None and idle >= half):
                await self.ping()
