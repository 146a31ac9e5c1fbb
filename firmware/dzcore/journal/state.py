# The journal's small state file: epoch, boot counter, the acked cursor and the declared lost
# ranges. Written whole to a temp file and renamed into place (atomic on LittleFS), so a power
# cut leaves either the old state or the new one. Stored as one frame: len | crc32 | CBOR map.
import os
import struct
from binascii import crc32

from dzcore import cbor
from micropython import const

_HEAD = const(6)
_MAX_LOST_RANGES = const(16)


class State:
    def __init__(self, epoch=0, boot=0, acked=0):
        self.epoch = epoch
        self.boot = boot
        self.acked = acked
        self.lost = []  # [[from, to], ...] declared, not yet passed by `acked`
        self.lost_total = 0  # seqs ever declared lost in this epoch

    def add_lost(self, first, last):
        # Adjacent ranges merge; a bounded list keeps the state file small (the oldest two
        # merge when it is full: their seqs stay declared, the range just covers both).
        self.lost.append([first, last])
        self.lost.sort()
        merged = []  # type: list[list[int]]
        for rng in self.lost:
            if merged and rng[0] <= merged[-1][1] + 1:
                merged[-1][1] = max(merged[-1][1], rng[1])
            else:
                merged.append(rng)
        while len(merged) > _MAX_LOST_RANGES:
            merged[0:2] = [[merged[0][0], merged[1][1]]]
        self.lost = merged
        self.lost_total += last - first + 1

    def prune(self):
        self.lost = [r for r in self.lost if r[1] > self.acked]

    def past_lost(self, seq):
        # The first seq at or after `seq` that is not inside a declared lost range (sorted).
        for rng in self.lost:
            if rng[0] <= seq <= rng[1]:
                seq = rng[1] + 1
        return seq

    def lost_after(self, seq):
        # How many declared lost seqs are above seq.
        return sum(r[1] - max(r[0], seq + 1) + 1 for r in self.lost if r[1] > seq)


def load(path):
    # The state stored at path, or None when it is missing or damaged.
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError:
        return None
    if len(data) < _HEAD:
        return None
    size, crc = struct.unpack_from(">HI", data, 0)
    body = memoryview(data)[_HEAD:]
    if size != len(body) or crc32(body) != crc:
        return None
    try:
        fields = cbor.decode(body)
    except cbor.CBORError:
        return None
    if not isinstance(fields, dict):
        return None
    state = State()
    try:
        state.epoch = int(fields["epoch"])
        state.boot = int(fields["boot"])
        state.acked = int(fields["acked"])
        state.lost = [[int(r[0]), int(r[1])] for r in fields.get("lost", [])]
        state.lost_total = int(fields.get("lost_total", 0))
    except (KeyError, TypeError, IndexError, ValueError):
        return None
    return state


def save(path, state):
    body = cbor.encode(
        {
            "v": 1,
            "epoch": state.epoch,
            "boot": state.boot,
            "acked": state.acked,
            "lost": state.lost,
            "lost_total": state.lost_total,
        }
    )
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(struct.pack(">HI", len(body), crc32(body)))
        f.write(body)
    os.rename(tmp, path)
