# Opening the broker connection stage by stage (link, dns, tcp, tls), timing each, so that
# netdiag can say which stage failed and how long the good ones took. The board provides the
# hardware: link state, name resolution, the TCP socket and the TLS wrapper (socket factory).
import asyncio
import select

from micropython import const

_POLL_MS = const(20)


class StageFailed(Exception):
    def __init__(self, stage, why):
        super().__init__("%s: %s" % (stage, why))
        self.stage = stage
        self.why = why


def _why(exc):
    # Short text for a diag record: the errno when there is one.
    if isinstance(exc, OSError) and exc.args and isinstance(exc.args[0], int):
        return "errno %d" % exc.args[0]
    # mbedtls messages start with a newline; keep the words.
    return str(exc).strip()[:40] or type(exc).__name__


async def _connect(sock, addr, timeout_ms, ticks_ms, ticks_diff, connecting):
    # Non-blocking connect, polled, so that a slow or dead link never blocks intake.
    # connecting: the errnos that mean "under way" on this board (BoardBase).
    sock.setblocking(False)
    try:
        sock.connect(addr)
    except OSError as exc:
        if not exc.args or exc.args[0] not in connecting:
            raise
    poller = select.poll()
    poller.register(sock, select.POLLOUT)
    start = ticks_ms()
    while True:
        for _obj, event, *_ in poller.poll(0):
            if event & (select.POLLERR | select.POLLHUP):
                raise OSError("connect refused or reset")
            if event & select.POLLOUT:
                return
        if ticks_diff(ticks_ms(), start) >= timeout_ms:
            raise OSError("connect timed out")
        await asyncio.sleep_ms(_POLL_MS)


async def dial(board, host, port, creds, timeout_ms, times, ticks_ms, ticks_diff):
    # -> a connected socket (non-blocking). Fills times {"dns_ms", "tcp_ms", "tls_ms"}.
    # creds: tlscreds.Credentials for TLS (CA, client cert), None for plain TCP.
    # Raises StageFailed(stage, why).
    if not board.link_up():
        raise StageFailed("link", board.link_why())
    start = ticks_ms()
    try:
        addr = board.resolve(host, port)
    except OSError as exc:
        raise StageFailed("dns", _why(exc))
    now = ticks_ms()
    times["dns_ms"] = ticks_diff(now, start)
    start = now
    sock = None
    try:
        sock = board.tcp_socket(addr)
        await _connect(sock, addr, timeout_ms, ticks_ms, ticks_diff, board.connecting_errnos)
    except OSError as exc:
        if sock is not None:
            sock.close()
        raise StageFailed("tcp", _why(exc))
    now = ticks_ms()
    times["tcp_ms"] = ticks_diff(now, start)
    start = now
    if creds is not None:
        try:
            sock = board.wrap_tls(sock, host, timeout_ms, creds)
        except (OSError, ValueError) as exc:  # mbedtls: ValueError for a bad cert or name
            sock.close()
            raise StageFailed("tls", _why(exc))
        times["tls_ms"] = ticks_diff(ticks_ms(), start)
    else:
        times["tls_ms"] = 0
    return sock
