# The virtual board's hardware seam: what the portable core is given.
# Link state and signal come from the host's control channel, a JSON file the host rewrites
# atomically (`daozhang board set`) and that the board sees read-only at /_hw/control.json.
import json
import socket
import time

_CONTROL = "/_hw/control.json"
_DEFAULT_SIGNAL = {"rat": "wifi", "rssi": -60}


class Board:
    name = "virtual"

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

    def feed_watchdog(self):
        pass  # the host is the watchdog of a virtual board

    def reset_cause(self):
        return self._control().get("reset_cause", "power_on")

    # -- socket factory (what firmware/dial.py uses) -----------------------------------------
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
        # TLS buffers come from libc on the unix port, not the GC heap. The handshake runs
        # blocking with a timeout; then the socket goes back to non-blocking for asyncio.
        # creds (tlscreds.Credentials): the fleet CA and this device's certificate, DER.
        # mbedtls checks the chain, the broker's name (server_hostname) and its dates, the
        # latter against the host's clock (the unix port's time source).
        import tls

        ctx = tls.SSLContext(tls.PROTOCOL_TLS_CLIENT)
        ctx.verify_mode = tls.CERT_REQUIRED  # type: ignore[attr-defined]
        ctx.load_verify_locations(creds.ca)
        if creds.cert is not None:
            ctx.load_cert_chain(creds.cert, creds.key)
        sock.setblocking(True)
        sock.settimeout(timeout_ms / 1000)
        wrapped = ctx.wrap_socket(sock, server_hostname=host)
        sock.setblocking(False)
        return wrapped

    def wall_time(self):
        # The host's clock (NTP-disciplined on any sane host). -> (unix s, source) or None.
        # Control `"clock": "none"` plays a board without NTP or modem time.
        if self._control().get("clock") == "none":
            return None
        return int(time.time()), "ntp"

    def terminal_link(self):
        # The link to the POS main board: loopback TCP on this board (boards/virtual/terminal.py).
        import terminal

        return terminal.from_config()

    def journal_dir(self):
        # The journal lives on the flash (the LittleFS image mounted at /). Not /journal: a
        # folder at the root named like a module would shadow `import journal` ("" is on
        # sys.path).
        return "/dz/journal"

    def spec(self):
        from boardspec import load_spec

        return load_spec()

    def describe(self):
        return {
            "board": self.name,
            "link": "up" if self.link_up() else "down",
            "signal": self.signal(),
            "cause": self.reset_cause(),
        }
