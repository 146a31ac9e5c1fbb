# A RAM journal implementing interface B (prompts/interfaces.md) exactly, for unit tests of the
# uploader. The real one is firmware/dzcore/journal/journal.py; end-to-end tests use that.
from dzcore import cbor


class JournalFull(Exception):
    pass


class JournalCorrupt(Exception):
    pass


class _Chunked:
    def __init__(self):
        self._chunks = {}

    def __setitem__(self, seq, rec):
        chunk = self._chunks.get(seq >> 5)
        if chunk is None:
            chunk = self._chunks[seq >> 5] = [None] * 32
        chunk[seq & 31] = rec

    def __getitem__(self, seq):
        chunk = self._chunks.get(seq >> 5)
        rec = chunk[seq & 31] if chunk else None
        if rec is None:
            raise KeyError(seq)
        return rec

    def pop(self, seq, default=None):
        chunk = self._chunks.get(seq >> 5)
        if chunk is None or chunk[seq & 31] is None:
            return default
        rec, chunk[seq & 31] = chunk[seq & 31], None
        if not any(chunk):
            del self._chunks[seq >> 5]
        return rec

    def seqs(self):
        for base in sorted(self._chunks):
            chunk = self._chunks[base]
            for i in range(32):
                if chunk[i] is not None:
                    yield (base << 5) | i


class Journal:
    def __init__(self, root_dir=None, budget_bytes=1 << 20, rng=None):
        self.root_dir = root_dir
        self.budget_bytes = budget_bytes
        self._rng = rng
        self.epoch = 0
        self.boot = 0
        self.acked = 0
        self.next_seq = 1
        # seq -> record bytes, in small fixed lists: a big dict or list would need one large
        # contiguous block, which a fragmented MicroPython heap may not have.
        self._recs = _Chunked()
        self._lost = []  # [from, to]
        self.ack_calls = []
        self._bytes = 0
        self.overflow_receipts = 0
        self.overflow_diag = 0

    def mount(self):
        self.epoch = self._rng() if self._rng else 0x2A2A2A2A
        self.boot += 1

    def append(self, kind, body, t=0, up=0):
        seq = self.next_seq
        rec = cbor.encode({"seq": seq, "k": kind, "t": t, "boot": self.boot, "up": up, "b": body})
        if len(rec) > 512:
            raise ValueError("record too large")
        if kind == "r" and self._bytes + len(rec) > self.budget_bytes:
            self.overflow_receipts += 1
            raise JournalFull("full")
        self._recs[seq] = rec
        self._bytes += len(rec)
        self.next_seq = seq + 1
        return seq

    def declare_lost(self, first, last):
        # Test helper: the range became unreadable (as a corrupt segment found at mount).
        for seq in range(first, last + 1):
            rec = self._recs.pop(seq, None)
            if rec is not None:
                self._bytes -= len(rec)
        self._lost.append([first, last])

    def commit(self):
        pass

    def peek(self, from_seq, max_records, max_bytes):
        seq = max(from_seq, self.acked + 1)
        items, gaps, size = [], [], 0
        while seq < self.next_seq and len(items) < max_records:
            lost = self._lost_at(seq)
            if lost is not None:
                gaps.append([lost[0], lost[1]])
                seq = lost[1] + 1
                continue
            rec = self._recs[seq]
            if size + len(rec) > max_bytes:
                break
            items.append((seq, rec))
            size += len(rec)
            seq += 1
        return items, gaps, seq

    def _lost_at(self, seq):
        for lost in self._lost:
            if lost[0] <= seq <= lost[1]:
                return lost
        return None

    def ack(self, upto):
        self.ack_calls.append(upto)
        upto = min(upto, self.next_seq - 1)
        if upto <= self.acked:
            return
        for seq in range(self.acked + 1, upto + 1):
            rec = self._recs.pop(seq, None)
            if rec is not None:
                self._bytes -= len(rec)
        self.acked = upto

    def stats(self):
        records = size = 0
        oldest = None
        for seq in self._recs.seqs():
            if seq > self.acked:
                rec = self._recs[seq]
                if oldest is None:
                    oldest = cbor.decode(rec)
                records += 1
                size += len(rec)
        return {
            "epoch": self.epoch,
            "next_seq": self.next_seq,
            "acked": self.acked,
            "records": records,
            "bytes": size,
            "oldest_t": oldest["t"] if oldest else 0,
            "oldest_up": oldest["up"] if oldest else 0,
            "overflow_receipts": self.overflow_receipts,
            "overflow_diag": self.overflow_diag,
            "lost": sum(b - a + 1 for a, b in self._lost),
            "boot": self.boot,
            "capacity": self.budget_bytes,
        }
