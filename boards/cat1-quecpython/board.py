# The Cat.1 QuecPython module's hardware seam: the module itself is the co-processor.
# Link state from the data call (dataCall callbacks and getInfo) and, when down, the readiness
# stage from checkNet (SIM, registration, PDP); signal from net.getSignal / net.csqQueryPoll and
# registration from net.getState; SIM from sim.getStatus; wall time from the network (NITZ).
# The QuecPython modules are passed in (tests give fakes with the documented return shapes);
# by default they are imported when the board is built, never at import time.

from dzcore.boardbase import BoardBase

# net.getState data_rat -> DESIGN rat: 0 GSM, 1 GSM compact, 3 GSM EGPRS; 7 and up E-UTRAN.
_GSM_RATS = (0, 1, 3)
# misc.Power.powerOnReason(): 1 power key, 2 reset key, 3 VBAT, 4 RTC, 5 fault, 6 VBUS.
_REASONS = {1: "power_on", 2: "soft", 3: "power_on", 4: "power_on", 5: "crash", 6: "power_on"}
_UNKNOWN = (99, 255)  # "unknown or undetectable" in net.getSignal
_CHECKNET_STAGES = {1: "sim", 2: "reg", 3: "pdp"}
_PROFILE = 1
# Not yet run on a module: which numbering its sockets give EINPROGRESS (lwIP's 115 or a C
# library's 119) is not known, so both mean "connecting".
_EINPROGRESS_NEWLIB = 119


def _known(value):
    return isinstance(value, int) and value not in _UNKNOWN


class Board(BoardBase):
    name = "cat1-quecpython"
    connecting_errnos = BoardBase.connecting_errnos + (_EINPROGRESS_NEWLIB,)

    def __init__(self, modules=None, wdt_s=60):
        if modules is None:
            modules = _import_modules()
        self._net = modules["net"]
        self._sim = modules["sim"]
        self._data = modules["dataCall"]
        self._check = modules["checkNet"]
        self._power = modules.get("Power")
        self._socket = modules["socket"]
        self._ssl = modules.get("ussl")
        self._wdt_cls = modules.get("WDT")
        self._uart_cls = modules.get("UART")
        self._wdt_s = wdt_s
        self._up = None  # from the dataCall callback; None until the first event
        self.outages = 0  # data-call drops seen by the callback
        self._data.setCallback(self._on_data_call)

    def _on_data_call(self, args):
        # args: (profile id, 0 disconnected / 1 connected)
        if args[0] != _PROFILE:
            return
        up = args[1] == 1
        # A disconnect event implies a connection before it, seen or not.
        if self._up is not False and not up:
            self.outages += 1
        self._up = up

    # -- link -------------------------------------------------------------------------------
    def link_up(self):
        if self._up is not None:
            return self._up
        info = self._data.getInfo(_PROFILE, 0)
        return info != -1 and info[2][0] == 1

    def link_why(self):
        # The first stage that is not ready, from checkNet: "sim 0", "reg 2", "pdp 0".
        # Bounded (1 s) and only called while the link is down, before a connection attempt.
        result = self._check.waitNetworkReady(1)
        if result == (3, 1):
            return "ready"
        stage, state = result
        return "%s %d" % (_CHECKNET_STAGES.get(stage, "stage%d" % stage), state)

    def signal(self):
        sig = {}
        state = self._net.getState()
        if state != -1:
            data = state[1]  # [data_state, lac, cid, rat, reject_cause, psc]
            sig["reg"] = data[0]
            sig["cell"] = data[2]
            sig["rat"] = "gsm" if data[3] in _GSM_RATS else "lte"
        csq = self._net.csqQueryPoll()
        if _known(csq) and csq >= 0:
            sig["csq"] = csq
        detail = self._net.getSignal(1)
        if detail != -1:
            gw, lte = detail
            if sig.get("rat") == "gsm":
                if _known(gw[0]):
                    sig["rssi"] = gw[0]
            else:
                for key, value in zip(("rssi", "rsrp", "rsrq"), lte[:3]):
                    if _known(value):
                        sig[key] = value
                if len(lte) > 4 and _known(lte[4]):
                    sig["sinr"] = lte[4]
        sim = self._sim.getStatus()
        if sim != 1:
            sig["sim"] = sim
        return sig

    def reset_cause(self):
        if self._power is None:
            return "unknown"
        return _REASONS.get(self._power.powerOnReason(), "unknown")

    def wall_time(self):
        # The base station's time (NITZ), when the network gave one. -> (unix s, "modem").
        nitz = self._net.nitzTime()
        if nitz == -1 or not nitz[1]:
            return None
        return nitz[1], "modem"

    # -- sockets ----------------------------------------------------------------------------
    def resolve(self, host, port):
        return self._socket.getaddrinfo(host, port)[0][-1]

    def tcp_socket(self, addr):
        return self._socket.socket(self._socket.AF_INET, self._socket.SOCK_STREAM)

    def wrap_tls(self, sock, host, timeout_ms, creds):
        # QuecPython's ussl takes the slots' PEM text (not yet run on a module).
        if self._ssl is None:
            raise OSError("no TLS on this firmware")
        sock.setblocking(True)
        sock.settimeout(timeout_ms / 1000)
        wrapped = self._ssl.wrap_socket(sock, server_hostname=host, **creds.pem_args())
        sock.setblocking(False)
        return wrapped

    def watchdog(self):
        if self._wdt_cls is None:
            return None
        return self._wdt_cls(self._wdt_s)

    def journal_dir(self):
        # QuecPython's user file system is mounted at /usr.
        return "/usr/dz/journal"

    def uart(self, conf):
        # The UART to the POS main board: UART(id, baudrate, databits 8, parity 0, stop 1,
        # flow control 0), QuecPython's constructor; polled (no asyncio poll on its UART).
        if self._uart_cls is None:
            return None
        return self._uart_cls(conf.get("id", 2), conf.get("baudrate", 115200), 8, 0, 1, 0)


def _import_modules():
    import socket

    import checkNet
    import dataCall
    import net
    import sim
    import ussl
    from machine import UART, WDT
    from misc import Power

    return {
        "net": net,
        "sim": sim,
        "dataCall": dataCall,
        "checkNet": checkNet,
        "Power": Power,
        "socket": socket,
        "ussl": ussl,
        "WDT": WDT,
        "UART": UART,
    }
