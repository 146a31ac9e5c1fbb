# MicroPython side of bench/diag_wear.py: the real journal on LittleFS2 over the virtual
# board's file-backed flash (which counts erases and programs), fed a simulated day of
# diagnostics by the real NetDiag, under one commit policy:
#   micropython mp_diag_wear.py IMAGE POLICY RECEIPTS_PER_HOUR HOURS
# POLICY "daozhang": diag records unsynced, committed with the next receipt, every 5 min if
# any is pending, and at link_up; "each": every diag record committed when written.
import sys

import vfs
from blockdev import FileBlockDevice
from dzcore.journal.journal import Journal
from dzcore.uplink.clock import Clock
from dzcore.uplink.netdiag import NetDiag
from fake_ticks import FakeTicks

_MIN = 60000


class _Board:
    def signal(self):
        return {"rat": "lte", "rsrp": -97, "rsrq": -11, "sinr": 12, "reg": 1, "cell": 0xB3F27}


def main(image, policy, per_hour, hours):
    blocks = 1024  # 4 MB
    dev = FileBlockDevice(open(image, "r+b"), blocks)
    vfs.VfsLfs2.mkfs(dev)
    vfs.mount(vfs.VfsLfs2(dev), "/flash")
    ticks = FakeTicks()
    clock = Clock(ticks.ticks_ms, ticks.ticks_diff)
    clock.set(1763700000, "ntp")
    journal = Journal("/flash/dz/journal", 3 << 20)
    journal.mount()
    diag = NetDiag(journal, clock, _Board())
    diag.up()
    start_erases, start_bytes = dev.erases, dev.bytes_written
    receipt_every = (60 * _MIN // per_hour) if per_hour else 0
    each = policy == "each"
    for minute in range(hours * 60):
        ticks.advance(_MIN)
        now_ms = minute * _MIN
        wrote = False
        if minute % 15 == 0:
            diag.sample_signal()
            wrote = True
        if minute % 60 == 30:
            diag.times.update({"dns_ms": 40, "tcp_ms": 310, "tls_ms": 0})
            diag.probe(320)
            wrote = True
        if minute % 120 == 50:  # an outage every 2 hours: 3 attempts, 2 stages
            diag.failed("tcp", "errno 113")
            diag.failed("tcp", "errno 113")
            diag.failed("dns", "errno -3")
            wrote = True
        if minute % 120 == 53:
            diag.up()  # commits (both policies)
        if each and wrote:
            journal.commit()
        if receipt_every and now_ms % receipt_every < _MIN:
            journal.append(
                "r",
                {"trc": "%06d" % minute, "amt": 100, "st": "approved"},
                clock.now(),
                clock.up_ms(),
            )
        if not each and minute % 5 == 0:
            journal.commit()
        if minute % 60 == 59:
            journal.ack(journal.next_seq - 1)  # the collector keeps up
    print("WEAR", dev.erases - start_erases, dev.bytes_written - start_bytes, hours)


main(sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
