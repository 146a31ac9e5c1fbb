# Flash for journal tests: a LittleFS2 file system on a file-backed block device (outside the
# heap, like a board's SPI flash), and a device that loses power after write k.
import os

import vfs
from blockdev import FileBlockDevice

_mounts = [0]
_ERASED = b"\xff" * 256  # an erase writes this 16 times: no 4 KB allocation in a 64K heap


class PowerCut(BaseException):
    # Not an Exception: nothing in the firmware may catch it, as nothing runs after a real cut.
    pass


class CuttableBlockDevice(FileBlockDevice):
    # Counts programs and erases as "writes"; the one after `cut_after` raises PowerCut and
    # every later one is dropped (a finaliser closing a file of the dead mount writes nothing).
    def __init__(self, file, block_count, cut_after=-1, log=None):
        super().__init__(file, block_count)
        self.cut_after = cut_after
        self.ops = 0
        self.dead = False
        self.log = log  # an open host file: each op appended as "block offset len\n" + data

    def _live(self):
        if self.dead:
            return False
        if self.ops == self.cut_after:
            self.dead = True
            raise PowerCut()
        self.ops += 1
        return True

    def readblocks(self, block, buf, offset=0):
        if self.dead:
            # Only a finaliser of the dead mount reads now; its file may be closed.
            for i in range(len(buf)):
                buf[i] = 0xFF
            return
        super().readblocks(block, buf, offset)

    def writeblocks(self, block, buf, offset=None):
        if self._live():
            if self.log is not None:
                _log(self.log, block, 0 if offset is None else offset, buf)
            super().writeblocks(block, buf, offset)

    def ioctl(self, op, arg):
        if op != 6:  # not an erase
            return super().ioctl(op, arg)
        if not self._live():
            return 0
        if self.log is not None:
            _log(self.log, arg, -1, b"")
        self.file.seek(arg * self.block_size)
        for _ in range(self.block_size // len(_ERASED)):
            self.file.write(_ERASED)
        self.file.flush()
        self.erases += 1
        return 0


def _log(log, block, offset, data):
    log.write(b"%d %d %d\n" % (block, offset, len(data)))
    log.write(data)


def apply_writes(image, log, count, buf):
    # Applies the next `count` writes of a log `_log` wrote to the open image file: the
    # image as it stood after those writes, for a power cut just past them.
    view = memoryview(buf)
    for _ in range(count):
        block, offset, length = [int(x) for x in log.readline().split()]
        data = log
        if offset < 0:  # an erase
            offset, length, data = 0, 4096, None
        image.seek(block * 4096 + offset)
        while length > 0:
            part = min(length, len(buf))
            if data is None:
                for i in range(part):
                    buf[i] = 0xFF
            else:
                data.readinto(view[:part])
            image.write(view[:part])
            length -= part


def blank_image(path, block_count, block_size=4096):
    chunk = b"\xff" * 256
    with open(path, "wb") as f:
        for _ in range(block_count * block_size // 256):
            f.write(chunk)


def copy_file(src, dst, buf):
    view = memoryview(buf)
    with open(src, "rb") as a, open(dst, "wb") as b:
        while True:
            got = a.readinto(buf)
            if not got:
                break
            b.write(view[:got])


def mount(device, fresh=False):
    # Mounts a LittleFS2 on device at a new mount point; returns the point.
    if fresh:
        vfs.VfsLfs2.mkfs(device)
    fs = vfs.VfsLfs2(device)
    _mounts[0] += 1
    point = "/flash%d" % _mounts[0]
    vfs.mount(fs, point)
    return point


def unmount(point):
    try:
        vfs.umount(point)
    except OSError:
        pass


def image_flash(path, block_count, fresh=False, cut_after=-1, log=None):
    # (device, mount point) for an image file; fresh: a new blank, formatted image.
    if fresh:
        blank_image(path, block_count)
    device = CuttableBlockDevice(open(path, "r+b"), block_count, cut_after, log)
    return device, mount(device, fresh)


def tmp_path(leaf):
    return (os.getenv("DZ_TMP") or ".") + "/" + leaf


class FailingBlockDevice(CuttableBlockDevice):
    # Programs fail with EIO (returned to LittleFS as -5, as a driver does) while `failing`.
    def __init__(self, file, block_count):
        super().__init__(file, block_count)
        self.failing = False

    def writeblocks(self, block, buf, offset=None):
        if self.failing:
            return -5
        return super().writeblocks(block, buf, offset)
