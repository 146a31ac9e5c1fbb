"""Flash wear of the diagnostics: erases per simulated hour, daozhang's diag policy against
committing every diagnostic record, on the real journal over LittleFS2 on the virtual board's
file-backed flash (it counts erases). A day of diagnostics per run: signal every 15 min, a
probe every hour, an outage every 2 hours; once idle (no receipts) and once busy.

    .venv/bin/python bench/diag_wear.py
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from daozhang.lab.mp.run import micropython_argv, module_path  # noqa: E402

HOURS = 24


def run(policy: str, per_hour: int) -> tuple[float, float]:
    with tempfile.TemporaryDirectory(prefix="dz-wear-") as tmp:
        image = Path(tmp) / "flash.img"
        image.write_bytes(b"\xff" * (4 << 20))
        env = {**os.environ, "MICROPYPATH": module_path("virtual", [REPO / "tests" / "fakes"])}
        out = subprocess.run(
            [
                *micropython_argv("256K"),
                str(REPO / "bench" / "mp_diag_wear.py"),
                str(image),
                policy,
                str(per_hour),
                str(HOURS),
            ],
            env=env,
            capture_output=True,
            timeout=600,
            check=False,
        )
        text = out.stdout.decode() + out.stderr.decode()
        line = next((x for x in text.splitlines() if x.startswith("WEAR")), None)
        if line is None:
            raise SystemExit(text)
        erases, written = (int(x) for x in line.split()[1:3])
        return erases / HOURS, written / HOURS


def main() -> int:
    print(f"{HOURS} simulated hours per run; erases and bytes programmed per hour")
    for per_hour in (0, 60):
        ours = run("daozhang", per_hour)
        each = run("each", per_hour)
        print(
            f"receipts/h {per_hour:3d}: daozhang {ours[0]:6.1f} erases/h {ours[1]:8.0f} B/h"
            f" | commit each diag {each[0]:6.1f} erases/h {each[1]:8.0f} B/h"
            f" | {each[0] / max(ours[0], 0.01):.2f}x fewer erases"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
