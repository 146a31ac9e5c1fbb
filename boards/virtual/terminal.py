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
        # handler(reader, writer): a coroutine per connection. Runs until cancelled.
        server = await asyncio.start_server(handler, self.host, self.port)
        try:
            while True:
                await asyncio.sleep(3600)
        finally:
            server.close()


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
