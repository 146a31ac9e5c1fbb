# MicroPython side of the end-to-end uplink tests: the agent's uplink half with the REAL
# journal on the host filesystem and the virtual board's adapter, driven by a JSON plan:
#   micropython mp_drive_agent.py PLAN.json
# plan: {"cfg": {...agent config...}, "root": journal dir, "control": control.json path,
#        "preload": n, "trickle": n, "trickle_ms": agent ms between receipts,
#        "until_acked": true, "max_s": real seconds,
#        "ota_root": folder for updates (the agent then takes offers; a switch prints
#        OTA_SWITCHED instead of restarting), "until_switched": stop there}
# Prints "ACKED upto next_seq", "PEAK_HEAP bytes" and "STATS {...}" lines for the host.
import asyncio
import gc
import json
import os
import sys
import time

from board import Board
from dzcore import cbor
from dzcore.intake import termlink
from dzcore.intake.intake import Intake
from dzcore.journal.journal import Journal, JournalFull
from dzcore.uplink import config
from dzcore.uplink.agent import Agent


def _rand32():
    return int.from_bytes(os.urandom(4), "big")


def _receipt(i):
    return {
        "mid": "898310048161234",
        "tid": "10293847",
        "bat": "000042",
        "trc": "%06d" % (i % 1000000),
        "typ": "sale",
        "amt": 1000 + i,
        "cur": "CNY",
        "pan": "622848******1234",
        "ck": "D",
        "ent": "071",
        "lt": 1763700000 + i,
        "st": "approved",
        "rc": "00",
        "rrn": "%012d" % i,
        "auth": "%06d" % (i % 999999),
    }


def _cap_object_heap(plan):
    # On the unix port, imported bytecode lives on the GC heap; on a board it is frozen in
    # flash (or ROMFS). To hold the agent's *objects* to the budget, the code is loaded first
    # and a ballast block then takes every byte of the heap above the budget.
    budget = plan.get("object_heap")
    gc.collect()
    code = gc.mem_alloc()
    print("CODE_HEAP", code)
    if not budget:
        return code, 0
    ballast = gc.mem_free() - budget
    if ballast <= 0:
        raise MemoryError("heap too small for a %d-byte object budget" % budget)
    return code, ballast


async def _main(plan):
    if plan.get("ota_root"):
        # The update's modules are code too: loaded before the object heap is capped, as on
        # a board that freezes them (the agent imports them when it has an update folder).
        from dzcore.ota import boot, fetch, slots, stage  # noqa: F401
    code, ballast_size = _cap_object_heap(plan)
    ballast = bytearray(ballast_size) if ballast_size else None
    base = gc.mem_alloc()
    cfg = config.from_dict(plan["cfg"])
    board = Board(control_path=plan.get("control", "/nonexistent"))
    if plan.get("no_wall_clock"):
        # A board without NTP, a modem clock or an RTC: time comes from the collector's ack.
        board.wall_time = lambda: None
        board.rtc = lambda: None
    ota = None
    if plan.get("ota_root"):
        from dzcore.ota.slots import FACTORY, Slots

        slots = Slots(plan["ota_root"])
        slots.boot()
        ota = (FACTORY, slots)
    agent = Agent(board, cfg, time.ticks_ms, time.ticks_diff, _rand32, ota)
    journal = Journal(plan["root"], plan.get("budget", 4 << 20))
    journal.mount()
    agent.attach(journal)
    switched = []

    def _switched():
        switched.append(1)
        print("OTA_SWITCHED", agent.updater.state)

    agent._restart = _switched  # the updater, made at the first offer, takes it
    clock = agent.clock
    # With "intake", receipts come in as terminal-link frames through the real intake (the
    # whole agent); otherwise they are appended directly (a backlog built fast).
    intake = Intake(journal, clock) if plan.get("intake") else None
    peak = [0]
    full = [0]
    appended = [0]

    def append(i):
        if intake is not None:
            try:
                kind, reply = intake.handle(
                    termlink.RECEIPT, cbor.encode({"id": i, "r": _receipt(i)})
                )
            except MemoryError:
                # Shows what was left of the heap, should the budget be exceeded.
                import micropython

                gc.collect()
                micropython.mem_info(1)
                raise
            if kind != termlink.ACK:
                raise ValueError("intake refused receipt %d: %r" % (i, cbor.decode(reply)))
            appended[0] += 1
            return
        try:
            journal.append("r", _receipt(i), clock.now(), clock.up_ms())
            appended[0] += 1
        except JournalFull:
            full[0] += 1

    for i in range(plan.get("preload", 0)):
        append(i)
    print("PRELOADED", journal.next_seq - 1)
    tasks = [asyncio.create_task(c) for c in agent.tasks()]

    async def trickle():
        base = plan.get("preload", 0)
        for i in range(plan.get("trickle", 0)):
            await asyncio.sleep_ms(clock.sleep_ms(plan.get("trickle_ms", 10)))
            append(base + i)

    feeder = asyncio.create_task(trickle())
    start = time.ticks_ms()
    max_ms = int(plan.get("max_s", 120) * 1000)
    last_report = start
    last_live = start
    live = [0]
    while time.ticks_diff(time.ticks_ms(), start) < max_ms:
        await asyncio.sleep_ms(50)
        used = gc.mem_alloc() - base
        if used > peak[0]:
            peak[0] = used
        if time.ticks_diff(time.ticks_ms(), last_live) > 2000:
            # Live objects (garbage collected first), the figure that must fit a device.
            last_live = time.ticks_ms()
            gc.collect()
            used = gc.mem_alloc() - base
            if used > live[0]:
                live[0] = used
        if time.ticks_diff(time.ticks_ms(), last_report) > 5000:
            last_report = time.ticks_ms()
            print(
                "PROGRESS acked",
                journal.acked,
                "next",
                journal.next_seq,
                "sessions",
                agent.uplink.sessions,
            )
        if plan.get("until_switched") and switched:
            break
        if plan.get("until_acked") and feeder.done():
            # Diagnostics wait for the next receipt or the periodic commit (minutes): the
            # test has no more receipts, so it commits as that timer would.
            journal.commit()
            if journal.acked >= journal.next_seq - 1:
                break
    print("ACKED", journal.acked, journal.next_seq)
    print("APPENDED", appended[0])
    print("UPLOAD_MS", time.ticks_diff(time.ticks_ms(), start))
    gc.collect()
    print("PEAK_LIVE", live[0])
    print("PEAK_HEAP", peak[0], "FREE_NOW", gc.mem_free(), "BALLAST", len(ballast or b""))
    stats = {
        "sessions": agent.uplink.sessions,
        "reconnects": agent.uplink.reconnects,
        "batches": agent.uploader.batches,
        "sync_ok": agent.uploader.sync_ok,
        "sync_fail": agent.uploader.sync_fail,
        "hb_sent": agent.heartbeat.sent,
        "full": full[0],
        "up_ms": clock.up_ms(),
        "tx_bytes": agent.uplink.client.tx_bytes,
        "diag_dropped": agent.diag.dropped,
    }
    print("STATS", json.dumps(stats))
    for task in tasks:
        task.cancel()


with open(sys.argv[1]) as f:
    _plan = json.load(f)
asyncio.run(_main(_plan))
