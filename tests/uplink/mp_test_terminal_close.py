# The virtual board's terminal link (boards/virtual/terminal.py) closes the POS's open
# connection and its listening socket when the agent stops serving it: after an update's
# restart the next version runs on a fresh event loop, where the old tasks never run again; the
# POS must see the link close rather than wait for answers nobody reads, and the next version
# must be able to listen on the same port.
import asyncio
import socket

from mptest import check
from terminal import TcpTerminalLink

_PORT = 47123


async def _quiet(reader, writer):
    # A handler that reads and never answers, like intake waiting for its next frame.
    await reader.read(1)


async def _scenario():
    link = TcpTerminalLink(_PORT)
    serving = asyncio.create_task(link.serve(_quiet))
    await asyncio.sleep_ms(50)
    pos = socket.socket()
    pos.connect(socket.getaddrinfo("127.0.0.1", _PORT)[0][-1])
    await asyncio.sleep_ms(50)
    serving.cancel()
    # As firmware/main.py's _run ends: its tasks cancelled and waited for.
    await asyncio.gather(serving, return_exceptions=True)
    return pos


async def _listen_again():
    serving = asyncio.create_task(TcpTerminalLink(_PORT).serve(_quiet))
    await asyncio.sleep_ms(50)
    failed = serving.done()  # start_server raised (EADDRINUSE): the task ended at once
    serving.cancel()
    await asyncio.gather(serving, return_exceptions=True)
    return not failed


def test_the_pos_connection_is_closed_when_the_link_stops():
    pos = asyncio.run(_scenario())
    asyncio.new_event_loop()  # as the next version starts: the old handler never runs again
    pos.setblocking(False)
    try:
        got = pos.recv(1)
    except OSError:
        got = None  # EAGAIN: the connection is still open
    pos.close()
    check(got == b"", "the POS's connection is still open (got %r)" % (got,))


def test_the_next_version_listens_on_the_same_port():
    asyncio.run(_scenario())
    asyncio.new_event_loop()
    check(asyncio.run(_listen_again()), "the port is still held by the ended version")
