# CBOR (RFC 8949) for the subset the wire contract uses: int (64-bit, negative too), bytes,
# str, list/tuple, dict, bool, None and float (64-bit on encode; 16/32/64-bit on decode).
# Encoding is deterministic: ints and lengths in their shortest form, map keys in the dict's
# iteration order (insertion order on CPython; on MicroPython plain dicts iterate in hash
# order, so code that needs a fixed key order writes the map with `head_into` itself).
# Decoding is bounded: nesting depth <= 8, every length checked against the buffer, no
# tags, no indefinite lengths, no trailing bytes; anything else raises CBORError.
import struct

from micropython import const

_MAJOR_UINT = const(0)
_MAJOR_NEGINT = const(1)
_MAJOR_BYTES = const(2)
_MAJOR_TEXT = const(3)
_MAJOR_ARRAY = const(4)
_MAJOR_MAP = const(5)
_MAJOR_SIMPLE = const(7)

_FALSE = const(0xF4)
_TRUE = const(0xF5)
_NULL = const(0xF6)
_FLOAT16 = const(0xF9)
_FLOAT32 = const(0xFA)
_FLOAT64 = const(0xFB)

_MAX_DEPTH = const(8)
_MAX_ENCODE_DEPTH = const(16)
_UINT64_LIMIT = 1 << 64


class CBORError(ValueError):
    pass


class BufferTooSmall(CBORError):
    pass


def head_size(n):
    if n < 24:
        return 1
    if n < 0x100:
        return 2
    if n < 0x10000:
        return 3
    if n < 0x100000000:
        return 5
    return 9


def head_into(buf, pos, major, n):
    # Writes the initial byte(s) of an item with argument n; returns the end position.
    if n < 0 or n >= _UINT64_LIMIT:
        raise CBORError("integer out of the 64-bit range")
    size = head_size(n)
    if pos + size > len(buf):
        raise BufferTooSmall("buffer too small")
    top = major << 5
    if size == 1:
        buf[pos] = top | n
    elif size == 2:
        buf[pos] = top | 24
        buf[pos + 1] = n
    elif size == 3:
        buf[pos] = top | 25
        struct.pack_into(">H", buf, pos + 1, n)
    elif size == 5:
        buf[pos] = top | 26
        struct.pack_into(">I", buf, pos + 1, n)
    else:
        buf[pos] = top | 27
        struct.pack_into(">Q", buf, pos + 1, n)
    return pos + size


def _raw_into(buf, pos, data):
    end = pos + len(data)
    if end > len(buf):
        raise BufferTooSmall("buffer too small")
    buf[pos:end] = data
    return end


def encode_into(obj, buf, pos=0, depth=0):
    # Encodes obj into buf (a bytearray or memoryview) at pos; returns the end position.
    # Raises CBORError when buf is too small or obj is outside the subset.
    if depth > _MAX_ENCODE_DEPTH:
        raise CBORError("nesting too deep")
    if obj is None:
        return _raw_into(buf, pos, b"\xf6")
    if obj is True:
        return _raw_into(buf, pos, b"\xf5")
    if obj is False:
        return _raw_into(buf, pos, b"\xf4")
    if isinstance(obj, int):
        if obj >= 0:
            return head_into(buf, pos, _MAJOR_UINT, obj)
        return head_into(buf, pos, _MAJOR_NEGINT, -1 - obj)
    if isinstance(obj, str):
        data = obj.encode()
        return _raw_into(buf, head_into(buf, pos, _MAJOR_TEXT, len(data)), data)
    if isinstance(obj, (bytes, bytearray, memoryview)):
        return _raw_into(buf, head_into(buf, pos, _MAJOR_BYTES, len(obj)), obj)
    if isinstance(obj, (list, tuple)):
        pos = head_into(buf, pos, _MAJOR_ARRAY, len(obj))
        for item in obj:
            pos = encode_into(item, buf, pos, depth + 1)
        return pos
    if isinstance(obj, dict):
        pos = head_into(buf, pos, _MAJOR_MAP, len(obj))
        for key, value in obj.items():
            pos = encode_into(key, buf, pos, depth + 1)
            pos = encode_into(value, buf, pos, depth + 1)
        return pos
    if isinstance(obj, float):
        if obj != obj or obj in (_INF, -_INF):
            # Infinities and NaN as half floats, the shortest exact form (and cbor2's).
            if pos + 3 > len(buf):
                raise BufferTooSmall("buffer too small")
            buf[pos] = 0xF9
            buf[pos + 1] = 0x7E if obj != obj else (0x7C if obj > 0 else 0xFC)
            buf[pos + 2] = 0
            return pos + 3
        if pos + 9 > len(buf):
            raise BufferTooSmall("buffer too small")
        buf[pos] = _FLOAT64
        struct.pack_into(">d", buf, pos + 1, obj)
        return pos + 9
    raise CBORError("cannot encode %s" % type(obj).__name__)


_INF = float("inf")


def encode(obj):
    # Allocating form: grows a scratch buffer until the item fits.
    size = 64
    while True:
        buf = bytearray(size)
        try:
            end = encode_into(obj, buf)
        except BufferTooSmall:
            size *= 4
            continue
        return bytes(memoryview(buf)[:end])


def _half_to_float(h):
    exp = (h >> 10) & 0x1F
    frac = h & 0x3FF
    if exp == 0:
        value = frac * 2.0**-24
    elif exp == 31:
        value = float("inf") if frac == 0 else float("nan")
    else:
        value = (1024 + frac) * 2.0 ** (exp - 25)
    return -value if h & 0x8000 else value


class _Reader:
    def __init__(self, buf):
        self.buf = memoryview(buf)
        self.pos = 0
        self.end = len(buf)

    def take(self, n):
        start = self.pos
        if n > self.end - start:
            raise CBORError("length %d past the end of the buffer at %d" % (n, start))
        self.pos = start + n
        return self.buf[start : start + n]

    def argument(self, info):
        if info < 24:
            return info
        if info == 24:
            return self.take(1)[0]
        if info == 25:
            return struct.unpack(">H", self.take(2))[0]
        if info == 26:
            return struct.unpack(">I", self.take(4))[0]
        if info == 27:
            return struct.unpack(">Q", self.take(8))[0]
        raise CBORError("unsupported additional info %d at %d" % (info, self.pos - 1))

    def item(self, depth):
        if depth > _MAX_DEPTH:
            raise CBORError("nesting deeper than %d" % _MAX_DEPTH)
        initial = self.take(1)[0]
        major = initial >> 5
        info = initial & 0x1F
        if major == _MAJOR_SIMPLE:
            return self.simple(initial)
        n = self.argument(info)
        if major == _MAJOR_UINT:
            return n
        if major == _MAJOR_NEGINT:
            return -1 - n
        if major == _MAJOR_BYTES:
            return bytes(self.take(n))
        if major == _MAJOR_TEXT:
            try:
                return str(bytes(self.take(n)), "utf-8")
            except UnicodeError:
                raise CBORError("text is not UTF-8 at %d" % self.pos) from None
        # Every item takes at least one byte: a count beyond what is left is malformed,
        # and checking it first keeps a hostile count from allocating anything.
        if n > self.end - self.pos:
            raise CBORError("count %d past the end of the buffer at %d" % (n, self.pos))
        if major == _MAJOR_ARRAY:
            return [self.item(depth + 1) for _ in range(n)]
        if major == _MAJOR_MAP:
            out = {}
            for _ in range(n):
                key = self.item(depth + 1)
                if isinstance(key, (list, dict)):
                    raise CBORError("map key is not a scalar at %d" % self.pos)
                if key in out:
                    raise CBORError("duplicate map key %r" % (key,))
                out[key] = self.item(depth + 1)
            return out
        raise CBORError("tags are not supported (at %d)" % (self.pos - 1))

    def simple(self, initial):
        if initial == _FALSE:
            return False
        if initial == _TRUE:
            return True
        if initial == _NULL:
            return None
        if initial == _FLOAT64:
            return struct.unpack(">d", self.take(8))[0]
        if initial == _FLOAT32:
            return struct.unpack(">f", self.take(4))[0]
        if initial == _FLOAT16:
            return _half_to_float(struct.unpack(">H", self.take(2))[0])
        raise CBORError("unsupported simple value 0x%02x at %d" % (initial, self.pos - 1))


def decode(buf):
    reader = _Reader(buf)
    obj = reader.item(0)
    if reader.pos != reader.end:
        raise CBORError("%d trailing bytes" % (reader.end - reader.pos))
    return obj
