# QuecPython's net, sim, dataCall, checkNet, misc.Power and machine.WDT, returning the shapes
# QuecPython documents (developer.quectel.com API reference), for the cat1 board adapter.


class FakeNet:
    def __init__(self):
        self.csq = 23
        # ([voice_state, lac, cid, rat, reject, psc], [data_state, lac, cid, rat, reject, psc])
        self.state = ([1, 0x5A1, 0x0B3F27, 7, 0, 0], [1, 0x5A1, 0x0B3F27, 7, 0, 0])
        # ([rssi, bitErrorRate, rscp, ecno], [rssi, rsrp, rsrq, cqi, sinr])
        self.detail = ([99, 99, 255, 255], [-71, -98, -11, 12, 14])
        self.nitz = ("25/11/22,03:40:00+32,0", 1763782800, 0)

    def csqQueryPoll(self):
        return self.csq

    def getState(self):
        return self.state

    def getSignal(self, sinrEnable=0):
        if self.detail == -1:
            return -1
        gw, lte = self.detail
        return (gw, lte if sinrEnable else lte[:4])

    def nitzTime(self):
        return self.nitz


class FakeSim:
    def __init__(self):
        self.status = 1  # 0 no card, 1 ready, 2 PIN locked, ...

    def getStatus(self):
        return self.status


class FakeDataCall:
    def __init__(self):
        self.callback = None
        self.state = 1

    def setCallback(self, fun):
        self.callback = fun
        return 0

    def getInfo(self, profileID, ipType):
        return (profileID, ipType, [self.state, 0, "10.64.3.7", "114.114.114.114", "8.8.8.8"])

    def event(self, profile, connected):
        # What the module does when the PDP context drops or comes back.
        self.state = connected
        self.callback((profile, connected))


class FakeCheckNet:
    def __init__(self):
        self.result = (3, 1)
        self.calls = []

    def waitNetworkReady(self, timeout=60):
        self.calls.append(timeout)
        return self.result


class FakePower:
    reason = 1

    @classmethod
    def powerOnReason(cls):
        return cls.reason


class FakeWDT:
    made = []

    def __init__(self, period):
        self.period = period
        self.fed = 0
        FakeWDT.made.append(self)

    def feed(self):
        self.fed += 1


def modules():
    import socket

    return {
        "net": FakeNet(),
        "sim": FakeSim(),
        "dataCall": FakeDataCall(),
        "checkNet": FakeCheckNet(),
        "Power": FakePower,
        "socket": socket,
        "WDT": FakeWDT,
    }
