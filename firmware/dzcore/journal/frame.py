# The journal's on-flash frame: `len (u16 BE) | crc32 (u32 BE) | body`, body one CBOR record
# map whose first five keys are always, in this order, seq k t boot up (then b). Writing the
# keys in a fixed order lets recovery read a record's identity without decoding the body and
# lets a resync find the next frame by its fixed prefix. seq, t, boot and up are unsigned.
# A segment file starts with a 12-byte header: magic "DZJ1" | epoch (u32 BE) | crc32 of both.
import struct
from binascii import crc32

from dzcore import cbor
from micropython import const

FRAME_HEAD = const(6)
MAX_RECORD = const(512)
SEGMENT_HEAD = const(12)
_MAP6 = const(0xA6)
_MAGIC = b"DZJ1"
# The body of every frame starts with map(6) and the text key "seq": what a resync looks for.
_BODY_START = b"\xa6\x63seq"


class RecordTooLarge(ValueError):
    pass


def segment_header(epoch):
    head = bytearray(SEGMENT_HEAD)
    head[0:4] = _MAGIC
    struct.pack_into(">I", head, 4, epoch)
    struct.pack_into(">I", head, 8, crc32(memoryview(head)[:8]))
    return head


def segment_epoch(head):
    # The epoch a segment header names, or None when it is short or damaged.
    if len(head) < SEGMENT_HEAD or bytes(head[0:4]) != _MAGIC:
        return None
    if struct.unpack_from(">I", head, 8)[0] != crc32(memoryview(head)[:8]):
        return None
    return struct.unpack_from(">I", head, 4)[0]


def _key(buf, pos, key):
    end = pos + len(key)
    if end > len(buf):
        raise cbor.BufferTooSmall("buffer too small")
    buf[pos:end] = key
    return end


def encode_record(buf, seq, kind, t, boot, up, body):
    # Writes the frame (head + record) into buf; returns the frame's length.
    try:
        pos = cbor.head_into(buf, FRAME_HEAD, 5, 6)
        pos = cbor.encode_into(seq, buf, _key(buf, pos, b"\x63seq"))
        pos = cbor.encode_into(kind, buf, _key(buf, pos, b"\x61k"))
        pos = cbor.encode_into(t, buf, _key(buf, pos, b"\x61t"))
        pos = cbor.encode_into(boot, buf, _key(buf, pos, b"\x64boot"))
        pos = cbor.encode_into(up, buf, _key(buf, pos, b"\x62up"))
        pos = cbor.encode_into(body, buf, _key(buf, pos, b"\x61b"))
    except cbor.BufferTooSmall:
        raise RecordTooLarge("record over %d bytes" % MAX_RECORD) from None
    size = pos - FRAME_HEAD
    struct.pack_into(">HI", buf, 0, size, crc32(memoryview(buf)[FRAME_HEAD:pos]))
    return pos


class Header:
    # The identity of one record, read from the fixed prefix of its body.
    def __init__(self):
        self.seq = 0
        self.kind = ""
        self.t = 0
        self.boot = 0
        self.up = 0


def _uint(body, pos):
    # A CBOR unsigned int at pos: (value, next pos); (-1, pos) when it is not one.
    if pos >= len(body):
        return -1, pos
    initial = body[pos]
    if initial >> 5:
        return -1, pos
    info = initial & 0x1F
    if info < 24:
        return info, pos + 1
    if info > 27:
        return -1, pos
    width = 1 << (info - 24)
    if pos + 1 + width > len(body):
        return -1, pos
    value = 0
    for i in range(width):
        value = (value << 8) | body[pos + 1 + i]
    return value, pos + 1 + width


def parse_header(body, out):
    # Fills `out` from a record body; False when the body does not start as our records do.
    if len(body) < 20 or bytes(body[0:5]) != _BODY_START:
        return False
    seq, pos = _uint(body, 5)
    if seq < 0 or bytes(body[pos : pos + 3]) != b"\x61k\x61":
        return False
    kind = body[pos + 3]
    if kind not in (0x72, 0x64):  # "r" or "d"
        return False
    pos += 4
    if bytes(body[pos : pos + 2]) != b"\x61t":
        return False
    t, pos = _uint(body, pos + 2)
    if t < 0 or bytes(body[pos : pos + 5]) != b"\x64boot":
        return False
    boot, pos = _uint(body, pos + 5)
    if boot < 0 or bytes(body[pos : pos + 3]) != b"\x62up":
        return False
    up, pos = _uint(body, pos + 3)
    if up < 0:
        return False
    out.seq = seq
    out.kind = "r" if kind == 0x72 else "d"
    out.t = t
    out.boot = boot
    out.up = up
    return True


class FrameReader:
    # Reads the frames of one segment file in order, checking each one's length and CRC.
    # `buf` is the caller's reused buffer of FRAME_HEAD + MAX_RECORD bytes.
    def __init__(self, file, size, buf, pos=SEGMENT_HEAD):
        self.file = file
        self.size = size
        self.buf = buf
        self.view = memoryview(buf)
        self.pos = pos
        self.header = Header()
        self.length = 0  # frame length of the last good frame read

    def next(self):
        # True: a good frame at self.pos (body in buf[FRAME_HEAD:self.length]); the caller
        # then calls advance(). False: end of file, or a bad frame at self.pos (bad() says).
        left = self.size - self.pos
        if left < FRAME_HEAD:
            return False
        self.file.seek(self.pos)
        if self.file.readinto(self.view[:FRAME_HEAD]) != FRAME_HEAD:
            return False
        size, crc = struct.unpack_from(">HI", self.buf, 0)
        if size < 20 or size > MAX_RECORD or FRAME_HEAD + size > left:
            return False
        body = self.view[FRAME_HEAD : FRAME_HEAD + size]
        if self.file.readinto(body) != size or crc32(body) != crc:
            return False
        if not parse_header(body, self.header):
            return False
        self.length = FRAME_HEAD + size
        return True

    def advance(self):
        self.pos += self.length

    def at_end(self):
        return self.size - self.pos == 0

    def body(self):
        return self.view[FRAME_HEAD : self.length]

    def frame(self):
        return self.view[: self.length]

    def resync(self):
        # After a bad frame at self.pos: moves to the next good frame and returns True, or
        # returns False when none follows. Candidates are found by the fixed body prefix.
        start = self.pos + 1
        chunk = self.view[:MAX_RECORD]
        while start + FRAME_HEAD < self.size:
            self.file.seek(start + FRAME_HEAD)
            got = self.file.readinto(chunk)
            if not got:
                return False
            window = bytes(chunk[:got])
            found = window.find(_BODY_START)
            while found >= 0:
                self.pos = start + found
                if self.next():
                    return True
                found = window.find(_BODY_START, found + 1)
            if got < len(_BODY_START):
                return False
            start += got - len(_BODY_START) + 1
        self.pos = self.size
        return False
