# The terminal link between the POS main board and the agent (docs/terminal-link.md):
# frames `STX | type | len (u16 BE) | payload (CBOR) | crc32 (u32 BE over type..payload)`.
# Portable: it reads and writes any asyncio stream (a UART stream on a board, a TCP stream on
# the virtual board). A frame that does not check out is reported, never guessed at.
import asyncio
import struct
from binascii import crc32

from micropython import const

STX = const(0x02)
MAX_PAYLOAD = const(1024)
_FRAME_TIMEOUT_MS = const(2000)  # a frame's bytes after its STX must arrive within this

RECEIPT = b"R"
PING = b"P"
ACK = b"A"
NAK = b"N"


class BadFrame(Exception):
    # The bytes after an STX were not a good frame; str() is the NAK reason.
    pass


def encode(kind, payload):
    head = bytearray(4)
    head[0] = STX
    head[1] = kind[0]
    struct.pack_into(">H", head, 2, len(payload))
    crc = crc32(payload, crc32(memoryview(head)[1:]))
    return bytes(head) + payload + struct.pack(">I", crc)


class FrameReader:
    def __init__(self, stream):
        self.stream = stream
        self.skipped = 0  # bytes before an STX, dropped

    async def _exactly(self, n):
        data = await asyncio.wait_for_ms(self.stream.readexactly(n), _FRAME_TIMEOUT_MS)
        if len(data) != n:
            raise EOFError()
        return data

    async def read(self):
        # -> (kind, payload). EOFError at the end of the stream; BadFrame for a bad frame
        # (its bytes are consumed: the sender resends on the NAK or its own timeout).
        while True:
            first = await self.stream.read(1)
            if not first:
                raise EOFError()
            if first[0] == STX:
                break
            self.skipped += 1
        try:
            head = await self._exactly(3)
            size = struct.unpack_from(">H", head, 1)[0]
            if size > MAX_PAYLOAD:
                raise BadFrame("len")
            rest = await self._exactly(size + 4)
        except asyncio.TimeoutError:
            raise BadFrame("timeout") from None
        payload = rest[:size]
        if crc32(payload, crc32(head)) != struct.unpack_from(">I", rest, size)[0]:
            raise BadFrame("crc")
        return bytes(head[0:1]), payload
