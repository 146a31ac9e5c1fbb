# The MicroPython half of the power-cut tests (test_journal_power_cuts.py checks what it
# prints). Kept small so that the journal runs in a 64K heap beside it.
#
#   powercut.py record DIR N SEED   the workload, once, on a device logging every write
#   powercut.py replay DIR          for each cut point k in DIR/cuts.txt: the image after
#                                   write k (the pre-formatted image plus the first k logged
#                                   writes), mounted, recovered and read back
#   powercut.py repeat DIR N SEED   one image cut again and again at random writes until
#                                   all N receipts are in
#
# Output lines:
#   A i seq ops      receipt i was ACKed to the POS as seq, after `ops` writes
#   V seq crc ops    the collector read seq (crc32 of its bytes), after `ops` writes
#   K upto ops       an ack of the collector had returned, after `ops` writes
#   T ops            the workload ended after `ops` writes
#   C k acked next lost     a mount after cut k (repeat: the power-on count) ...
#   R seq crc kind trc      ... and each record it reads back from acked + 1 on
#   X                power cut (repeat)
import gc
import sys
from binascii import crc32

from dzcore import cbor
from dzcore.journal.journal import Journal, JournalFull
from flash import (
    CuttableBlockDevice,
    PowerCut,
    apply_writes,
    blank_image,
    copy_file,
    mount,
    unmount,
)

_BLOCKS = 32  # a 128 KiB flash
_BUDGET = 96 * 1024


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


def _collect(journal, device, rng):
    # The collector: read everything unacked, then ack all or most of it.
    cursor = journal.acked + 1
    last = 0
    while True:
        items, _, cursor = journal.peek(cursor, 8, 1024)
        if not items:
            break
        for seq, raw in items:
            print("V", seq, crc32(raw), device.ops)
            last = seq
    if last:
        journal.ack(last - rng.next(3))
        print("K", journal.acked, device.ops)


def _step(journal, device, rng, i):
    # One POS receipt and what happens around it: diagnostics, commits, collector acks.
    gc.collect()  # as the agent's loop would: the heap is 64K on a 64-bit port
    try:
        seq = journal.append("r", _receipt(i), t=1700000000 + i, up=i * 1000)
    except JournalFull:
        return False
    print("A", i, seq, device.ops)
    roll = rng.next(10)
    if roll < 4:
        journal.append("d", {"ev": "probe", "rtt_ms": 30 + roll, "dns_ms": 5}, up=i * 1000 + 1)
    if roll == 5:
        journal.append("d", {"ev": "signal", "rat": "lte", "rsrp": -100 - roll}, up=i * 1000 + 2)
        journal.commit()
    if rng.next(7) == 0:
        _collect(journal, device, rng)
    return True


def _open(path, cut_after=-1, log=None):
    device = CuttableBlockDevice(open(path, "r+b"), _BLOCKS, cut_after, log)
    return device, mount(device)


def _close(journal, device, point):
    journal.close()
    unmount(point)
    device.file.close()


def _dump(journal, label):
    stats = journal.stats()
    print("C", label, journal.acked, journal.next_seq, stats["lost"])
    cursor = journal.acked + 1
    while True:
        items, _, cursor = journal.peek(cursor, 8, 1024)
        if not items:
            return
        for seq, raw in items:
            record = cbor.decode(raw)
            trc = record["b"]["trc"] if record["k"] == "r" else "-"
            print("R", seq, crc32(raw), record["k"], trc)


def _fresh_image(path):
    blank_image(path, _BLOCKS)
    device = CuttableBlockDevice(open(path, "r+b"), _BLOCKS)
    point = mount(device, fresh=True)
    unmount(point)
    device.file.close()


def record(folder, n, seed):
    base = folder + "/base.img"
    _fresh_image(base)
    buf = bytearray(1024)
    copy_file(base, folder + "/work.img", buf)
    log = open(folder + "/writes.log", "wb")
    device, point = _open(folder + "/work.img", log=log)
    journal = Journal(point + "/journal", _BUDGET, rng=lambda: seed)
    journal.mount()
    rng = Rng(seed)
    for i in range(n):
        _step(journal, device, rng, i)
    _collect(journal, device, rng)  # the collector sees every seq once
    print("T", device.ops)
    _close(journal, device, point)
    log.close()
    copy_file(base, folder + "/work.img", buf)  # replays start again from the formatted image


def replay(folder):
    work = folder + "/work.img"
    scratch = folder + "/scratch.img"
    buf = bytearray(1024)
    done = 0
    with open(folder + "/writes.log", "rb") as log, open(folder + "/cuts.txt") as cuts:
        for line in cuts:
            k = int(line)
            with open(work, "r+b") as image:
                apply_writes(image, log, k - done, buf)
            done = k
            gc.collect()
            copy_file(work, scratch, buf)
            device, point = _open(scratch)
            journal = Journal(point + "/journal", _BUDGET, rng=lambda: 1)
            journal.mount()  # never fails: an exception here fails the run
            _dump(journal, k)
            _close(journal, device, point)


def repeat(folder, n, seed):
    path = folder + "/repeat.img"
    _fresh_image(path)
    rng = Rng(seed)
    i = 0
    power_ons = 0
    while i < n:
        power_ons += 1
        device, point = _open(path, cut_after=1 + rng.next(300))
        journal = None
        try:
            journal = Journal(point + "/journal", _BUDGET, rng=lambda: seed)
            journal.mount()
            _dump(journal, power_ons)
            i = _resume(journal, i)
            while i < n:
                if _step(journal, device, rng, i):
                    i += 1
                else:
                    _collect(journal, device, rng)
            _collect(journal, device, rng)
            _close(journal, device, point)
        except PowerCut:
            print("X")
            _abandon(journal)
            unmount(point)
    device, point = _open(path)
    journal = Journal(point + "/journal", _BUDGET)
    journal.mount()
    _dump(journal, power_ons + 1)
    _close(journal, device, point)


def _abandon(journal):
    # After a cut: close the dead mount's segment now (its device drops the writes) rather
    # than leave it to a finaliser that would report the errors on the console.
    if journal is not None:
        try:
            journal.close()
        except OSError:
            pass


def _resume(journal, i):
    # The POS sends receipt i again (it saw no ACK). If the cut came after the record was
    # durable, the journal holds it: it is ACKed with that seq, not stored again (what
    # intake does by its natural key).
    cursor = max(1, journal.next_seq - 64)
    trc = "%06d" % i
    while True:
        items, _, cursor = journal.peek(cursor, 8, 1024)
        if not items:
            return i
        for seq, raw in items:
            record = cbor.decode(raw)
            if record["k"] == "r" and record["b"]["trc"] == trc:
                print("A", i, seq, 0)
                return i + 1


def main():
    gc.collect()
    mode, folder = sys.argv[1], sys.argv[2]
    if mode == "record":
        record(folder, int(sys.argv[3]), int(sys.argv[4]))
    elif mode == "replay":
        replay(folder)
    else:
        repeat(folder, int(sys.argv[3]), int(sys.argv[4]))
