# MQTT 3.1.1 packets as bytes: the encoders build each packet whole (so the client sends it in
# ONE write: two writes per packet hit Nagle on the broker side and cost ~40 ms each), the
# decoders read the few packets a device receives. No I/O here; see mqtt.py for the client.
from micropython import const

CONNECT = const(0x10)
CONNACK = const(0x20)
PUBLISH = const(0x30)
PUBACK = const(0x40)
SUBSCRIBE = const(0x82)
SUBACK = const(0x90)
PINGREQ = const(0xC0)
PINGRESP = const(0xD0)
DISCONNECT = const(0xE0)

_MAX_REMAINING = const(268435455)


class MQTTError(Exception):
    pass


class ProtocolError(MQTTError):
    # The peer sent something MQTT 3.1.1 does not allow: the connection cannot be trusted.
    pass


# CONNACK return codes (MQTT 3.1.1 §3.2.2.3), for messages and diagnostics.
REFUSED = {
    1: "bad protocol version",
    2: "client id rejected",
    3: "server unavailable",
    4: "bad username or password",
    5: "not authorized",
}


def length_bytes(n):
    # "Remaining length": 7 bits per byte, low first, at most 4 bytes.
    if n < 0 or n > _MAX_REMAINING:
        raise MQTTError("packet too large")
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        if n:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return out


def _str(s):
    if isinstance(s, str):
        s = s.encode()
    return len(s).to_bytes(2, "big") + s


def _packet(first, body):
    return bytes([first]) + length_bytes(len(body)) + body


def connect(client_id, keepalive_s, clean=False, will=None, user=None, password=None):
    # will: (topic, message, qos, retain) or None.
    flags = 0x02 if clean else 0
    body = bytearray(b"\x00\x04MQTT\x04\x00")
    body += keepalive_s.to_bytes(2, "big")
    body += _str(client_id)
    if will is not None:
        topic, message, qos, retain = will
        flags |= 0x04 | (qos << 3) | (0x20 if retain else 0)
        body += _str(topic) + _str(message)
    if user is not None:
        flags |= 0x80
        body += _str(user)
    if password is not None:
        flags |= 0x40
        body += _str(password)
    body[7] = flags
    return _packet(CONNECT, body)


def publish_header(topic, payload_len, qos=0, retain=False, pid=0, dup=False):
    # The fixed and variable header of a PUBLISH; the caller appends the payload so that a
    # large payload is copied once, into the packet the client writes.
    first = PUBLISH | (0x08 if dup else 0) | (qos << 1) | (1 if retain else 0)
    topic = _str(topic)
    n = len(topic) + (2 if qos else 0) + payload_len
    head = bytearray([first]) + length_bytes(n) + topic
    if qos:
        head += pid.to_bytes(2, "big")
    return head


def publish(topic, payload, qos=0, retain=False, pid=0, dup=False):
    return bytes(publish_header(topic, len(payload), qos, retain, pid, dup)) + bytes(payload)


def puback(pid):
    return bytes([PUBACK, 2, pid >> 8, pid & 0xFF])


def subscribe(pid, topics):
    # topics: list of (topic, qos)
    body = bytearray(pid.to_bytes(2, "big"))
    for topic, qos in topics:
        body += _str(topic)
        body.append(qos)
    return _packet(SUBSCRIBE, body)


def pingreq():
    return b"\xc0\x00"


def disconnect():
    return b"\xe0\x00"


def parse_connack(body):
    # -> (session_present, return_code)
    if len(body) != 2:
        raise ProtocolError("CONNACK length %d" % len(body))
    return bool(body[0] & 1), body[1]


def parse_pid(body):
    if len(body) < 2:
        raise ProtocolError("short packet id")
    return (body[0] << 8) | body[1]


def parse_publish(first, body):
    # -> (topic bytes, payload memoryview, qos, pid); body is a memoryview of the packet body.
    qos = (first >> 1) & 3
    if qos == 3 or len(body) < 2:
        raise ProtocolError("bad PUBLISH")
    n = (body[0] << 8) | body[1]
    pos = 2 + n
    if pos > len(body):
        raise ProtocolError("PUBLISH topic past the packet")
    topic = bytes(body[2:pos])
    pid = 0
    if qos:
        if pos + 2 > len(body):
            raise ProtocolError("PUBLISH without packet id")
        pid = (body[pos] << 8) | body[pos + 1]
        pos += 2
    return topic, body[pos:], qos, pid
