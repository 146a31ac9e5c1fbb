# The journal's read side: records from a seq on, across segment files, as stored. Reading
# never changes anything; what it finds missing is returned for the journal to declare.
from dzcore.journal.frame import FRAME_HEAD, SEGMENT_HEAD, FrameReader
from dzcore.journal.segments import name


class Scan:
    def __init__(self, root, segs, buf):
        self.root = root
        self.segs = segs
        self.buf = buf
        self.hint = None  # (segment first seq, offset, seq there): where the last read ended

    def read(self, cursor, limit, max_records, max_bytes):
        # -> (items, missing, cursor, done). items: [(seq, record bytes)] from cursor up to
        # `limit` (the last synced seq); missing: [[from, to]] seqs skipped over between them;
        # cursor: the next seq to read; done: True when a limit stopped the read.
        items = []  # type: list[tuple[int, bytes]]
        missing = []  # type: list[list[int]]
        total = 0
        segs = self.segs
        index = segs.find(cursor)
        while index < len(segs):
            first = segs.first[index]
            start = SEGMENT_HEAD
            if self.hint and self.hint[0] == first and self.hint[2] <= cursor:
                start = self.hint[1]
            with open(self.root + "/" + name(first), "rb") as f:
                reader = FrameReader(f, segs.size[index], self.buf, start)
                while True:
                    if not reader.next():
                        if reader.at_end() or not reader.resync():
                            break
                        continue
                    seq = reader.header.seq
                    if seq < cursor:
                        reader.advance()  # before the cursor, or a repeated seq: not again
                        continue
                    size = reader.length - FRAME_HEAD
                    if (
                        seq > limit
                        or len(items) >= max_records
                        or (items and total + size > max_bytes)
                    ):
                        self.hint = (first, reader.pos, seq)
                        return items, missing, cursor, True
                    if seq > cursor:
                        missing.append([cursor, seq - 1])
                    items.append((seq, bytes(reader.body())))
                    total += size
                    cursor = seq + 1
                    reader.advance()
            index += 1
        return items, missing, cursor, False

    def forget(self):
        self.hint = None
