# The last known wall time, persisted: after a reboot without NTP or modem time, real time is
# at least this, which is enough to refuse an expired certificate before the first ack sets
# the clock. Written at most once an hour (flash wear), atomically (temp file + rename).
# `daozhang flash` seeds it with the flashing time, so a provisioned device is never without.
import os

from micropython import const

_SAVE_EVERY_S = const(3600)


class TimeFloor:
    def __init__(self, path):
        self.path = path
        self.value = 0
        self._saved = 0

    def load(self):
        try:
            with open(self.path) as f:
                self.value = int(f.read().strip() or "0")
        except (OSError, ValueError):
            self.value = 0
        self._saved = self.value
        return self.value

    def note(self, now):
        # Raise the floor to now (unix s; 0 = unknown, ignored); persist when due.
        if now <= self.value:
            return
        self.value = now
        if now - self._saved < _SAVE_EVERY_S:
            return
        tmp = self.path + ".tmp"
        with open(tmp, "w") as f:
            f.write(str(now))
        os.rename(tmp, self.path)
        self._saved = now
