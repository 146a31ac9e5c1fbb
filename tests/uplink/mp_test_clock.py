# Uptime across the 30-bit ticks wrap, wall clock sources, and reconnect backoff.
from backoff import Backoff
from clock import Clock
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
