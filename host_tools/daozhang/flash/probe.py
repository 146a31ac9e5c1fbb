"""What the host learns about a device before writing anything (one mpremote exec).

The probe runs inline (the device may hold no daozhang files yet) and reports the bytecode
version, the root filesystem type and size, the current config, the old manifest's file list,
and the SHA-256 of every file asked for plus every file of the old manifest.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from daozhang.flash.link import Port

_MARKER = "DZ-PROBE"
PROBE_TIMEOUT_S = 20.0  # mpremote itself waits forever on a port where nothing answers

# MicroPython code, run on the device by the probe and by the read-back after writing: the
# SHA-256 of a file, read in small pieces (a device has little RAM), None when it is missing.
_HASH = """
def _h(p):
    try:
        f = open(p, 'rb')
    except OSError:
        return None
    d = hashlib.sha256()
    b = bytearray(512)
    while True:
        n = f.readinto(b)
        if not n:
            break
        d.update(b[:n])
    f.close()
    return binascii.hexlify(d.digest()).decode()
"""

# `{paths}` is filled with a Python list literal of device paths.
_PROBE = (
    """
import sys, os, json, hashlib, binascii
"""
    + _HASH
    + """def _j(p):
    try:
        with open(p) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None
def _fs():
    try:
        import vfs
        for fs, point in vfs.mount():
            if point == '/':
                return type(fs).__name__
    except Exception:
        pass
    return 'unknown'
_st = os.statvfs('/')
_old = _j('/fw.json') or {{}}
_paths = {paths} + [p for p in _old.get('files', []) if isinstance(p, str)]
print('DZ-PROBE ' + json.dumps({{
    'mpy': getattr(sys.implementation, '_mpy', None),
    'version': '.'.join(str(x) for x in sys.implementation.version[:3]),
    'machine': getattr(sys.implementation, '_machine', sys.platform),
    'fs': _fs(), 'block': _st[0], 'blocks': _st[2], 'free_blocks': _st[3],
    'config': _j('/config.json'), 'old': _old,
    'hashes': dict((p, _h(p)) for p in _paths)}}))
"""
)

_VERIFY = (
    """
import json, hashlib, binascii
"""
    + _HASH
    + """print('DZ-VERIFY ' + json.dumps(dict((p, _h(p)) for p in {paths})))
"""
)


@dataclass
class Probe:
    mpy: int | None
    version: str
    machine: str
    fs: str
    block: int
    blocks: int
    free_blocks: int
    config: dict[str, Any] | None
    old_manifest: dict[str, Any]
    hashes: dict[str, str | None]

    @property
    def free_bytes(self) -> int:
        return self.block * self.free_blocks

    @property
    def size_bytes(self) -> int:
        return self.block * self.blocks

    @property
    def old_files(self) -> list[str]:
        files = self.old_manifest.get("files", [])
        return [f for f in files if isinstance(f, str)]


def probe(port: Port, paths: list[str]) -> Probe:
    data = port.exec_json(
        _PROBE.format(paths=json.dumps(paths)), _MARKER, timeout_s=PROBE_TIMEOUT_S
    )
    old = data.get("old")
    return Probe(
        mpy=data.get("mpy"),
        version=str(data.get("version")),
        machine=str(data.get("machine")),
        fs=str(data.get("fs")),
        block=int(data["block"]),
        blocks=int(data["blocks"]),
        free_blocks=int(data["free_blocks"]),
        config=data.get("config") if isinstance(data.get("config"), dict) else None,
        old_manifest=old if isinstance(old, dict) else {},
        hashes=dict(data.get("hashes") or {}),
    )


def read_hashes(port: Port, paths: list[str]) -> dict[str, str | None]:
    data: dict[str, str | None] = port.exec_json(
        _VERIFY.format(paths=json.dumps(paths)), "DZ-VERIFY"
    )
    return data
