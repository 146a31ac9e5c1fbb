# A block device backed by a file on the host: the virtual board's flash chip.
# It lives outside the MicroPython heap (the host file), like a real board's SPI flash.
from micropython import const

_IOCTL_BLOCK_COUNT = const(4)
_IOCTL_BLOCK_SIZE = const(5)
_IOCTL_BLOCK_ERASE = const(6)
_ERASED = b"\xff" * 256


class FileBlockDevice:
    def __init__(self, file, block_count, block_size=4096):
        self.file = file
        self.block_count = block_count
        self.block_size = block_size
        self.writes = 0  # programs of any size, counted for benchmarks and power-cut tests
        self.erases = 0
        self.bytes_written = 0

    def readblocks(self, block, buf, offset=0):
        self.file.seek(block * self.block_size + offset)
        self.file.readinto(buf)

    def writeblocks(self, block, buf, offset=None):
        if offset is None:
            # Old-style full-block write: erase implied.
            offset = 0
            self.erases += 1
        self.file.seek(block * self.block_size + offset)
        self.file.write(buf)
        self.file.flush()
        self.writes += 1
        self.bytes_written += len(buf)

    def ioctl(self, op, arg):
        if op == _IOCTL_BLOCK_COUNT:
            return self.block_count
        if op == _IOCTL_BLOCK_SIZE:
            return self.block_size
        if op == _IOCTL_BLOCK_ERASE:
            # Like NOR flash: an erased block reads 0xFF, so old data does not linger in
            # free blocks (what an artefact scan for card numbers relies on).
            # In 256-byte pieces of one constant: no 4 KB allocation per erase in the heap.
            self.file.seek(arg * self.block_size)
            for _ in range(self.block_size // len(_ERASED)):
                self.file.write(_ERASED)
            self.file.flush()
            self.erases += 1
            return 0
        return None
