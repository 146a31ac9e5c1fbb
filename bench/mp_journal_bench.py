# Runs under MicroPython for bench/journal_bench.py. Prints one JSON line per measurement.
#   mp_journal_bench.py DIR N_RECEIPTS
import json
import sys
import time

import vfs
from blockdev import FileBlockDevice
from dzcore.journal.frame import FRAME_HEAD, MAX_RECORD, encode_record
from dzcore.journal.journal import Journal

_BLOCKS = 256  # a 1 MiB flash, LittleFS2 as the boards format it
_BUDGET = _BLOCKS * 4096 * 3 // 4


def _receipt(i):
    return {
        "mid": "898440358120001",
        "tid": "12345678",
        "bat": "000001",
        "trc": "%06d" % i,
        "typ": "sale",
        "ch": "card",
        "amt": 1850 + i,
        "cur": "CNY",
        "lt": 1763700000 + i,
        "pan": "622848******1234",
        "ck": "D",
        "ent": "051",
        "st": "approved",
        "rc": "00",
        "rrn": "%012d" % (700000 + i),
        "auth": "123456",
        "sd": "1122",
        "sm": "T1",
    }


_n = [0]


def _flash(folder):
    # A fresh, formatted image on the file-backed device; counters start after the format.
    _n[0] += 1
    path = "%s/bench%d.img" % (folder, _n[0])
    with open(path, "wb") as f:
        chunk = b"\xff" * 4096
        for _ in range(_BLOCKS):
            f.write(chunk)
    device = FileBlockDevice(open(path, "r+b"), _BLOCKS)
    vfs.VfsLfs2.mkfs(device)
    point = "/b%d" % _n[0]
    vfs.mount(vfs.VfsLfs2(device), point)
    device.writes = device.erases = device.bytes_written = 0
    return device, point


def _report(name, device, n, elapsed_us, extra=None):
    out = {
        "name": name,
        "records": n,
        "seconds": elapsed_us / 1e6,
        "per_s": n * 1e6 / elapsed_us if elapsed_us else 0,
        "bytes_written": device.bytes_written,
        "erases": device.erases,
        "programs": device.writes,
    }
    if extra:
        out.update(extra)
    print(json.dumps(out))


def durable(folder, n):
    # The journal as intake uses it: every receipt synced before it is ACKed; the collector
    # acks every 50.
    device, point = _flash(folder)
    journal = Journal(point + "/journal", _BUDGET)
    journal.mount()
    device.writes = device.erases = device.bytes_written = 0
    start = time.ticks_us()
    for i in range(n):
        seq = journal.append("r", _receipt(i), t=1763700000 + i, up=i)
        if seq % 50 == 0:
            journal.ack(seq)
    elapsed = time.ticks_diff(time.ticks_us(), start)
    _report("durable", device, n, elapsed)


def buffered(folder, n):
    # Baseline: the same frames appended to one file, synced only when it is closed at the
    # end (what a naive logger does; a power cut loses everything since the last close).
    device, point = _flash(folder)
    buf = bytearray(FRAME_HEAD + MAX_RECORD)
    frames = 0
    start = time.ticks_us()
    with open(point + "/plain.log", "ab") as f:
        for i in range(n):
            end = encode_record(buf, i + 1, "r", 1763700000 + i, 1, i, _receipt(i))
            f.write(memoryview(buf)[:end])
            frames += end
    elapsed = time.ticks_diff(time.ticks_us(), start)
    _report("buffered", device, n, elapsed, {"frame_bytes": frames // n})


def diag_hour(folder, hours, commit_every_s):
    # Diagnostics of one simulated hour, as netdiag produces them: a probe and a signal
    # sample every 60 s, a link flap every 20 min; committed every commit_every_s (0: each
    # record synced on its own, for comparison). No receipts.
    device, point = _flash(folder)
    journal = Journal(point + "/journal", _BUDGET)
    journal.mount()
    device.writes = device.erases = device.bytes_written = 0
    n = 0
    start = time.ticks_us()
    for second in range(0, hours * 3600, 60):
        up = second * 1000
        journal.append(
            "d", {"ev": "probe", "dns_ms": 12, "tcp_ms": 40, "tls_ms": 180, "rtt_ms": 38}, up=up
        )
        journal.append(
            "d",
            {
                "ev": "signal",
                "rat": "lte",
                "rsrp": -97,
                "rsrq": -11,
                "sinr": 9,
                "reg": 1,
                "cell": "460-00-1234-5678",
            },
            up=up + 1,
        )
        n += 2
        if second % 1200 == 0:
            journal.append("d", {"ev": "link_down", "stage": "tcp", "why": "timeout"}, up=up + 2)
            journal.append("d", {"ev": "link_up", "down_ms": 4200, "tries": 3}, up=up + 4202)
            n += 2
        if commit_every_s == 0 or (second + 60) % commit_every_s == 0:
            journal.commit()
        if (second + 60) % 600 == 0:
            journal.ack(journal.next_seq - 1)  # the collector confirms every 10 min
    elapsed = time.ticks_diff(time.ticks_us(), start)
    _report("diag_commit_%ds" % commit_every_s, device, n, elapsed, {"hours": hours})


def main():
    folder, n = sys.argv[1], int(sys.argv[2])
    durable(folder, n)
    buffered(folder, n)
    diag_hour(folder, 4, 300)
    diag_hour(folder, 4, 0)


main()
