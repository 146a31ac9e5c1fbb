# A byte stream standing in for the UART or TCP stream intake reads: the test queues the
# bytes the POS "sends"; what intake writes back is collected in `written`.
import asyncio


class FakeStream:
    def __init__(self, data=b""):
        self._in = bytearray(data)
        self.written = bytearray()
        self.closed = False

    def feed(self, data):
        self._in.extend(data)

    async def read(self, n):
        await asyncio.sleep_ms(0)
        chunk = bytes(self._in[:n])
        self._in = self._in[n:]
        return chunk  # b"" once everything was read: the end of the stream

    async def readexactly(self, n):
        if len(self._in) < n:
            # Like a POS that stopped mid-frame: the bytes never come.
            await asyncio.sleep_ms(5000)
        return await self.read(n)

    def write(self, data):
        self.written.extend(data)

    async def drain(self):
        await asyncio.sleep_ms(0)

    def close(self):
        self.closed = True

    async def wait_closed(self):
        await asyncio.sleep_ms(0)
