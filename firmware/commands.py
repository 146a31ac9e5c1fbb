# Commands from the collector on dz/v1/{dev}/cmd (QoS 1): CBOR {op: ...}.
#   flush   upload now (do not wait for the next poll)
#   report  send a heartbeat now
#   set     change intervals, each within its bounds; anything else is refused whole
import asyncio

import cbor

# key -> (min, max) in seconds
BOUNDS = {
    "hb_s": (10, 86400),
    "probe_s": (60, 86400),
    "signal_s": (60, 86400),
}


class Commands:
    def __init__(self, cfg, uploader, heartbeat):
        self.cfg = cfg
        self.uploader = uploader
        self.heartbeat = heartbeat
        self.refused = 0
        self.last = None

    def handle(self, payload):
        # -> True when applied. Never raises on bad input: a bad command is counted.
        try:
            msg = cbor.decode(payload)
        except ValueError:
            msg = None
        op = msg.get("op") if isinstance(msg, dict) else None
        self.last = op
        if op == "flush":
            self.uploader.kick()
        elif op == "report":
            asyncio.create_task(self.heartbeat.send())
        elif op == "set" and self._set(msg):
            pass
        else:
            self.refused += 1
            return False
        return True

    def _set(self, msg):
        changes = {}
        for key in msg:
            if key == "op":
                continue
            bounds = BOUNDS.get(key)
            value = msg[key]
            if bounds is None or not isinstance(value, int) or isinstance(value, bool):
                return False
            if not bounds[0] <= value <= bounds[1]:
                return False
            changes[key] = value
        if not changes:
            return False
        self.cfg.update(changes)
        return True
