# A hand-driven ticks source with the boards' 30-bit wrap (time.ticks_* semantics).
_PERIOD = 1 << 30
_HALF = _PERIOD >> 1


class FakeTicks:
    def __init__(self, start=0):
        self.value = start % _PERIOD

    def ticks_ms(self):
        return self.value

    def advance(self, ms):
        self.value = (self.value + ms) % _PERIOD

    @staticmethod
    def ticks_diff(a, b):
        return ((a - b + _HALF) % _PERIOD) - _HALF
