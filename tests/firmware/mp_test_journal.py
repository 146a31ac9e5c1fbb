# The journal API under MicroPython on a real LittleFS2 image (file-backed flash).
# These run from source: compiling the journal and this file needs more than 64K on the
# 64-bit unix port, so they take 128K; the power-cut tests (test_journal_power_cuts.py) run
# the journal as mpy-cross bytecode, as deployed, under 64K.
from dzcore import cbor
from dzcore.journal.journal import Journal, JournalFull, RecordTooLarge
from flash import image_flash, tmp_path, unmount
from mptest import check, equal, heap, raises

_BLOCKS = 32  # a 128 KiB flash


def _receipt(trc, amt=100):
    return {
        "mid": "898440358120001",
        "tid": "12345678",
        "bat": "000001",
        "trc": "%06d" % trc,
        "typ": "sale",
        "amt": amt,
        "cur": "CNY",
        "st": "approved",
    }


def _journal(name="j.img", budget=96 * 1024, fresh=True, rng=None):
    device, point = image_flash(tmp_path(name), _BLOCKS, fresh=fresh)
    journal = Journal(point + "/journal", budget, rng=rng or (lambda: 0x1234ABCD))
    journal.mount()
    return device, point, journal


@heap("128K")
def test_new_journal_has_an_epoch_and_boot_one():
    _, point, j = _journal()
    equal(j.epoch, 0x1234ABCD, "epoch")
    equal(j.boot, 1, "boot")
    equal(j.acked, 0, "acked")
    equal(j.next_seq, 1, "next seq")
    unmount(point)


@heap("128K")
def test_append_peek_ack_round_trip_and_record_encoding():
    _, point, j = _journal()
    s1 = j.append("r", _receipt(1), t=1700000000, up=5)
    s2 = j.append("d", {"ev": "probe", "rtt_ms": 40}, up=6)
    s3 = j.append("r", _receipt(2))
    equal([s1, s2, s3], [1, 2, 3], "seqs")
    items, gaps, nxt = j.peek(1, 10, 4096)
    equal([s for s, _ in items], [1, 2, 3], "peeked seqs")
    equal(gaps, [], "gaps")
    equal(nxt, 4, "next from")
    first = cbor.decode(items[0][1])
    equal(
        first,
        {"seq": 1, "k": "r", "t": 1700000000, "boot": 1, "up": 5, "b": _receipt(1)},
        "record map",
    )
    check(items[0][1].startswith(b"\xa6\x63seq\x01"), "record key order starts with seq")
    j.ack(2)
    equal(j.acked, 2, "acked")
    items, _, nxt = j.peek(3, 10, 4096)
    equal([s for s, _ in items], [3], "after ack")
    st = j.stats()
    equal(st["records"], 1, "unacked records")
    equal(st["next_seq"], 4, "stats next seq")
    unmount(point)


@heap("128K")
def test_peek_respects_record_and_byte_limits():
    _, point, j = _journal()
    for i in range(10):
        j.append("r", _receipt(i))
    items, _, nxt = j.peek(1, 4, 100000)
    equal(len(items), 4, "max records")
    equal(nxt, 5, "next from")
    one = len(items[0][1])
    items, _, nxt = j.peek(5, 100, one * 2 + 1)
    equal([s for s, _ in items], [5, 6], "max bytes")
    items, _, nxt = j.peek(nxt, 100, 1)
    equal(len(items), 1, "at least one record always")
    unmount(point)


@heap("128K")
def test_seq_boot_and_acked_survive_a_remount():
    device, point, j = _journal()
    for i in range(5):
        j.append("r", _receipt(i))
    j.ack(3)
    unmount(point)
    from flash import mount

    point = mount(device)
    j2 = Journal(point + "/journal", 96 * 1024, rng=lambda: 99)
    j2.mount()
    equal(j2.epoch, 0x1234ABCD, "epoch kept")
    equal(j2.boot, 2, "boot counted")
    equal(j2.acked, 3, "acked kept")
    equal(j2.next_seq, 6, "next seq")
    equal(j2.append("r", _receipt(9)), 6, "seq not reused")
    items, _, _ = j2.peek(4, 10, 4096)
    equal([s for s, _ in items], [4, 5, 6], "unacked records")
    unmount(point)


@heap("128K")
def test_ack_never_moves_back_nor_past_the_last_seq():
    _, point, j = _journal()
    for i in range(3):
        j.append("r", _receipt(i))
    j.ack(2)
    j.ack(1)
    equal(j.acked, 2, "ignores lower")
    j.ack(50)
    equal(j.acked, 3, "clamped to the last appended")
    unmount(point)


@heap("128K")
def test_oversized_record_is_refused_and_nothing_changes():
    _, point, j = _journal()
    j.append("r", _receipt(1))
    raises(RecordTooLarge, j.append, "r", {"blob": b"x" * 600})
    equal(j.next_seq, 2, "seq not used")
    items, _, _ = j.peek(1, 10, 4096)
    equal(len(items), 1, "stored data intact")
    unmount(point)


@heap("128K")
def test_bad_arguments_are_value_errors():
    _, point, j = _journal()
    raises(ValueError, j.append, "x", {})
    raises(ValueError, j.append, "r", [1])
    raises(ValueError, j.append, "r", {}, -1)
    unmount(point)


@heap("128K")
def test_full_journal_refuses_receipts_keeps_everything_and_reports_after_ack():
    _, point, j = _journal(budget=40 * 1024)
    stored = []
    try:
        while True:
            stored.append(j.append("r", _receipt(len(stored))))
    except JournalFull:
        pass
    check(len(stored) > 20, "some receipts fit")
    raises(JournalFull, j.append, "r", _receipt(999))
    st = j.stats()
    equal(st["overflow_receipts"], 2, "refusals counted")
    check(st["used"] <= st["capacity"], "within the budget")
    seen = []
    cursor = 1
    while cursor <= stored[-1]:
        items, _, cursor = j.peek(cursor, 8, 4096)
        for seq, raw in items:
            equal(cbor.decode(raw)["b"]["trc"], "%06d" % (seq - 1), "record %d intact" % seq)
            seen.append(seq)
    equal(seen, stored, "nothing shed")
    j.ack(stored[-1])
    seq = j.append("r", _receipt(1000))
    items, _, _ = j.peek(stored[-1] + 1, 10, 100000)
    bodies = [cbor.decode(raw)["b"] for _, raw in items]
    check({"ev": "overflow", "count": 2, "kind": "r"} in bodies, "overflow reported: %r" % bodies)
    check(items[-1][0] == seq, "the new receipt is stored")
    unmount(point)


@heap("128K")
def test_diagnostics_past_a_quarter_of_the_budget_are_dropped_and_counted():
    _, point, j = _journal(budget=64 * 1024)
    kept = 0
    for i in range(400):
        if j.append("d", {"ev": "probe", "rtt_ms": i, "pad": "x" * 100}) is not None:
            kept += 1
    st = j.stats()
    check(0 < kept < 400, "some kept, some dropped: %d" % kept)
    equal(st["overflow_diag"], 400 - kept, "drops counted")
    check(kept * 150 <= 16 * 1024, "diagnostics within a quarter of the budget")
    seq = j.append("r", _receipt(1))
    check(seq is not None, "receipts still fit")
    unmount(point)


@heap("128K")
def test_overflow_report_counts_each_dropped_diagnostic_once():
    # While diagnostics are full, every stored receipt tries to report the drops and that
    # report is dropped too; when room returns, the report must count the real drops only.
    _, point, j = _journal(budget=64 * 1024)
    kept = 0
    for _ in range(2000):  # small diagnostics: the room left is less than a report needs
        if j.append("d", {"ev": "x"}) is not None:
            kept += 1
    dropped = 2000 - kept
    receipts = [j.append("r", _receipt(n)) for n in range(5)]  # 5 failed report attempts
    equal(j.stats()["overflow_diag"], dropped, "failed reports are not counted as drops")
    j.ack(receipts[-1])  # frees the diagnostics' room; the report goes out
    j.commit()  # peek reads synced records only
    items, _, _ = j.peek(receipts[-1] + 1, 10, 100000)
    reports = [b for b in (cbor.decode(raw)["b"] for _, raw in items) if b.get("ev") == "overflow"]
    equal(reports, [{"ev": "overflow", "count": dropped, "kind": "d"}], "one report, exact count")
    equal(j.stats()["overflow_diag"], dropped, "drops since mount")
    unmount(point)


@heap("128K")
def test_mounting_the_same_journal_again_rebuilds_from_flash():
    _, point, j = _journal()
    for i in range(4):
        j.append("r", _receipt(i))
    j.mount()
    equal(j.boot, 2, "boot counted")
    equal(j.append("r", _receipt(9)), 5, "seq continues")
    items, _, _ = j.peek(1, 10, 4096)
    equal([s for s, _ in items], [1, 2, 3, 4, 5], "each record once")
    unmount(point)
