# Power-cut runs of the journal under MicroPython (driven by test_journal_power_cuts.py).
#
#   powercut.py every  DIR N SEED          cut after every write k of an N-receipt workload
#   powercut.py sample DIR N SEED COUNT    cut after COUNT sampled writes
#   powercut.py repeat DIR N SEED          cut one image again and again until N receipts are in
#
# every/sample: the workload runs once on a device that logs every program and erase; then,
# for each cut point k, the image as it was after write k (the pre-formatted image plus the
# first k logged writes, later writes discarded) is mounted again in this same process,
# recovered, and checked. That image is exactly what a power cut after write k leaves behind.
# repeat: a device raises PowerCut at a random write; the image is remounted and the POS model
# resends the receipt it saw no ACK for (after looking it up, as intake does).
# Prints one summary line: "POWERCUT mode=.. cuts=.. acked=.. lost=.. duplicated=.. torn=..".
import gc
import struct
import sys
from array import array
from binascii import crc32

import cbor
from flash import CuttableBlockDevice, PowerCut, blank_image, copy_file, mount, unmount
from journal import Journal, JournalFull

_BLOCKS = 32  # a 128 KiB flash
_BUDGET = 96 * 1024
_NONE = 0xFFFFFFFF


def _receipt(i):
    return {
        "mid": "898440358120001",
        "tid": "12345678",
        "bat": "000001",
        "trc": "%06d" % i,
        "typ": "sale",
        "amt": 100 + i,
        "cur": "CNY",
        "pan": "622848******1234",
        "st": "approved",
        "rrn": "%012d" % (800000 + i),
    }


class Rng:
    def __init__(self, seed):
        self.x = seed & 0x7FFFFFFF

    def next(self, n):
        self.x = (self.x * 1103515245 + 12345) & 0x7FFFFFFF
        return (self.x >> 8) % n


class Model:
    # What the outside world saw: the POS's ACKs and the collector's peeks and acks, each
    # with the write count at which it happened.
    def __init__(self, n, folder):
        self.n = n
        # Made at once from raw bytes (MicroPython reads them as the items): one allocation
        # each, early, not a list of n ints first.
        self.rseq = array("I", bytearray(4 * n))  # seq the POS was told, per receipt
        self.rops = array("I", b"\xff" * (4 * n))  # writes done when that ACK was given
        # crc32 of each seq's record bytes as the collector saw them: a host file (outside the
        # 64K heap, like the flash), 5 bytes a seq: 1 if known, then the crc.
        self.crcs = open(folder + "/crcs.bin", "w+b")
        self._entry = bytearray(5)
        self.visible = array("I")  # (seq, writes) pairs: a seq seen outside by then
        self.acks = array("I")  # (upto, writes) pairs: an ack that had returned by then

    def crc_for(self, seq, raw):
        struct.pack_into(">BI", self._entry, 0, 1, crc32(raw))
        self.crcs.seek(seq * 5)
        self.crcs.write(self._entry)

    def crc_of(self, seq):
        # The crc the collector saw for seq, or None when nobody has seen seq yet.
        self.crcs.seek(seq * 5)
        if self.crcs.readinto(self._entry) != 5 or self._entry[0] != 1:
            return None
        return struct.unpack_from(">I", self._entry, 1)[0]

    def before(self, pairs, k):
        # Highest first element of (value, writes) pairs with writes <= k.
        top = 0
        for i in range(0, len(pairs), 2):
            if pairs[i + 1] <= k and pairs[i] > top:
                top = pairs[i]
        return top


def _collect(journal, model, device, rng):
    # The collector: peek everything unacked, then ack all or most of it.
    cursor = journal.acked + 1
    last = 0
    while True:
        items, gaps, cursor = journal.peek(cursor, 8, 1024)
        for seq, raw in items:
            model.crc_for(seq, raw)
            last = seq
        if not items:
            break
    if last:
        model.visible.append(last)
        model.visible.append(device.ops)
        upto = last - rng.next(3)
        journal.ack(upto)
        model.acks.append(journal.acked)
        model.acks.append(device.ops)


def _step(journal, model, device, rng, i):
    # One POS receipt plus what happens around it: diagnostics, commits, collector acks.
    # The heap is 64K on a 64-bit port: collect between steps, as the agent's loop does.
    gc.collect()
    try:
        seq = journal.append("r", _receipt(i), t=1700000000 + i, up=i * 1000)
    except JournalFull:
        return False
    model.rseq[i] = seq
    model.rops[i] = device.ops
    roll = rng.next(10)
    if roll < 4:
        journal.append("d", {"ev": "probe", "rtt_ms": 30 + roll, "dns_ms": 5}, up=i * 1000 + 1)
    if roll == 5:
        journal.append("d", {"ev": "signal", "rat": "lte", "rsrp": -100 - roll}, up=i * 1000 + 2)
        journal.commit()
    if rng.next(7) == 0:
        _collect(journal, model, device, rng)
    return True


def _open(path, cut_after=-1, log=None):
    device = CuttableBlockDevice(open(path, "r+b"), _BLOCKS, cut_after, log)
    return device, mount(device)


def _close(device, point):
    unmount(point)
    device.file.close()


class Tally:
    def __init__(self, mode):
        self.mode = mode
        self.cuts = 0
        self.acked = 0
        self.lost = 0
        self.duplicated = 0
        self.torn = 0
        self.reused = 0
        self.cursor_back = 0
        self.declared = 0

    def line(self):
        return (
            "POWERCUT mode=%s cuts=%d acked=%d lost=%d duplicated=%d torn=%d reused=%d "
            "cursor_back=%d declared=%d"
            % (
                self.mode,
                self.cuts,
                self.acked,
                self.lost,
                self.duplicated,
                self.torn,
                self.reused,
                self.cursor_back,
                self.declared,
            )
        )


def check_after_cut(journal, model, k, tally, where, learn=False):
    # Every receipt ACKed to the POS by write k: delivered (acked) or present exactly once;
    # every record read back is byte-identical to what was written under its seq; the
    # cursor did not move back; no seq already seen outside will be used again.
    # learn: a seq nobody saw yet is learnt (repeated cuts), not counted as torn.
    found = bytearray(model.n)
    cursor = journal.acked + 1
    while True:
        items, gaps, cursor = journal.peek(cursor, 8, 1024)
        if not items:
            break
        for seq, raw in items:
            if learn and model.crc_of(seq) is None:
                model.crc_for(seq, raw)
            if model.crc_of(seq) != crc32(raw):
                tally.torn += 1
                print("torn or unknown record", seq, "at", where)
                continue
            record = cbor.decode(raw)
            if record["k"] == "r":
                i = int(record["b"]["trc"])
                if found[i]:
                    tally.duplicated += 1
                found[i] = 1
    for i in range(model.n):
        if model.rops[i] <= k:
            tally.acked += 1
            delivered = model.rseq[i] <= journal.acked
            if found[i] and delivered:
                tally.duplicated += 1
            if not (found[i] or delivered):
                tally.lost += 1
                print("receipt", i, "seq", model.rseq[i], "lost at", where)
    if journal.acked < model.before(model.acks, k):
        tally.cursor_back += 1
        print("acked cursor went back at", where)
    seen = max(model.before(model.visible, k), model.before(model.acks, k))
    for i in range(model.n):
        if model.rops[i] <= k and model.rseq[i] > seen:
            seen = model.rseq[i]
    if journal.next_seq <= seen:
        tally.reused += 1
        print("next seq", journal.next_seq, "would reuse", seen, "at", where)
    tally.declared += journal.stats()["lost"]


def _fresh_image(path):
    blank_image(path, _BLOCKS)
    device = CuttableBlockDevice(open(path, "r+b"), _BLOCKS)
    point = mount(device, fresh=True)
    _close(device, point)


def record(folder, model, seed):
    # The uncut run: the base image, the write log and the model.
    n = model.n
    base = folder + "/base.img"
    _fresh_image(base)
    gc.collect()
    work = folder + "/work.img"
    buf = bytearray(1024)
    copy_file(base, work, buf)
    log = open(folder + "/writes.log", "wb")
    device, point = _open(work, log=log)
    journal = Journal(point + "/journal", _BUDGET, rng=lambda: seed)
    journal.mount()
    rng = Rng(seed)
    for i in range(n):
        _step(journal, model, device, rng, i)
    _collect(journal, model, device, rng)  # the collector sees every seq once
    total = device.ops
    journal.close()
    _close(device, point)
    log.close()
    copy_file(base, work, buf)  # replays start again from the pre-formatted image
    return total


def _apply(image, log, count, buf):
    # Applies the next `count` logged writes to the open image file (buf: scratch bytes).
    view = memoryview(buf)
    for _ in range(count):
        block, offset, length = [int(x) for x in log.readline().split()]
        if offset < 0:  # an erase
            offset, length = 0, 4096
            data = None
        else:
            data = log
        image.seek(block * 4096 + offset)
        while length > 0:
            part = min(length, len(buf))
            if data is None:
                for i in range(part):
                    buf[i] = 0xFF
            else:
                data.readinto(view[:part])
            image.write(view[:part])
            length -= part


def replay(folder, model, cut_points, tally, seed):
    work = folder + "/work.img"
    scratch = folder + "/scratch.img"
    buf = bytearray(1024)
    done = 0
    with open(folder + "/writes.log", "rb") as log:
        for k in cut_points:
            with open(work, "r+b") as image:
                _apply(image, log, k - done, buf)
            done = k
            gc.collect()
            copy_file(work, scratch, buf)
            device, point = _open(scratch)
            journal = Journal(point + "/journal", _BUDGET, rng=lambda: seed + 1)
            journal.mount()  # never fails: an exception here fails the run
            check_after_cut(journal, model, k, tally, "cut after write %d" % k)
            tally.cuts += 1
            journal.close()
            _close(device, point)


def repeat(folder, n, seed):
    # One image, cut again and again at random writes until all n receipts are in.
    path = folder + "/repeat.img"
    _fresh_image(path)
    model = Model(n, folder)
    tally = Tally("repeat")
    rng = Rng(seed)
    i = 0
    while i < n:
        device, point = _open(path, cut_after=1 + rng.next(300))
        journal = None
        try:
            journal = Journal(point + "/journal", _BUDGET, rng=lambda: seed)
            journal.mount()
            # Everything ACKed so far must be there; the write count restarts with each
            # power-on, so "ACKed by now" is every ACK given.
            check_after_cut(journal, model, _NONE - 1, tally, "power-on %d" % tally.cuts, True)
            i = _resume(journal, model, i)
            while i < n:
                if _step(journal, model, device, rng, i):
                    model.rops[i] = 0  # ACKed: counts for every later power-on
                    i += 1
                else:
                    _collect(journal, model, device, rng)
            _collect(journal, model, device, rng)
            journal.close()
            _close(device, point)
        except PowerCut:
            tally.cuts += 1
            _abandon(journal)
            unmount(point)
    device, point = _open(path)
    journal = Journal(point + "/journal", _BUDGET)
    journal.mount()
    check_after_cut(journal, model, _NONE - 1, tally, "end", True)
    journal.close()
    _close(device, point)
    return tally


def _abandon(journal):
    # After a cut: close the dead mount's open segment now (its device drops the writes),
    # rather than leave it to a finaliser that would report the errors on the console.
    if journal is not None:
        try:
            journal.close()
        except OSError:
            pass


def _resume(journal, model, i):
    # The POS resends receipt i (it saw no ACK). If the cut came after the record became
    # durable, the journal already holds it: it is ACKed with its seq, not stored again.
    cursor = journal.acked + 1
    trc = "%06d" % i
    while True:
        items, _, cursor = journal.peek(cursor, 8, 1024)
        if not items:
            return i
        for seq, raw in items:
            model.crc_for(seq, raw)
            record = cbor.decode(raw)
            if record["k"] == "r" and record["b"]["trc"] == trc:
                model.rseq[i] = seq
                model.rops[i] = 0
                return i + 1


def main():
    gc.collect()  # what the imports left behind, before the run's buffers are made
    mode, folder, n, seed = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    if mode == "repeat":
        print(repeat(folder, n, seed).line())
        return
    model = Model(n, folder)
    total = record(folder, model, seed)
    tally = Tally(mode)
    if mode == "every":
        points = range(1, total + 1)
    else:
        count = int(sys.argv[5])
        rng = Rng(seed * 7 + 1)
        marks = bytearray(total + 1)
        placed = 0
        while placed < min(count, total):
            k = 1 + rng.next(total)
            placed += 1 - marks[k]
            marks[k] = 1
        points = [k for k in range(1, total + 1) if marks[k]]
    replay(folder, model, points, tally, seed)
    print("writes=%d" % total)
    print(tally.line())


if __name__ == "__main__":
    main()
