# The board contract's defaults. Every adapter (boards/<board>/board.py: Board) derives from
# BoardBase and writes only what its hardware makes different; boards/contract.py lists the
# whole contract (what every board must write itself too), and `./run check` holds each board
# to it. Like a port of an embedded SDK: a short list of platform functions, defaults for the
# optional ones.
import json
import sys

from micropython import const

_EINPROGRESS = const(115)
_EAGAIN = const(11)


def load_spec():
    # The board's declarative description (board.json): the first one on the module path,
    # the dev mount /_dev/0 on a virtual board in development, or where the flash tool put it
    # (/ or /lib) on a flashed board. {} when there is none.
    for folder in sys.path:
        try:
            with open((folder or ".") + "/board.json") as f:
                return json.load(f)
        except (OSError, ValueError):
            continue
    return {}


class BoardBase:
    name: str  # every board names itself, as board.json's "board" does

    # A non-blocking connect() raises OSError with one of these while the connection is
    # still under way (dial.py polls it then): EINPROGRESS and EAGAIN as Linux (the unix port)
    # and lwIP number them. A port whose C library numbers them otherwise says so here.
    connecting_errnos = (_EINPROGRESS, _EAGAIN)  # type: tuple

    _wdt = None  # the watchdog, started at the first feed

    def spec(self):
        return load_spec()

    def journal_dir(self):
        # On the flash's root file system. Not /journal: a root folder named like a module
        # would shadow it ("" is first on sys.path).
        return "/dz/journal"

    def terminal_link(self):
        # The link to the POS main board: the UART board.json describes, read by polling.
        # None: this board has no terminal link (the agent says so and runs without one).
        uart = self.uart(self.spec().get("uart", {}))
        if uart is None:
            return None
        from dzcore.intake.uart_link import UartLink

        return UartLink(uart)

    def uart(self, conf):
        # The terminal link's UART from board.json's "uart" map; None when there is none.
        return None

    def feed_watchdog(self):
        # Called every second by the agent. The watchdog starts at the first feed, not when
        # the board is built: a self-test or an inspection builds a Board and never feeds it.
        wdt = self._wdt
        if wdt is None:
            wdt = self._wdt = self.watchdog()
            if wdt is None:
                return
        wdt.feed()

    def watchdog(self):
        # A started hardware watchdog (anything with feed()), or None: nothing to feed.
        return None

    def rtc(self):
        # A real-time clock that keeps time by itself (a battery RTC, the modem's clock):
        # unix s, or None while it holds no time, or on a board without one (the default).
        return None

    def console_interrupts(self):
        # None: Ctrl-C on the console interrupts running code by itself, as a real board's
        # UART does (it only marks the interrupt pending; MicroPython raises it between
        # bytecodes). A board where that is unsafe hands the agent its console instead.
        return None

    def describe(self):
        # What the agent's console report and `device inspect` show.
        return {
            "board": self.name,
            "link": "up" if self.link_up() else "down",  # type: ignore[attr-defined]
            "signal": self.signal(),  # type: ignore[attr-defined]
            "cause": self.reset_cause(),  # type: ignore[attr-defined]
        }


def tls_client(tls, sock, host, timeout_ms, creds):
    # wrap_tls for the boards whose MicroPython has the `tls` module (mbedtls): the fleet CA
    # and this device's certificate (creds: tlscreds.Credentials, DER); mbedtls checks the
    # chain, the broker's name (server_hostname) and its dates against the system time. The
    # handshake runs blocking with the stage timeout; the socket then goes back to
    # non-blocking for asyncio.
    ctx = tls.SSLContext(tls.PROTOCOL_TLS_CLIENT)
    ctx.verify_mode = tls.CERT_REQUIRED
    ctx.load_verify_locations(creds.ca)
    if creds.cert is not None:
        ctx.load_cert_chain(creds.cert, creds.key)
    sock.setblocking(True)
    sock.settimeout(timeout_ms / 1000)
    wrapped = ctx.wrap_socket(sock, server_hostname=host)
    sock.setblocking(False)
    return wrapped
