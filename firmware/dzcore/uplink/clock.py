# Uptime and wall clock for the agent.
#
# Uptime is a 64-bit millisecond count built from ticks_diff: board ticks are 30 bits and wrap
# every ~12 days, so the count adds the difference since the last sample; that holds as long as
# someone samples at least once per half wrap (~6 days), which the agent does every second.
# Wall time comes from the best source the board has (NTP, the modem) or else from the
# collector's ack `now`; `set()` returns the step to journal as a `clock` record. Between two
# settings it runs on uptime, unless the board has a real-time clock (`board.rtc()`, a battery
# RTC or the modem's clock): then it reads the RTC, corrected by the offset found at the last
# setting, so it keeps the RTC's time across the gaps between syncs instead of the tick
# counter's (and a board whose RTC is right never journals a step).
# `scale` makes agent time run faster than real time (simulated days in tests only).
from micropython import const

_STEP_TO_RECORD_S = const(2)


class Clock:
    def __init__(self, ticks_ms, ticks_diff, scale=1, rtc=None):
        self._ticks = ticks_ms
        self._diff = ticks_diff
        self.scale = scale
        self._last = ticks_ms()
        self._up = 0
        self._base_s = 0  # wall time (unix s) at uptime _base_up; 0 = wall time unknown
        self._base_up = 0
        self.src = None  # "ntp" | "modem" | "ack" once set
        self._rtc = rtc  # () -> unix s, or None/0 while the RTC holds no time
        self._rtc_off = 0  # last setting minus the RTC's reading then

    def up_ms(self):
        now = self._ticks()
        self._up += self._diff(now, self._last) * self.scale
        self._last = now
        return self._up

    def sleep_ms(self, agent_ms):
        # Real milliseconds to sleep for `agent_ms` of agent time.
        return max(1, agent_ms // self.scale)

    def now(self):
        # Unix seconds, or 0 while the wall time is unknown.
        if self._rtc is not None:
            rtc = self._rtc()
            if rtc:
                return rtc + self._rtc_off
        if not self._base_s:
            return 0
        return self._base_s + (self.up_ms() - self._base_up) // 1000

    def set(self, now_s, src):
        # Adopt now_s from src. -> the step to journal (s), or None when it is too small to
        # record. A source ranks: ntp and modem beat the ack's `now`, which is only a fallback.
        if src == "ack" and self.src not in (None, "ack"):
            return None
        before = self.now()
        self._base_up = self.up_ms()
        self._base_s = now_s
        self.src = src
        if self._rtc is not None:
            rtc = self._rtc()
            self._rtc_off = now_s - rtc if rtc else 0
        step = now_s - before
        # Corrections within the network's jitter are applied but not journaled. The
        # jitter is real time: under a scaled clock it is `scale` times more agent time.
        tolerance = _STEP_TO_RECORD_S + self.scale // 10
        if before and -tolerance < step < tolerance:
            return None
        return step
