# The virtual board's hardware seam: what the portable core is given.
# Link state and signal come from the host's control channel, a JSON file the host rewrites
# atomically (`daozhang board set`) and that the board sees read-only at /_hw/control.json.
import json
import socket
import time

from dzcore.boardbase import BoardBase, tls_client

_CONTROL = "/_hw/control.json"
_DEFAULT_SIGNAL = {"rat": "wifi", "rssi": -60}


class Board(BoardBase):
    name = "virtual"
    # No watchdog() (the host is the watchdog of a virtual board): BoardBase feeds nothing.

    def __init__(self, control_path=_CONTROL):
        self._control_path = control_path

    def _control(self):
        # Read on every call: the host may change it at any moment; a torn or missing file
        # (never expected: the host renames into place) reads as "no control", link up.
        try:
            with open(self._control_path) as f:
                return json.load(f)
        except (OSError, ValueError):
            return {}

    def link_up(self):
        return self._control().get("link", "up") == "up"

    def signal(self):
        signal = self._control().get("signal")
        if not isinstance(signal, dict):
            return dict(_DEFAULT_SIGNAL)
        return signal

    def link_why(self):
        return "control: link down"

    def reset_cause(self):
        return self._control().get("reset_cause", "power_on")

    # -- socket factory (what firmware/dzcore/uplink/dial.py uses) ---------------------------
    # With the control's link "down" every new connection fails as on a dead link: the name
    # does not resolve and the TCP connect is unreachable. A session already open is dropped
    # by the agent's link watch, as a real board drops it when its interface goes down.
    def resolve(self, host, port):
        if not self.link_up():
            raise OSError(113)  # EHOSTUNREACH
        return socket.getaddrinfo(host, port, 0, socket.SOCK_STREAM)[0][-1]

    def tcp_socket(self, addr):
        if not self.link_up():
            raise OSError(101)  # ENETUNREACH
        return socket.socket(socket.AF_INET, socket.SOCK_STREAM)

    def wrap_tls(self, sock, host, timeout_ms, creds):
        # TLS buffers come from libc on the unix port, not the GC heap. mbedtls checks the
        # broker's dates against the host's clock (the unix port's time source).
        import tls

        return tls_client(tls, sock, host, timeout_ms, creds)

    def _clock(self):
        # The board's time (unix s), or None with control `"clock": "none"` (a board without
        # NTP, modem time or a set RTC). By default the host's clock (NTP-disciplined on any
        # sane host). Control `"clock": {"t": T, "at": A, "rate": R}` sets it as one sets a
        # real board's RTC: T at host time A, then R seconds per real second, so a simulated
        # business day can run faster than real time while uptime and every timer stay real.
        clock = self._control().get("clock")
        if clock == "none":
            return None
        host = time.time()
        if isinstance(clock, dict):
            try:
                return int(clock["t"] + (host - clock["at"]) * clock["rate"])
            except (KeyError, TypeError):
                pass  # a control the host did not mean: read as the host's clock
        return int(host)

    def wall_time(self):
        # -> (unix s, source) or None: the board's NTP, served from the same clock.
        now = self._clock()
        return None if now is None else (now, "ntp")

    def rtc(self):
        # The board's battery RTC: it keeps the time across power cuts and between NTP syncs.
        return self._clock()

    def console_interrupts(self):
        # The unix port takes Ctrl-C as SIGINT and raises KeyboardInterrupt from the signal
        # handler: a longjmp out of whatever C code runs (the allocator, mbedtls, a generator's
        # resume), which now and then ended the board with "FATAL: uncaught NLR" when mpremote
        # interrupted the agent. A real board's UART only marks the interrupt pending. So while
        # the agent runs, SIGINT is off (the console relay then passes Ctrl-C on as a byte) and
        # the agent reads the console and stops between its tasks (firmware/main.py).
        import sys

        import micropython

        micropython.kbd_intr(-1)
        return sys.stdin.buffer

    def terminal_link(self):
        # The link to the POS main board: loopback TCP on this board (boards/virtual/terminal.py).
        import terminal

        return terminal.from_config()
