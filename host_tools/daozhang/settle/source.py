"""A settlement file's bytes, read once from disk without holding them: its SHA-256, its
encoding (UTF-8 or GBK, or the one forced), whether it ends with a newline.

Files run to hundreds of megabytes, so nothing here keeps the whole file: `scan` reads it in
chunks through the candidate decoders and the hash at once, and the parsers read it again as
a stream (settle/parse.py).
"""

from __future__ import annotations

import codecs
import hashlib
from dataclasses import dataclass
from pathlib import Path

from daozhang.errors import InputError

ENCODINGS = ("utf-8", "gbk")
_CHUNK = 1 << 20


class ScanError(InputError):
    """The file cannot be read as text; `sha256` is its hash (for the import log)."""

    def __init__(self, message: str, sha256: str) -> None:
        super().__init__(message)
        self.sha256 = sha256


@dataclass(frozen=True)
class Source:
    name: str
    path: Path
    sha256: str
    encoding: str  # utf-8 | gbk
    size: int
    ends_with_newline: bool
    head: bytes  # the first bytes, for recognising the format
    decodes: tuple[str, ...] = ()  # every encoding the whole file decodes in (ASCII: both)

    def text_encoding(self) -> str:
        """The codec a text reader uses: a UTF-8 BOM is allowed and dropped."""
        return "utf-8-sig" if self.encoding == "utf-8" else self.encoding


class _Candidate:
    """One encoding tried over the whole stream; remembers where it first failed."""

    def __init__(self, encoding: str) -> None:
        self.encoding = encoding
        self.decoder = codecs.getincrementaldecoder(encoding)()
        self.error_at: int | None = None

    def feed(self, chunk: bytes, offset: int, final: bool) -> None:
        if self.error_at is not None:
            return
        pending = len(self.decoder.getstate()[0])
        if not pending and chunk.isascii():
            return  # ASCII is valid UTF-8 and GBK: nothing to decode (a C-speed check)
        try:
            self.decoder.decode(chunk, final)
        except UnicodeDecodeError as exc:
            # exc.start counts from the bytes held back from the previous chunk.
            self.error_at = offset - pending + exc.start


def scan(name: str, path: Path, encoding: str | None = None) -> Source:
    """Hash and check the encoding of a file in one streaming pass; InputError when unreadable."""
    candidates = [_Candidate(e) for e in ((encoding,) if encoding else ENCODINGS)]
    digest = hashlib.sha256()
    offset = 0
    has_nul = False
    last = b""
    head = b""
    try:
        with path.open("rb") as f:
            while True:
                chunk = f.read(_CHUNK)
                for c in candidates:
                    c.feed(chunk, offset, final=not chunk)
                if not chunk:
                    break
                if not head:
                    head = chunk[:4096]
                digest.update(chunk)
                has_nul = has_nul or b"\x00" in chunk
                offset += len(chunk)
                last = chunk
    except OSError as exc:
        raise ScanError(f"{name}: cannot read: {exc.strerror}", "") from None
    good = [c for c in candidates if c.error_at is None]
    if not good:
        first = candidates[0]
        assert first.error_at is not None  # every candidate failed
        line, byte = _locate(path, first.error_at)
        tried = " or ".join(c.encoding for c in candidates)
        raise ScanError(
            f"{name}: line {line}: wrong encoding: not {tried} text "
            f"(byte 0x{byte:02x} at offset {first.error_at})",
            digest.hexdigest(),
        )
    if has_nul:
        # UTF-16 and binary files decode "fine" byte by byte; NULs give them away.
        raise ScanError(
            f"{name}: contains NUL bytes: not a UTF-8 or GBK text file", digest.hexdigest()
        )
    return Source(
        name,
        path,
        digest.hexdigest(),
        good[0].encoding,
        offset,
        last.endswith(b"\n"),
        head,
        tuple(c.encoding for c in good),
    )


def _locate(path: Path, offset: int) -> tuple[int, int]:
    """(line number, byte) at a byte offset, reading only up to it."""
    line = 1
    with path.open("rb") as f:
        left = offset
        while left > 0:
            chunk = f.read(min(_CHUNK, left))
            line += chunk.count(b"\n")
            left -= len(chunk)
        byte = f.read(1)
    return line, byte[0] if byte else 0
