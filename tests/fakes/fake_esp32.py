# MicroPython's ESP32 network, machine, esp32, ntptime and time modules with the documented
# shapes (docs.micropython.org, esp32 port), for the esp32-devkit board adapter.


class FakeWLAN:
    def __init__(self, network):
        self._network = network
        self.connected = True
        self.code = network.STAT_GOT_IP
        self.rssi = -61

    def isconnected(self):
        return self.connected

    def status(self, param=None):
        if param == "rssi":
            if not self.connected:
                raise OSError("STA is not connected")
            return self.rssi
        return self.code


class FakeNetwork:
    STA_IF = 0
    STAT_IDLE = 1000
    STAT_CONNECTING = 1001
    STAT_GOT_IP = 1010
    STAT_NO_AP_FOUND = 201
    STAT_WRONG_PASSWORD = 202
    STAT_BEACON_TIMEOUT = 200
    STAT_ASSOC_FAIL = 203
    STAT_HANDSHAKE_TIMEOUT = 204

    def __init__(self):
        self.wlan = FakeWLAN(self)

    def WLAN(self, interface):
        return self.wlan


class FakeWDT:
    def __init__(self, timeout=5000):
        self.timeout = timeout
        self.fed = 0

    def feed(self):
        self.fed += 1


class FakeMachine:
    PWRON_RESET = 1
    HARD_RESET = 2
    WDT_RESET = 3
    DEEPSLEEP_RESET = 4
    SOFT_RESET = 5

    def __init__(self):
        self.cause = self.PWRON_RESET
        self.wdts = []

    def reset_cause(self):
        return self.cause

    def UART(self, *args, **kw):
        self.uart = FakeUART(*args, **kw)
        return self.uart

    def WDT(self, timeout=5000):
        wdt = FakeWDT(timeout)
        self.wdts.append(wdt)
        return wdt


class FakePartition:
    TYPE_APP = 0
    TYPE_DATA = 1
    table = []

    def __init__(self, label):
        self.label = label

    @classmethod
    def find(cls, type=TYPE_APP, subtype=0xFF, label=None):
        return [p for p in cls.table if type == cls.TYPE_DATA and p.label == label]


class FakeEsp32:
    Partition = FakePartition


class FakeVfs:
    def __init__(self):
        self.mounted = []
        self.formatted = []
        self.blank = True
        outer = self

        class VfsLfs2:
            def __init__(self, dev):
                if outer.blank:
                    raise OSError(19)  # ENODEV: no filesystem yet
                self.dev = dev

            @staticmethod
            def mkfs(dev):
                outer.formatted.append(dev)
                outer.blank = False

        self.VfsLfs2 = VfsLfs2

    def mount(self, fs, point):
        self.mounted.append((fs, point))


class FakeNtp:
    def __init__(self):
        self.calls = 0
        self.fail = False

    def settime(self):
        self.calls += 1
        if self.fail:
            raise OSError(110)


class FakeTime:
    def __init__(self, epoch_year=2000):
        self.epoch_year = epoch_year
        self.now = 817090800  # 2025-11-22 since 2000

    def time(self):
        return self.now

    def gmtime(self, secs=0):
        return (self.epoch_year, 1, 1, 0, 0, 0, 5, 1)


def modules():
    import socket

    return {
        "network": FakeNetwork(),
        "machine": FakeMachine(),
        "esp32": FakeEsp32,
        "socket": socket,
        "time": FakeTime(),
        "ntptime": FakeNtp(),
        "vfs": FakeVfs(),
    }


class FakeUART:
    # machine.UART: any() bytes waiting, read(n), write(b); `feed` is the POS side.
    def __init__(self, id=1, baudrate=9600, tx=None, rx=None, *args):
        self.args = (id, baudrate, tx, rx) + args
        self.rx = b""
        self.tx = b""

    def feed(self, data):
        self.rx += data

    def any(self):
        return len(self.rx)

    def read(self, n):
        data, self.rx = self.rx[:n], self.rx[n:]
        return data or None

    def write(self, data):
        self.tx += bytes(data)
        return len(data)
