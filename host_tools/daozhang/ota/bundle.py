"""An update bundle: the agent exactly as `daozhang flash` compiles it, with a manifest.

    bundle = b"DZB1" | u32 big-endian manifest length | manifest (CBOR) | file bytes, in the
             manifest's order

The manifest (canonical CBOR, so the same build gives the same bytes) is
`{v: 1, version, board, mpy, min, files: [[path, size, sha256], ...]}`: the version this bundle
installs, the board it is for, the bytecode version (`MAJOR.SUB`) of its `.mpy` files, the
lowest running version it may replace, and each file's device path, size and SHA-256 (32
bytes). A device checks every file against it before anything is switched (DESIGN §1.6). The
bundle file itself is not signed: each device is offered the manifest with an HMAC-SHA256
under its own key, made from the key store when the update is offered (`offer_mac`;
docs/security.md says why).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import struct
from dataclasses import dataclass

import cbor2

from daozhang.errors import InputError, UsageError
from daozhang.flash.build import Compiler, build

MAGIC = b"DZB1"
_HEAD = struct.Struct(">4sI")
MAX_MANIFEST_BYTES = 8192  # the device reads it whole; a few dozen files
_VERSION = re.compile(r"(0|[1-9]\d{0,5})\.(0|[1-9]\d{0,5})\.(0|[1-9]\d{0,5})")


def parse_version(text: str) -> tuple[int, int, int]:
    """`MAJOR.MINOR.PATCH`, each 0..999999: the firmware compares versions as these triples."""
    match = _VERSION.fullmatch(text)
    if not match:
        raise UsageError(f"version {text!r}: expected MAJOR.MINOR.PATCH, e.g. 0.2.0")
    major, minor, patch = (int(g) for g in match.groups())
    return major, minor, patch


@dataclass(frozen=True)
class BundleFile:
    path: str
    size: int
    sha256: bytes


@dataclass(frozen=True)
class Manifest:
    version: str
    board: str
    mpy: str
    min_version: str
    files: tuple[BundleFile, ...]

    def encode(self) -> bytes:
        body = {
            "v": 1,
            "version": self.version,
            "board": self.board,
            "mpy": self.mpy,
            "min": self.min_version,
            "files": [[f.path, f.size, f.sha256] for f in self.files],
        }
        return cbor2.dumps(body, canonical=True)

    @property
    def total_bytes(self) -> int:
        return sum(f.size for f in self.files)

    @classmethod
    def decode(cls, data: bytes) -> Manifest:
        try:
            body = cbor2.loads(data)
            files = tuple(BundleFile(str(p), int(s), bytes(h)) for p, s, h in body["files"])
            manifest = cls(
                str(body["version"]),
                str(body["board"]),
                str(body["mpy"]),
                str(body["min"]),
                files,
            )
        except (cbor2.CBORDecodeError, KeyError, TypeError, ValueError) as exc:
            raise InputError(f"bundle manifest unreadable: {exc}") from exc
        if body.get("v") != 1:
            raise InputError(f"bundle manifest version {body.get('v')!r} is not 1")
        if any(len(f.sha256) != 32 or f.size < 0 for f in files):
            raise InputError("bundle manifest: a file without a 32-byte SHA-256 or a size")
        return manifest


def manifest_id(manifest_bytes: bytes) -> str:
    """The bundle's name in the store and on the wire: the manifest's SHA-256, in hex."""
    return hashlib.sha256(manifest_bytes).hexdigest()


def offer_mac(key: bytes, manifest_bytes: bytes) -> bytes:
    """What a device checks before it downloads anything: the manifest under its own key."""
    return hmac.new(key, manifest_bytes, hashlib.sha256).digest()


def _fw_json(version: str, board: str, compiler: Compiler, paths: list[str]) -> bytes:
    # `/fw.json` of the installed version, as `daozhang flash` writes it (read by inspect).
    body = {"version": version, "board": board, "mpy": compiler.label, "files": sorted(paths)}
    return json.dumps(body, sort_keys=True).encode() + b"\n"


def make_bundle(version: str, board: str, compiler: Compiler, min_version: str) -> bytes:
    """Compile the agent for `board` with `compiler` and pack it."""
    if parse_version(min_version) > parse_version(version):
        raise UsageError(f"--min-version {min_version} is above --version {version}")
    compiled = build(board, compiler)
    files = [(f.remote, f.data) for f in compiled.files]
    files.append(("/fw.json", _fw_json(version, board, compiler, [p for p, _ in files])))
    manifest = Manifest(
        version,
        board,
        compiler.label,
        min_version,
        tuple(BundleFile(p, len(d), hashlib.sha256(d).digest()) for p, d in files),
    )
    head = manifest.encode()
    if len(head) > MAX_MANIFEST_BYTES:
        raise UsageError(f"the manifest takes {len(head)} bytes, over {MAX_MANIFEST_BYTES}")
    return _HEAD.pack(MAGIC, len(head)) + head + b"".join(d for _, d in files)


@dataclass(frozen=True)
class Bundle:
    manifest: Manifest
    manifest_bytes: bytes
    data: bytes  # the whole bundle file

    @property
    def payload_offset(self) -> int:
        return _HEAD.size + len(self.manifest_bytes)

    def file_data(self, index: int) -> bytes:
        start = self.payload_offset + sum(f.size for f in self.manifest.files[:index])
        return self.data[start : start + self.manifest.files[index].size]


def read_bundle(data: bytes, where: str = "bundle") -> Bundle:
    """A bundle checked whole: its header, manifest, length and every file's SHA-256."""
    if len(data) < _HEAD.size:
        raise InputError(f"{where}: not a daozhang bundle (too short)")
    magic, size = _HEAD.unpack_from(data)
    if magic != MAGIC:
        raise InputError(f"{where}: not a daozhang bundle (no {MAGIC.decode()} header)")
    if size > MAX_MANIFEST_BYTES or _HEAD.size + size > len(data):
        raise InputError(f"{where}: manifest length {size} does not fit")
    head = data[_HEAD.size : _HEAD.size + size]
    manifest = Manifest.decode(head)
    bundle = Bundle(manifest, head, data)
    if bundle.payload_offset + manifest.total_bytes != len(data):
        raise InputError(
            f"{where}: {len(data) - bundle.payload_offset} bytes of files,"
            f" the manifest says {manifest.total_bytes}"
        )
    for i, f in enumerate(manifest.files):
        if hashlib.sha256(bundle.file_data(i)).digest() != f.sha256:
            raise InputError(f"{where}: {f.path} does not match its SHA-256 in the manifest")
    return bundle
