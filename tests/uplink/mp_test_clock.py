# Uptime across the 30-bit ticks wrap, wall clock sources, and reconnect backoff.
from dzcore.uplink.backoff import Backoff
from dzcore.uplink.clock import Clock
from fake_ticks import FakeTicks
from mptest import check, equal


def test_uptime_is_64_bit_across_the_ticks_wrap():
    ticks = FakeTicks(start=(1 << 30) - 5000)  # 5 s before the wrap
    clock = Clock(ticks.ticks_ms, ticks.ticks_diff)
    total = 0
    # 40 days in 1-hour steps: the 30-bit ms ticks wrap more than 3 times.
    for _ in range(40 * 24):
        ticks.advance(3600000)
        total += 3600000
        equal(clock.up_ms(), total, "uptime")
    check(total > 3 * (1 << 30), "crossed several wraps")


def test_wall_clock_from_ack_then_ntp_wins():
    ticks = FakeTicks()
    clock = Clock(ticks.ticks_ms, ticks.ticks_diff)
    equal(clock.now(), 0, "unknown at boot")
    equal(clock.set(1700000000, "ack"), 1700000000, "first set: the step from 0 is journaled")
    ticks.advance(10500)
    equal(clock.now(), 1700000010, "runs on uptime")
    equal(clock.set(1700000011, "ack"), None, "a 1 s correction is not journaled")
    equal(clock.set(1700000100, "ntp"), 89, "ntp step")
    equal(clock.src, "ntp", "source")
    equal(clock.set(1600000000, "ack"), None, "the ack's now never overrides ntp")
    equal(clock.now(), 1700000100, "kept ntp time")


def test_scaled_clock_runs_faster():
    ticks = FakeTicks()
    clock = Clock(ticks.ticks_ms, ticks.ticks_diff, scale=1440)
    ticks.advance(60000)
    equal(clock.up_ms(), 86400000, "one real minute is a simulated day")
    equal(clock.sleep_ms(300000), 208, "5 simulated minutes sleep 208 real ms")


class FakeRtc:
    # A board's RTC running `rate` seconds per real (tick) second: a simulated business day.
    def __init__(self, ticks, start_s, rate=1):
        self.ticks, self.start_ms, self.start_s, self.rate = ticks, ticks.value, start_s, rate
        self.valid = True

    def read(self):
        if not self.valid:
            return None
        return self.start_s + (self.ticks.value - self.start_ms) * self.rate // 1000


def test_rtc_keeps_the_time_between_syncs_without_steps():
    # A board clock running 300x real time (the fleet simulation's business day): the agent
    # reads the RTC between syncs, so its records carry the RTC's time and a sync at each
    # probe finds nothing to correct; uptime stays real milliseconds.
    ticks = FakeTicks()
    rtc = FakeRtc(ticks, 1795050000, rate=300)
    clock = Clock(ticks.ticks_ms, ticks.ticks_diff, rtc=rtc.read)
    equal(clock.now(), 1795050000, "a set RTC gives the time from boot, before any sync")
    equal(clock.set(rtc.read(), "ntp"), None, "NTP agrees with the RTC: no step")
    for _ in range(10):
        ticks.advance(60000)
        equal(clock.now(), rtc.read(), "follows the RTC, not the uptime")
        equal(clock.set(rtc.read(), "ntp"), None, "no step at a probe")
    equal(clock.up_ms(), 600000, "uptime is real time")
    equal(clock.now(), 1795050000 + 600 * 300, "ten real minutes are fifty business hours")


def test_rtc_is_corrected_by_the_offset_of_the_last_setting():
    ticks = FakeTicks()
    rtc = FakeRtc(ticks, 1700000000)
    clock = Clock(ticks.ticks_ms, ticks.ticks_diff, rtc=rtc.read)
    equal(clock.set(1700000100, "ntp"), 100, "an RTC 100 s slow: the step is journaled")
    ticks.advance(5000)
    equal(clock.now(), 1700000105, "RTC time plus the correction")
    equal(clock.set(1600000000, "ack"), None, "the ack's now never overrides ntp")
    rtc.valid = False  # the RTC lost its time (battery): back to uptime from the last setting
    equal(clock.now(), 1700000105, "runs on uptime")


def test_unset_rtc_leaves_the_time_unknown_until_a_setting():
    ticks = FakeTicks()
    rtc = FakeRtc(ticks, 0)
    rtc.valid = False
    clock = Clock(ticks.ticks_ms, ticks.ticks_diff, rtc=rtc.read)
    equal(clock.now(), 0, "unknown")
    equal(clock.set(1700000000, "ack"), 1700000000, "first set from the ack")
    ticks.advance(2000)
    equal(clock.now(), 1700000002, "on uptime")


def test_backoff_full_jitter_capped_and_reset():
    seq = [0xFFFFFFFF, 0, 12345, 0xFFFFFFFF, 0xFFFFFFFF, 0xFFFFFFFF, 0xFFFFFFFF, 0xFFFFFFFF]
    draws = iter(seq * 4)
    backoff = Backoff(lambda: next(draws), base_ms=1000, cap_ms=30000)
    ceilings = []
    for _ in range(8):
        ceilings.append(backoff.ceiling_ms())
        delay = backoff.next_ms()
        check(0 <= delay <= ceilings[-1], "delay %d within [0, %d]" % (delay, ceilings[-1]))
    equal(ceilings, [1000, 2000, 4000, 8000, 16000, 30000, 30000, 30000], "doubling, capped")
    backoff.reset()
    equal(backoff.ceiling_ms(), 1000, "reset after a stable connection")


def test_backoff_spreads_a_fleet():
    # 200 devices losing the broker together: their first retries spread over the window.
    import random

    delays = []
    for dev in range(200):
        random.seed(dev)
        backoff = Backoff(lambda: random.getrandbits(32), base_ms=8000)
        delays.append(backoff.next_ms())
    buckets = [0] * 8
    for d in delays:
        buckets[min(7, d // 1000)] += 1
    check(max(buckets) < 50, "no second holds a quarter of the fleet: %r" % buckets)
    check(min(buckets) > 10, "every second gets some: %r" % buckets)
