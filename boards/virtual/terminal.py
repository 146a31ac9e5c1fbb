# The virtual board's terminal link (its "UART" to the POS main board): a TCP server on
# loopback, on the port the host wrote to /_hw/terminal.json. One POS connects at a time in
# practice; each connection is served by the handler until it closes.
import asyncio
import json

_CONFIG = "/_hw/terminal.json"
_HOST = "127.0.0.1"


class TcpTerminalLink:
    def __init__(self, port, host=_HOST):
        self.port = port
        self.host = host

    async def serve(self, handler):
        # handler(reader, writer): a coroutine per connection. Runs until cancelled; then the
        # open connections are closed too, as a UART goes quiet when the agent stops: their
        # handlers' tasks may never run again (a version that ends is followed by the next on
        # a fresh event loop, dzcore/ota/boot.py), and a POS left on one would wait for
        # answers nobody reads.
        streams = []

        async def one(reader, writer):
            streams.append(writer)
            try:
                await handler(reader, writer)
            finally:
                if writer in streams:
                    streams.remove(writer)

        server = await asyncio.start_server(one, self.host, self.port)
        try:
            while True:
                await asyncio.sleep(3600)
        finally:
            server.close()
            # The listening socket is closed by the server's own task when it sees the
            # cancel: wait for it, or the next version cannot bind the port (EADDRINUSE).
            await server.wait_closed()
            for writer in streams:
                try:
                    await writer.wait_closed()  # closes the socket; it does not wait
                except OSError:
                    pass  # the POS is gone already


def from_config(path=_CONFIG):
    # The link the host configured, or None when the board has no terminal link configured.
    try:
        with open(path) as f:
            port = json.load(f).get("tcp_port")
    except (OSError, ValueError):
        return None
    if not isinstance(port, int):
        return None
    return TcpTerminalLink(port)
