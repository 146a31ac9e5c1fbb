"""`daozhang scan-pan` throughput on journal-like data, against the least any scanner must do.

Data: a flash-image-like file of CBOR receipt records (masked PANs, merchant ids, RRNs),
erased 0xFF blocks and random bytes; one full PAN planted. Baselines in the same run:
(a) reading the file and hashing it (sha256), (b) one regex pass for 13-19 digit runs.
Usage: .venv/bin/python bench/scan_pan.py [MiB]
"""

from __future__ import annotations

import hashlib
import os
import random
import re
import sys
import tempfile
import time
from pathlib import Path

import cbor2
from daozhang.security.scan import scan


def make(path: Path, mib: int) -> None:
    rng = random.Random(1)
    chunks: list[bytes] = []
    size = 0
    n = 0
    while size < mib << 20:
        n += 1
        kind = n % 4
        if kind == 0:
            chunk = b"\xff" * 4096
        elif kind == 1:
            chunk = os.urandom(4096)
        else:
            recs = [
                cbor2.dumps(
                    {
                        "seq": n * 100 + i,
                        "k": "r",
                        "t": 1_780_000_000 + i,
                        "b": {
                            "mid": f"8983100481{rng.randrange(10**5):05d}",
                            "rrn": f"{rng.randrange(10**12):012d}",
                            "pan": f"622848******{rng.randrange(10**4):04d}",
                            "amt": rng.randrange(10**6),
                        },
                    }
                )
                for i in range(24)
            ]
            chunk = b"".join(recs)
        chunks.append(chunk)
        size += len(chunk)
    chunks.insert(len(chunks) // 2, b"pan=6228480402564890018;")
    path.write_bytes(b"".join(chunks))


def timed(action) -> float:  # type: ignore[no-untyped-def]
    start = time.perf_counter()
    action()
    return time.perf_counter() - start


def main() -> int:
    mib = int(sys.argv[1]) if len(sys.argv) > 1 else 64
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "image.bin"
        make(path, mib)
        size = path.stat().st_size / (1 << 20)
        t_hash = timed(lambda: hashlib.sha256(path.read_bytes()).digest())
        digits = re.compile(rb"[0-9]{13,19}")
        t_regex = timed(lambda: sum(1 for _ in digits.finditer(path.read_bytes())))
        found: list[int] = []
        t_scan = timed(lambda: found.append(len(scan([path]).findings)))
    assert found == [1], found
    print(f"{size:.0f} MiB: scan-pan {t_scan:.2f} s ({size / t_scan:.0f} MiB/s)")
    print(f"  read+sha256 {t_hash:.2f} s: scan is {t_scan / t_hash:.2f}x")
    print(f"  one digit-run regex {t_regex:.2f} s: scan is {t_scan / t_regex:.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
