# The terminal link over a UART, for boards whose UART cannot be polled by asyncio (QuecPython)
# or where polling is the simple, portable way (ESP32): the UART is read when `any()` says
# bytes are waiting, every few milliseconds. Gives the handler the stream calls intake uses.
import asyncio

from micropython import const

_POLL_MS = const(10)


class PolledUart:
    def __init__(self, uart):
        self._uart = uart
        self._buf = b""

    async def _fill(self):
        while True:
            n = self._uart.any()
            if n:
                data = self._uart.read(n)
                if data:
                    self._buf += data
                    return
            await asyncio.sleep_ms(_POLL_MS)

    async def read(self, n):
        if not self._buf:
            await self._fill()
        data, self._buf = self._buf[:n], self._buf[n:]
        return data

    async def readexactly(self, n):
        while len(self._buf) < n:
            await self._fill()
        data, self._buf = self._buf[:n], self._buf[n:]
        return data

    def write(self, data):
        self._uart.write(data)

    async def drain(self):
        await asyncio.sleep_ms(0)

    def close(self):
        pass  # a UART stays open: the POS is wired to it for good

    async def wait_closed(self):
        pass


class UartLink:
    def __init__(self, uart):
        self.uart = uart

    async def serve(self, handler):
        # handler(reader, writer) returns when the stream fails; a UART never closes, so it
        # is served again (a fresh reader drops half a frame left by the failure).
        while True:
            stream = PolledUart(self.uart)
            await handler(stream, stream)
            await asyncio.sleep_ms(_POLL_MS)
