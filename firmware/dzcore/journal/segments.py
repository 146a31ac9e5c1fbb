# The index of the journal's segment files, kept in RAM as four parallel arrays (a few bytes a
# segment, not an object each: a 3 MB journal has ~100 segments and the heap is 64 KB), and
# the flash accounting the budget is checked against: a file holds whole blocks.
import os
from array import array

_SUFFIX = ".seg"


def name(first_seq):
    return "%010d%s" % (first_seq, _SUFFIX)


def makedirs(path):
    built = ""
    for part in path.split("/"):
        if not part:
            continue
        built += "/" + part
        try:
            os.mkdir(built)
        except OSError:
            pass  # exists (a missing parent would fail again at the next level)


def list_dir(root):
    # The first seqs of the segment files in root, in order; other files are left alone.
    firsts = []
    for entry in os.listdir(root):
        if entry.endswith(_SUFFIX) and len(entry) == 10 + len(_SUFFIX):
            try:
                firsts.append(int(entry[:10]))
            except ValueError:
                continue
    firsts.sort()
    return firsts


def file_size(path):
    try:
        return os.stat(path)[6]
    except OSError:
        return -1


def truncate(path, size, buf):
    # MicroPython files have no truncate(): copy the good prefix, then rename over the file.
    tmp = path + ".tmp"
    view = memoryview(buf)
    with open(path, "rb") as src, open(tmp, "wb") as dst:
        left = size
        while left > 0:
            got = src.readinto(view[: min(left, len(buf))])
            if not got:
                raise OSError("short read while truncating %s" % path)
            dst.write(view[:got])
            left -= got
    os.rename(tmp, path)


class Segments:
    def __init__(self, block_size):
        self.block_size = block_size
        self.first = array("I")
        self.last = array("I")  # first - 1 while the segment holds no record
        self.size = array("I")  # bytes in the file (header included)
        self.diag = array("I")  # bytes of diagnostic frames in it

    def __len__(self):
        return len(self.first)

    def add(self, first, last, size, diag):
        self.first.append(first)
        self.last.append(last)
        self.size.append(size)
        self.diag.append(diag)

    def delete_acked(self, acked, path_of):
        # Whole segments at or below the durable cursor `acked`; the newest closed segment
        # stays as well as the open one, so intake can still recognise a repeated receipt.
        count = 0
        while len(self) - count > 2 and self.last[count] <= acked:
            os.remove(path_of(name(self.first[count])))
            count += 1
        if count:
            self.drop_first(count)

    def drop_first(self, count):
        self.first = self.first[count:]
        self.last = self.last[count:]
        self.size = self.size[count:]
        self.diag = self.diag[count:]

    def blocks(self, size):
        return (size + self.block_size - 1) // self.block_size * self.block_size

    def used(self):
        # Flash held by all segments, in whole blocks.
        return sum(self.blocks(s) for s in self.size)

    def diag_used(self):
        return sum(self.diag)

    def held_after(self, acked):
        # File bytes of the segments that still hold a record past the cursor `acked`.
        return sum(self.size[i] for i in range(len(self.first)) if self.last[i] > acked)

    def find(self, seq):
        # Index of the first segment whose records reach seq (last >= seq), or len().
        for i in range(len(self.first)):
            if self.last[i] >= seq:
                return i
        return len(self.first)
