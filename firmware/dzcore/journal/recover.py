# Recovery at mount: read every segment frame by frame, rebuild the segment index, truncate a
# torn tail, and find seqs that can no longer be read (to be declared lost, never skipped in
# silence). A frame counts only when its length, CRC and record prefix are all good.
import os

from dzcore.journal import state as journal_state
from dzcore.journal.frame import SEGMENT_HEAD, FrameReader, segment_epoch
from dzcore.journal.segments import file_size, list_dir, name, truncate


class Found:
    # What a scan found: the caller turns it into state.
    def __init__(self):
        self.epoch = None  # from the first good segment header
        self.first_seq = 0  # first seq of the oldest segment (0: no segment)
        self.next_seq = 1  # one past the highest good seq
        self.max_boot = 0
        self.lost = []  # [[from, to], ...] unreadable seqs above `acked`
        self.truncated = 0  # bytes cut from a torn tail


def remove_temp_files(root):
    # A temp file is a write that never reached its rename: it holds nothing committed.
    for entry in os.listdir(root):
        if entry.endswith(".tmp"):
            os.remove(root + "/" + entry)


def _declare(found, first, last, acked, declared):
    # Seqs first..last are missing: declare those above acked that are not declared yet.
    first = max(first, acked + 1)
    for rng in declared:
        if rng[0] <= first <= rng[1]:
            first = rng[1] + 1
    if first <= last:
        found.lost.append([first, last])


def scan(root, segs, buf, acked, declared):
    # Fills `segs` from the files in root. `acked`/`declared` come from the state; acked is
    # None when there is no state, and the oldest segment is then where the data starts.
    found = Found()
    firsts = list_dir(root)
    head = bytearray(SEGMENT_HEAD)
    if acked is None:
        acked = firsts[0] - 1 if firsts else 0
    expect = acked + 1  # the next seq a good frame should carry
    for i, first in enumerate(firsts):
        path = root + "/" + name(first)
        size = file_size(path)
        is_last = i == len(firsts) - 1
        if is_last and size < SEGMENT_HEAD:
            # Created, power cut before its first sync: it never held a record.
            os.remove(path)
            break
        if not found.first_seq:
            found.first_seq = first
        diag = 0
        top = first - 1
        with open(path, "rb") as f:
            f.readinto(head)
            epoch = segment_epoch(head)
            if found.epoch is None:
                found.epoch = epoch
            reader = FrameReader(f, size, buf)
            while True:
                if not reader.next():
                    if reader.at_end():
                        break
                    bad_at = reader.pos
                    if reader.resync():
                        continue
                    if is_last:
                        f.close()
                        truncate(path, bad_at, buf)
                        found.truncated += size - bad_at
                        size = bad_at
                    break
                header = reader.header
                if header.seq >= expect:
                    if header.seq > expect:
                        _declare(found, expect, header.seq - 1, acked, declared)
                    expect = header.seq + 1
                    top = header.seq
                    if header.kind == "d":
                        diag += reader.length
                if header.boot > found.max_boot:
                    found.max_boot = header.boot
                reader.advance()
        if not is_last:
            top = max(top, firsts[i + 1] - 1)
        segs.add(first, top, size, diag)
    found.next_seq = expect
    return found


def good_prefix(path, before, buf):
    # The good frames of a segment file that start before offset `before`:
    # -> (their end, the last seq among them, bytes of diagnostic frames among them).
    last = diag = 0
    with open(path, "rb") as f:
        reader = FrameReader(f, file_size(path), buf)
        while reader.pos < before and reader.next():
            last = reader.header.seq
            if reader.header.kind == "d":
                diag += reader.length
            reader.advance()
        return reader.pos, last, diag


def recover(root, segs, buf, new_epoch):
    # The state at mount: from the state file, the segments filling `segs` (scan), and a new
    # epoch when there is no journal yet. -> (state, found); found.lost: newly found losses.
    remove_temp_files(root)
    state = journal_state.load(root + "/state")
    had_state = state is not None
    if state is None:
        state = journal_state.State()
    found = scan(root, segs, buf, state.acked if had_state else None, state.lost)
    if not had_state:
        # A state file is written before any segment: without one, either the journal is
        # new (a new epoch) or the state was damaged; then the segments say who we are.
        state.epoch = found.epoch or new_epoch()
        state.acked = found.first_seq - 1 if found.first_seq else 0
        state.boot = found.max_boot
    for first, last in found.lost:
        state.add_lost(first, last)
    return state, found
