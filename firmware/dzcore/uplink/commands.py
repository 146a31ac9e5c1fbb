# Commands from the host on dz/v1/{dev}/cmd (QoS 1), DESIGN §1.5:
#   payload = CBOR {v: 1, dev, n, op, ...} followed by HMAC-SHA256(device key, those bytes)
#   flush   upload now (do not wait for the next poll)
#   report  send a heartbeat now
#   set     change timers, each within the bounds of `daozhang flash --set`; anything else
#           refuses the command whole. A change lasts until the next boot.
# `n` is the host's counter for this device; the highest one run is persisted before the command
# runs, so a recorded command is refused when it comes again (`replay`). A command that cannot be
# verified (no key here, a bad MAC, another device's, a replay, malformed) changes nothing and is
# journaled as a diag `cmd_refused {why, n}`. Every command is answered on dz/v1/{dev}/reply with
# CBOR {v: 1, dev, n, ok, why?, seen} and the same MAC, so the host can tell "refused" from "lost".
import asyncio
import os

from dzcore import cbor
from micropython import const

_MAC = const(32)
_MAX_N = 0x7FFFFFFF  # the host's counters fit a signed 32-bit column, and diag counts too

# key -> (min, max): the keys the agent applies while running, with `flash --set`'s bounds
# (host_tools/daozhang/contract.py AGENT_TUNABLE; tests/test_contract.py holds this copy to it).
BOUNDS = {
    "hb_s": (1, 86400),
    "probe_s": (1, 604800),
    "signal_s": (1, 86400),
}
_HEADER = ("v", "dev", "n", "op")


class Counter:
    # The highest command counter run, in a small file beside the journal (temp file + rename).
    def __init__(self, path):
        self.path = path
        self.value = 0

    def load(self):
        try:
            with open(self.path) as f:
                self.value = int(f.read().strip() or "0")
        except (OSError, ValueError):
            self.value = 0
        return self.value

    def advance(self, n):
        tmp = self.path + ".tmp"
        with open(tmp, "w") as f:
            f.write(str(n))
        os.rename(tmp, self.path)
        self.value = n


def _same(a, b):
    # Compares every byte, whatever differs first.
    if len(a) != len(b):
        return False
    diff = 0
    for i in range(len(a)):
        diff |= a[i] ^ b[i]
    return diff == 0


class Commands:
    def __init__(self, cfg, uploader, heartbeat, mac, counter, diag, send=None):
        # mac: HMAC256 over the device key, or None (no key: every command is refused);
        # send(payload) publishes a reply (a coroutine function), None in unit tests.
        self.cfg = cfg
        self.dev = cfg["dev"]
        self.uploader = uploader
        self.heartbeat = heartbeat
        self.mac = mac
        self.counter = counter
        self.diag = diag
        self.send = send
        self.refused = 0
        self.last = None  # the last command's (n, why): why None when it ran

    def handle(self, payload):
        # -> True when run. Never raises on bad input: a bad command is journaled and answered.
        n, why = self._judge(payload)
        self.last = (n, why)
        if why is not None:
            self.refused += 1
            self.diag.record({"ev": "cmd_refused", "why": why, "n": n})
        self._answer(n, why)
        return why is None

    def _judge(self, payload):
        # -> (n, None) when run, else (n, why); n is 0 until it is known and authentic.
        if self.mac is None:
            return 0, "nokey"
        if len(payload) <= _MAC:
            return 0, "mac"
        body = payload[:-_MAC]
        if not _same(self.mac.digest(body), payload[-_MAC:]):
            return 0, "mac"
        try:
            msg = cbor.decode(body)
        except ValueError:
            msg = None
        if not isinstance(msg, dict) or msg.get("v") != 1:
            return 0, "bad"
        n = msg.get("n")
        if not isinstance(n, int) or isinstance(n, bool) or not 1 <= n <= _MAX_N:
            return 0, "bad"
        if msg.get("dev") != self.dev:
            return n, "dev"
        if n <= self.counter.value:
            return n, "replay"
        # Persisted before anything runs: a power cut after the command leaves it spent, and a
        # command refused below is answered once, a replay the next time.
        try:
            self.counter.advance(n)
        except OSError:
            return n, "flash"
        op = msg.get("op")
        if op == "set":
            changes, why = _settings(msg)
            if why is not None:
                return n, why
            self.cfg.update(changes)
        elif op not in ("flush", "report") or len(msg) != len(_HEADER):
            return n, "op"
        elif op == "flush":
            self.uploader.kick()
        else:
            asyncio.create_task(self.heartbeat.send())
        return n, None

    def _answer(self, n, why):
        if self.send is None:
            return
        body = {"v": 1, "dev": self.dev, "n": n, "ok": why is None, "seen": self.counter.value}
        if why is not None:
            body["why"] = why
        data = cbor.encode(body)
        if self.mac is not None:
            data += self.mac.digest(data)
        asyncio.create_task(self.send(data))


def _settings(msg):
    # -> (changes, None) or (None, why): every key known and in its bounds, or nothing.
    changes = {}
    for key in msg:
        if key in _HEADER:
            continue
        bounds = BOUNDS.get(key)
        if bounds is None:
            return None, "key"
        value = msg[key]
        if not isinstance(value, int) or isinstance(value, bool):
            return None, "range"
        if not bounds[0] <= value <= bounds[1]:
            return None, "range"
        changes[key] = value
    if not changes:
        return None, "key"
    return changes, None
