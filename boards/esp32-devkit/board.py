# The ESP32 dev board's hardware seam (a Wi-Fi board emulating the co-processor): WLAN status
# and RSSI, LittleFS on the "vfs" partition, the watchdog, the reset cause and NTP time.
# The MicroPython modules are passed in (tests give fakes with the documented shapes); by
# default they are imported when the board is built, never at import time.

from dzcore.boardbase import BoardBase, tls_client

_UNIX_2000 = 946684800  # seconds from 1970 to 2000: older ESP32 builds count from 2000
_EINPROGRESS_NEWLIB = 119  # ESP-IDF's sockets number EINPROGRESS as its C library (newlib) does


class Board(BoardBase):
    name = "esp32-devkit"
    connecting_errnos = BoardBase.connecting_errnos + (_EINPROGRESS_NEWLIB,)

    def __init__(self, modules=None, wdt_ms=60000):
        if modules is None:
            modules = _import_modules()
        self._network = modules["network"]
        self._machine = modules["machine"]
        self._esp32 = modules["esp32"]
        self._socket = modules["socket"]
        self._time = modules["time"]
        self._ntptime = modules.get("ntptime")
        self._tls = modules.get("tls")
        self._vfs = modules.get("vfs")
        self.wlan = self._network.WLAN(self._network.STA_IF)
        self._wdt_ms = wdt_ms
        self._ntp_ok = False

    # -- storage ----------------------------------------------------------------------------
    def mount_storage(self, point="/"):
        # LittleFS2 on the data partition labelled "vfs" (formatted on first use).
        parts = self._esp32.Partition.find(self._esp32.Partition.TYPE_DATA, label="vfs")
        if not parts:
            raise OSError("no 'vfs' data partition")
        part = parts[0]
        try:
            fs = self._vfs.VfsLfs2(part)
        except OSError:
            self._vfs.VfsLfs2.mkfs(part)
            fs = self._vfs.VfsLfs2(part)
        self._vfs.mount(fs, point)
        return part

    # -- link -------------------------------------------------------------------------------
    def link_up(self):
        return self.wlan.isconnected()

    def link_why(self):
        net = self._network
        status = self.wlan.status()
        names = {
            net.STAT_IDLE: "idle",
            net.STAT_CONNECTING: "connecting",
            net.STAT_WRONG_PASSWORD: "wrong password",
            net.STAT_NO_AP_FOUND: "no ap",
            net.STAT_GOT_IP: "got ip",
        }
        for extra in ("STAT_BEACON_TIMEOUT", "STAT_ASSOC_FAIL", "STAT_HANDSHAKE_TIMEOUT"):
            if hasattr(net, extra):
                names[getattr(net, extra)] = extra[5:].lower().replace("_", " ")
        return names.get(status, "status %d" % status)

    def signal(self):
        sig = {"rat": "wifi"}
        if self.wlan.isconnected():
            sig["rssi"] = self.wlan.status("rssi")
        return sig

    def reset_cause(self):
        m = self._machine
        causes = {
            m.PWRON_RESET: "power_on",
            m.WDT_RESET: "watchdog",
            m.SOFT_RESET: "soft",
            m.DEEPSLEEP_RESET: "power_on",
            m.HARD_RESET: "unknown",
        }
        return causes.get(m.reset_cause(), "unknown")

    def wall_time(self):
        # NTP once per boot, when the link is up. -> (unix s, "ntp") or None.
        if not self._ntp_ok:
            if self._ntptime is None or not self.wlan.isconnected():
                return None
            try:
                self._ntptime.settime()
            except OSError:
                return None
            self._ntp_ok = True
        now = self._time.time()
        if self._time.gmtime(0)[0] == 2000:
            now += _UNIX_2000
        return now, "ntp"

    # -- sockets ----------------------------------------------------------------------------
    def resolve(self, host, port):
        return self._socket.getaddrinfo(host, port)[0][-1]

    def tcp_socket(self, addr):
        return self._socket.socket(self._socket.AF_INET, self._socket.SOCK_STREAM)

    def wrap_tls(self, sock, host, timeout_ms, creds):
        # TLS buffers come from the GC heap on the ESP32 (about 20 KB more than the agent).
        # mbedtls checks the broker's dates against the system time, which NTP sets.
        if self._tls is None:
            raise OSError("no TLS on this firmware")
        return tls_client(self._tls, sock, host, timeout_ms, creds)

    def watchdog(self):
        return self._machine.WDT(timeout=self._wdt_ms)

    def uart(self, conf):
        # The UART to the POS main board, as board.json says (id, tx, rx, baudrate).
        return self._machine.UART(
            conf.get("id", 1), conf.get("baudrate", 115200), tx=conf.get("tx"), rx=conf.get("rx")
        )


def _import_modules():
    import socket
    import time

    import esp32
    import machine
    import network
    import ntptime
    import tls
    import vfs

    return {
        "network": network,
        "machine": machine,
        "esp32": esp32,
        "socket": socket,
        "time": time,
        "ntptime": ntptime,
        "tls": tls,
        "vfs": vfs,
    }
