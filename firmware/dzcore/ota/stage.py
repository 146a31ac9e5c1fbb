# Staging an update beside the running version (DESIGN §1.6): the offer is judged, then the
# bundle's files are written under <root>/<slot>/ in the manifest's order as its bytes come,
# each file checked against its SHA-256 as soon as it is whole. Resumable from what is on
# flash: the slot keeps the manifest it is staging, and the bytes received so far are the
# sizes of its files (LittleFS commits a file's size with its data, at close), so after a link
# loss or a power cut the download asks again from `offset()`. Nothing outside the slot is
# written: not the journal, not the config, not the running version.
import hashlib
import os

from dzcore import cbor
from micropython import const

_BUF = const(512)
_MANIFEST = "/manifest.cbor"


class Refused(Exception):
    # An offer or a chunk not to install: args[0] names why (mac board downgrade min mpy
    # bad hash).
    pass


def _version(text):
    try:
        parts = [int(x) for x in text.split(".")]
    except (AttributeError, ValueError):
        raise Refused("bad")
    if len(parts) != 3:
        raise Refused("bad")
    return tuple(parts)


def judge(manifest_bytes, mac, hmac256, board, running, mpy_major):
    # -> the manifest map of an offer this device may install, else Refused(why). `hmac256`:
    # the device key's HMAC256, or None (then nothing is installed).
    if hmac256 is None or mac is None or len(mac) != 32:
        raise Refused("mac")
    good = hmac256.digest(manifest_bytes)
    diff = 0
    for i in range(32):
        diff |= good[i] ^ mac[i]
    if diff:
        raise Refused("mac")
    try:
        m = cbor.decode(manifest_bytes)
    except ValueError:
        raise Refused("bad")
    if not isinstance(m, dict) or m.get("v") != 1 or not isinstance(m.get("files"), list):
        raise Refused("bad")
    if m.get("board") != board:
        raise Refused("board")
    if _version(m.get("version")) <= _version(running):
        raise Refused("downgrade")
    if _version(running) < _version(m.get("min")):
        raise Refused("min")
    mpy = m.get("mpy")
    if not isinstance(mpy, str) or mpy.split(".")[0] != str(mpy_major):
        raise Refused("mpy")
    for entry in m["files"]:
        if (
            not isinstance(entry, list)
            or len(entry) != 3
            or not isinstance(entry[0], str)
            or not entry[0].startswith("/")
            or ".." in entry[0]
            or not isinstance(entry[1], int)
            or entry[1] < 0
            or not isinstance(entry[2], bytes)
            or len(entry[2]) != 32
        ):
            raise Refused("bad")
    return m


def _makedirs(path):
    built = ""
    for part in path.split("/")[:-1]:
        if part:
            built += "/" + part
            try:
                os.mkdir(built)
            except OSError:
                pass


def _size(path):
    try:
        return os.stat(path)[6]
    except OSError:
        return -1


def _remove_tree(path):
    try:
        entries = list(os.ilistdir(path))
    except OSError:
        return
    for entry in entries:
        child = path + "/" + entry[0]
        if entry[1] == 0x4000:
            _remove_tree(child)
            os.rmdir(child)
        else:
            os.remove(child)


class Stager:
    def __init__(self, slot_dir, manifest_bytes, manifest):
        self.dir = slot_dir
        self.files = manifest["files"]
        self.version = manifest["version"]
        self.total = 0
        for entry in self.files:
            self.total += entry[1]
        self._manifest_bytes = manifest_bytes
        self._buf = bytearray(_BUF)

    def begin(self):
        # Resume the same bundle, or clear the slot for a new one. -> offset()
        held = None
        try:
            with open(self.dir + _MANIFEST, "rb") as f:
                held = f.read()
        except OSError:
            pass
        if held != self._manifest_bytes:
            _remove_tree(self.dir)
            _makedirs(self.dir + _MANIFEST)
            tmp = self.dir + _MANIFEST + ".tmp"
            with open(tmp, "wb") as f:
                f.write(self._manifest_bytes)
            os.rename(tmp, self.dir + _MANIFEST)
        return self.offset()

    def offset(self):
        # Bytes of the bundle's files already on flash (the first short file ends them).
        done = 0
        for path, size, _ in self.files:
            have = _size(self.dir + path)
            if have < size:
                return done + max(0, have)
            done += size
        return done

    def _where(self, offset):
        # -> (index of the file holding `offset`, offset inside it)
        for i in range(len(self.files)):
            size = self.files[i][1]
            if offset < size:
                return i, offset
            offset -= size
        return len(self.files), 0

    def write(self, offset, data):
        # Bytes of the bundle's files from `offset`; -> the next offset wanted. A chunk not at
        # the current offset (a resend, a reordering) is ignored. A file that is whole and
        # does not match its hash is removed and refused: its bytes come again.
        expected = self.offset()
        if offset != expected:
            return expected
        view = memoryview(data)
        i, inside = self._where(offset)
        while len(view) > 0 and i < len(self.files):
            path, size, digest = self.files[i]
            full = self.dir + path
            take = min(len(view), size - inside)
            if inside == 0:
                _makedirs(full)
            with open(full, "ab" if inside else "wb") as f:
                f.write(view[:take])
            view = view[take:]
            if inside + take == size and not self._check(full, digest):
                os.remove(full)
                raise Refused("hash")
            i, inside = i + 1, 0
        return self.offset()

    def _check(self, full, digest):
        h = hashlib.sha256()
        buf = self._buf
        with open(full, "rb") as f:
            while True:
                n = f.readinto(buf)
                if not n:
                    break
                h.update(memoryview(buf)[:n])
        return h.digest() == digest

    def verify(self):
        # Every file whole and matching, read back from flash: the last check before the switch.
        for path, size, digest in self.files:
            full = self.dir + path
            if _size(full) != size or not self._check(full, digest):
                return False
        return True
