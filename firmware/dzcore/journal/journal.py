# The journal: receipts and diagnostics on flash, safe against power cuts (DESIGN §1.1).
# Append-only segment files of frames (journal_frame), a small state file written by rename
# (journal_state), recovery at mount (journal_recover). Reads are peek-then-ack: uploading
# removes nothing; only ack() lets whole segments go, after the cursor covering them is durable.
# Storage contract: append(receipt) returns only after the record is synced; diagnostics are
# written unsynced and committed with the next receipt, by commit(), or past _COMMIT_BYTES.
import os

from dzcore.journal import state as journal_state
from dzcore.journal.frame import (
    FRAME_HEAD,
    MAX_RECORD,
    SEGMENT_HEAD,
    Header,
    RecordTooLarge,
    encode_record,
    parse_header,
    segment_header,
)
from dzcore.journal.overflow import Overflow
from dzcore.journal.peek import Scan
from dzcore.journal.recover import good_prefix, recover
from dzcore.journal.segments import Segments, makedirs, name, truncate
from micropython import const

_COMMIT_BYTES = const(2048)  # unsynced diagnostics past this are committed at once
_STATE_RESERVE_BLOCKS = const(2)  # the state file and its temp copy during a rename
_MAX_SEGMENT = const(32768)

__all__ = ["Journal", "JournalFull", "JournalCorrupt", "RecordTooLarge"]


class JournalFull(Exception):
    pass


class JournalCorrupt(Exception):
    pass


def _urandom32():
    return int.from_bytes(os.urandom(4), "big")


class Journal:
    def __init__(self, root_dir, budget_bytes, rng=None, block_size=4096, segment_bytes=0):
        self.root = root_dir.rstrip("/")
        self.block_size = block_size
        if not segment_bytes:
            segment_bytes = max(block_size, min(_MAX_SEGMENT, budget_bytes // 32))
            segment_bytes -= segment_bytes % block_size
        self.segment_bytes = segment_bytes
        # Segments may hold the budget less the state's room; diagnostics a quarter of that.
        self.capacity = budget_bytes - _STATE_RESERVE_BLOCKS * block_size
        self.diag_cap = budget_bytes // 4
        self._rng = rng or _urandom32
        self._buf = bytearray(FRAME_HEAD + MAX_RECORD)
        self._view = memoryview(self._buf)
        self._state = journal_state.State()
        self._mounted = False
        self._segs = Segments(block_size)
        self._file = None  # the newest segment, open for appending
        self._pending = 0  # bytes of unsynced diagnostic frames
        self._synced_seq = 0
        self._used = 0
        self._cut_to = None  # size to cut the newest segment back to after a failed append
        self._scan = Scan(self.root, self._segs, self._buf)
        self._oldest = None  # (t, up) of the oldest unacked record
        self.next_seq = 1
        self._overflow = Overflow()

    # -- identity -------------------------------------------------------------------------
    @property
    def epoch(self):
        return self._state.epoch

    @property
    def boot(self):
        return self._state.boot

    @property
    def acked(self):
        return self._state.acked

    # -- mount ----------------------------------------------------------------------------
    def mount(self):
        if self._mounted:
            self.close()
        self._segs = Segments(self.block_size)  # a remount starts from what is on flash
        self._scan = Scan(self.root, self._segs, self._buf)
        makedirs(self.root)
        state, found = recover(self.root, self._segs, self._buf, self._new_epoch)
        state.boot += 1
        top_lost = max([r[1] for r in state.lost] or [0])
        self.next_seq = max(found.next_seq, state.acked + 1, top_lost + 1)
        self._synced_seq = self.next_seq - 1
        self._state = state
        self._mounted = True
        self._save_and_release()
        if len(self._segs) and self._segs.size[-1] < self.segment_bytes:
            self._file = open(self._path(name(self._segs.first[-1])), "ab")
        for first, last in found.lost:
            self._append("d", {"ev": "lost", "from": first, "to": last, "why": "corrupt"}, 0, 0)
        self.commit()
        self._find_oldest()

    def _new_epoch(self):
        epoch = 0
        while not epoch:
            epoch = self._rng() & 0xFFFFFFFF
        return epoch

    def _path(self, leaf):
        return self.root + "/" + leaf

    # -- append ---------------------------------------------------------------------------
    def append(self, kind, body, t=0, up=0):
        # Receipts: synced before returning their seq; JournalFull when they do not fit.
        # Diagnostics: returns their seq, or None when dropped (counted) past their cap.
        if kind not in ("r", "d"):
            raise ValueError("record kind must be 'r' or 'd'")
        if not isinstance(body, dict):
            raise ValueError("record body must be a map")
        if not (isinstance(t, int) and isinstance(up, int) and t >= 0 and up >= 0):
            raise ValueError("t and up must be non-negative ints")
        seq = self._append(kind, body, t, up)
        if seq is not None and self._overflow.pending():
            self._report_overflow()
        return seq

    def _append(self, kind, body, t, up):
        if not self._mounted:
            raise JournalCorrupt("journal not mounted")
        if self._cut_to is not None:
            self._roll_back(self._cut_to)  # a failed append not yet cut back: first that
        seq = self.next_seq
        length = encode_record(self._buf, seq, kind, t, self._state.boot, up, body)
        segs = self._segs
        roll = self._file is None or segs.size[-1] + length > self.segment_bytes
        if roll:
            used = self._used + segs.blocks(SEGMENT_HEAD + length)
        else:
            size = segs.size[-1]
            used = self._used - segs.blocks(size) + segs.blocks(size + length)
        if used > self.capacity or (kind == "d" and segs.diag_used() + length > self.diag_cap):
            self._overflow.refused(kind)
            if kind == "r":
                raise JournalFull("journal full: %d of %d bytes used" % (self._used, self.capacity))
            return None
        if roll:
            self._roll(seq)
        file = self._file
        if file is None:
            raise JournalCorrupt("no segment open; remount")
        before = segs.size[-1]
        try:
            if file.write(self._view[:length]) != length:
                raise OSError("short write to the journal")
            if kind == "r" or self._pending + length >= _COMMIT_BYTES:
                file.flush()
        except OSError:
            self._cut_to = before
            self._roll_back(before)
            raise
        segs.size[-1] = before + length
        segs.last[-1] = seq
        if kind == "d":
            segs.diag[-1] += length
        self._used = used
        self.next_seq = seq + 1
        if kind == "r" or self._pending + length >= _COMMIT_BYTES:
            self._synced_seq = seq
            self._pending = 0
        else:
            self._pending += length
        if self._oldest is None:
            self._oldest = (t, up)
        return seq

    def _roll(self, seq):
        file, self._file = self._file, None
        if file is not None:
            file.close()  # closing syncs any diagnostics still pending
            self._synced_seq = self.next_seq - 1
            self._pending = 0
        file = open(self._path(name(seq)), "wb")
        file.write(segment_header(self._state.epoch))
        file.flush()
        self._file = file
        self._segs.add(seq, seq - 1, SEGMENT_HEAD, 0)
        self._used = self._segs.used()

    def _roll_back(self, before):
        # A failed append must leave no partial frame behind: cut the newest segment back to
        # its last good frame before the failed one (what is committed of it, read back)
        # before anything else is written, or refuse to go on. The failed frame goes even if
        # it reached flash: its caller was told it failed. Seqs of diagnostics that were
        # never synced are reused: nothing outside ever saw them. If the cut itself fails
        # (the flash still fails), OSError goes up and the next append tries it again first.
        segs = self._segs
        path = self._path(name(segs.first[-1]))
        file, self._file = self._file, None
        self._scan.forget()
        try:
            if file is not None:
                file.close()
        except OSError:
            pass  # what counts is what reads back below
        good, last, diag = good_prefix(path, before, self._buf)
        last = last or segs.first[-1] - 1  # no record left in it
        truncate(path, good, self._buf)
        self._file = open(path, "ab")
        self._cut_to = None
        segs.size[-1] = good
        segs.last[-1] = last
        segs.diag[-1] = diag
        self._used = segs.used()
        self.next_seq = max(last, self._synced_seq) + 1
        self._synced_seq = self.next_seq - 1
        self._pending = 0

    def close(self):
        # A clean stop (tests, a planned reboot): sync and close the open segment.
        file, self._file = self._file, None
        if file is not None:
            file.close()
        self._synced_seq = self.next_seq - 1
        self._pending = 0
        self._mounted = False

    def commit(self):
        if self._file is not None and self._pending:
            self._file.flush()
        self._synced_seq = self.next_seq - 1
        self._pending = 0

    def _report_overflow(self):
        self._overflow.report(lambda body: self._append("d", body, 0, 0))

    # -- peek and ack ---------------------------------------------------------------------
    def peek(self, from_seq, max_records=64, max_bytes=7168):
        # Records from from_seq on, as stored; gaps: declared lost ranges in what was passed.
        items, missing, cursor, done = self._scan.read(
            max(from_seq, 1), self._synced_seq, max_records, max_bytes
        )
        for first, last in missing:
            self._declare_missing(first, last)
        if not done:
            cursor = self._state.past_lost(cursor)
        gaps = [[max(r[0], from_seq), r[1]] for r in self._state.lost]
        gaps = [g for g in gaps if g[0] <= g[1] and g[0] < cursor]
        return items, gaps, cursor

    def _declare_missing(self, first, last):
        # Seqs that should be here and are not (damaged since mount, or deleted after an
        # ack when first <= acked): declare the unacked ones, once.
        state = self._state
        first = state.past_lost(max(first, state.acked + 1))
        if first > last:
            return
        state.add_lost(first, last)
        journal_state.save(self._path("state"), state)
        self._append("d", {"ev": "lost", "from": first, "to": last, "why": "corrupt"}, 0, 0)

    def _find_oldest(self):
        self._oldest = None
        items, _, _ = self.peek(self._state.acked + 1, 1, MAX_RECORD)
        if items:
            header = Header()
            if parse_header(items[0][1], header):
                self._oldest = (header.t, header.up)

    def ack(self, upto):
        state = self._state
        upto = min(upto, self.next_seq - 1)
        if upto <= state.acked:
            return
        state.acked = upto
        state.prune()
        self._save_and_release()
        self._find_oldest()
        if self._overflow.pending():
            self._report_overflow()

    def _save_and_release(self):
        journal_state.save(self._path("state"), self._state)
        # Only after the cursor covering them is durable (the state saved above).
        self._segs.delete_acked(self._state.acked, self._path)
        self._used = self._segs.used()

    # -- stats ----------------------------------------------------------------------------
    def stats(self):
        state = self._state
        last = self.next_seq - 1
        return {
            "epoch": state.epoch,
            "boot": state.boot,
            "next_seq": self.next_seq,
            "acked": state.acked,
            "records": max(0, last - state.acked - state.lost_after(state.acked)),
            "bytes": self._segs.held_after(state.acked),
            "used": self._used,
            "capacity": self.capacity,
            "oldest_t": self._oldest[0] if self._oldest else None,
            "oldest_up": self._oldest[1] if self._oldest else None,
            "overflow_receipts": self._overflow.receipts,
            "overflow_diag": self._overflow.diag,
            "lost": state.lost_total,
        }
