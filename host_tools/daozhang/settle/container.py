"""Settlement files as acquirers send them: plain, gzip (WeChat's bill) or zip (Alipay's GBK
CSVs, UnionPay's ZM files), unpacked to a private temporary file, never into memory, with
limits against archive bombs.

A zip or gzip file is a few kilobytes that can unpack to terabytes. The limits are checked
while unpacking, not trusted from the archive's own header (which can lie): at most
`MAX_ENTRIES` entries, `MAX_SIZE` bytes each unpacked, `MAX_TOTAL` for the archive, and an
unpacked size no more than `MAX_RATIO` times the packed one (plus `RATIO_SLACK`: a small file
of repeated spaces compresses very well and is harmless). Each entry is imported as its own
file named `ARCHIVE/ENTRY`, known by its unpacked bytes.
"""

from __future__ import annotations

import gzip
import tempfile
import zipfile
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from daozhang.errors import InputError

MAX_ENTRIES = 64
MAX_SIZE = 4 << 30  # 4 GiB unpacked per entry
MAX_TOTAL = 8 << 30
MAX_RATIO = 200
RATIO_SLACK = 1 << 20
_CHUNK = 1 << 20


class _Readable(Protocol):
    def read(self, size: int = -1, /) -> bytes: ...


@dataclass(frozen=True)
class Member:
    name: str  # what messages and the import log call it: FILE or ARCHIVE/ENTRY
    path: Path  # the bytes to read (the file itself, or its unpacked copy)
    in_archive: bool


def kind_of(path: Path) -> str:
    """ "gzip", "zip" or "plain", by the file's first bytes (never by its name)."""
    try:
        with path.open("rb") as f:
            magic = f.read(4)
    except OSError:
        return "plain"  # scan() names the read error
    if magic[:2] == b"\x1f\x8b":
        return "gzip"
    if magic in (b"PK\x03\x04", b"PK\x05\x06"):
        return "zip"
    return "plain"


@contextmanager
def members(path: Path) -> Iterator[list[Member]]:
    """The files inside `path` (itself when plain), unpacked for the time of the `with`."""
    kind = kind_of(path)
    if kind == "plain":
        yield [Member(str(path), path, False)]
        return
    with tempfile.TemporaryDirectory(prefix="daozhang-settle-") as tmp:
        if kind == "gzip":
            yield [_gunzip(path, Path(tmp))]
        else:
            yield _unzip(path, Path(tmp))


def _gunzip(path: Path, tmp: Path) -> Member:
    inner = path.name[:-3] if path.name.endswith(".gz") else path.name + ".unpacked"
    name = f"{path}/{inner}"
    out = tmp / "0"
    packed = path.stat().st_size
    try:
        with gzip.open(path, "rb") as src:
            _copy(src, out, name, packed, MAX_SIZE)
    except (OSError, EOFError, zlib.error) as exc:
        raise InputError(f"{path}: not a readable gzip file: {exc}") from None
    _refuse_nested(out, name)
    return Member(name, out, True)


def _unzip(path: Path, tmp: Path) -> list[Member]:
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as exc:
        raise InputError(f"{path}: not a readable zip file: {exc}") from None
    out: list[Member] = []
    total = 0
    with archive:
        entries = [i for i in archive.infolist() if not i.is_dir()]
        if not entries:
            raise InputError(f"{path}: an empty zip file (no entries)")
        if len(entries) > MAX_ENTRIES:
            raise InputError(
                f"{path}: {len(entries)} entries in the zip, at most {MAX_ENTRIES}: "
                "not a settlement file's archive (an archive bomb?)"
            )
        size = path.stat().st_size  # an entry's own packed size may lie; the file cannot
        for n, info in enumerate(entries):
            name = f"{path}/{info.filename}"
            if info.flag_bits & 0x1:
                raise InputError(f"{name}: encrypted in the zip: unpack it first")
            target = tmp / str(n)
            try:
                with archive.open(info) as src:
                    packed = min(info.compress_size, size)
                    total += _copy(src, target, name, packed, MAX_TOTAL - total)
            except (zipfile.BadZipFile, OSError, EOFError, zlib.error) as exc:
                raise InputError(f"{name}: cannot unpack: {exc}") from None
            _refuse_nested(target, name)
            out.append(Member(name, target, True))
    return out


def _copy(src: _Readable, target: Path, name: str, packed: int, left: int) -> int:
    """Unpack `src` into `target`, refusing it as soon as it passes a limit."""
    limit = min(MAX_SIZE, left, max(packed, 1) * MAX_RATIO + RATIO_SLACK)
    written = 0
    with target.open("wb") as dst:
        while True:
            chunk = src.read(_CHUNK)
            if not chunk:
                return written
            written += len(chunk)
            if written > limit:
                why = (
                    f"more than {MAX_RATIO} times its packed size ({packed} bytes)"
                    if limit < min(MAX_SIZE, left)
                    else f"more than {limit} bytes"
                )
                raise InputError(
                    f"{name}: unpacks to {why}: refused (an archive bomb?); nothing imported"
                )
            dst.write(chunk)


def _refuse_nested(target: Path, name: str) -> None:
    if kind_of(target) != "plain":
        raise InputError(f"{name}: an archive inside an archive: unpack it first")
