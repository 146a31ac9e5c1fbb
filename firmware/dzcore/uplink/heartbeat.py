# The heartbeat on dz/v1/{dev}/hb (QoS 0): the device's health in one CBOR map, with the
# fields of DESIGN §1.3. Counters are deltas since the previous heartbeat that was sent: a
# heartbeat that could not go out (link down) leaves them to the next one.
import gc
import json

from dzcore import cbor
from dzcore.uplink.mqtt_codec import MQTTError

FW_VERSION = "0.1.0"  # an agent run from source, never flashed: no manifest says otherwise


def flashed_version(manifest="/fw.json"):
    # The version `daozhang flash` wrote into its manifest; an update's replaces it once one
    # runs (agent.py). Updates are judged against it: a constant here made every board
    # "0.1.0" whatever was flashed.
    try:
        with open(manifest) as f:
            version = json.load(f)["version"]
    except (OSError, ValueError, KeyError, TypeError):
        return FW_VERSION
    return version if isinstance(version, str) else FW_VERSION


class Heartbeat:
    def __init__(self, dev, journal, clock, board, uplink, cause, mac=None):
        self.dev = dev
        self.mac = mac  # HMAC256 of the device's key: a keyed device's heartbeat is signed
        self.journal = journal
        self.clock = clock
        self.board = board
        self.uplink = uplink
        self.cause = cause
        self._prev = (0, 0, 0, 0, clock.up_ms())  # recon, ok, fail, conn_ms, up
        self.sent = 0
        self.fw = flashed_version()  # the running version: an update's, once one runs
        self.ota = None  # () -> the update's state text, or None (DESIGN §1.6)

    def _counters(self):
        up = self.uplink
        return (
            up.reconnects,
            up.uploader.sync_ok,
            up.uploader.sync_fail,
            up.connected_ms(),
            self.clock.up_ms(),
        )

    def build(self):
        stats = self.journal.stats()
        now = self.clock.now()
        cur = self._counters()
        prev = self._prev
        up_ms = cur[4]
        # The oldest unacked record's age: from its wall time, else from its uptime (same
        # boot assumed); None from the journal when only unsynced diagnostics are unacked.
        oldest_t, oldest_up = stats["oldest_t"], stats["oldest_up"]
        if not stats["records"]:
            jold_s = 0
        elif now and oldest_t:
            jold_s = now - oldest_t
        elif oldest_up is not None:
            jold_s = (up_ms - oldest_up) // 1000
        else:
            jold_s = 0
        return {
            "v": 1,
            "dev": self.dev,
            "t": now,
            "epoch": stats["epoch"],
            "fw": self.fw,
            "boot": stats["boot"],
            "up": up_ms,
            "cause": self.cause,
            "heap": gc.mem_free(),
            "jrec": stats["records"],
            "jbytes": stats["bytes"],
            "jold_s": max(0, jold_s),
            "jcap": stats["capacity"],
            "next_seq": stats["next_seq"],
            "ovf": stats["overflow_receipts"] + stats["overflow_diag"],
            "link": "up" if self.uplink.connected else "down",
            "sig": self.board.signal(),
            "recon": cur[0] - prev[0],
            "sync_ok": cur[1] - prev[1],
            "sync_fail": cur[2] - prev[2],
            "conn_ms": cur[3] - prev[3],
            "exp_ms": cur[4] - prev[4],
        }, cur

    def _body(self):
        body, cur = self.build()
        state = self.ota() if self.ota is not None else None
        if state:
            body["ota"] = state
        return body, cur

    async def send(self):
        # -> True when it went out; the counters then start again from here.
        if not self.uplink.connected:
            return False
        body, cur = self._body()
        payload = cbor.encode(body)
        if self.mac is not None:
            payload += self.mac.digest(payload)
        try:
            await self.uplink.client.publish(self.uplink.topic("hb"), payload, 0)
        except (OSError, MQTTError):
            return False  # the session notices the broken link itself; counters carry over
        self._prev = cur
        self.sent += 1
        return True
