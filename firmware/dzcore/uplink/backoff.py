# Reconnect delays: exponential backoff with full jitter, capped.
# Full jitter (a uniform draw in [0, ceiling]) spreads a fleet that lost its broker together,
# so that it does not come back together; the caller resets it after a stable connection.
from micropython import const

_MAX_SHIFT = const(20)


class Backoff:
    def __init__(self, rand32, base_ms=1000, cap_ms=300000):
        self._rand = rand32  # callable -> uniform 32-bit int
        self.base_ms = base_ms
        self.cap_ms = cap_ms
        self.tries = 0

    def ceiling_ms(self):
        return min(self.cap_ms, self.base_ms << min(self.tries, _MAX_SHIFT))

    def next_ms(self):
        ceiling = self.ceiling_ms()
        self.tries += 1
        return self._rand() % (ceiling + 1)

    def reset(self):
        self.tries = 0
