"""Run code under the real `micropython` binary with a capped heap and a chosen module path."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Sequence
from pathlib import Path

from daozhang.paths import BOARDS, FIRMWARE, micropython_binary

DEFAULT_HEAP = "64K"


def module_path(board: str = "virtual", extra: Sequence[Path] = ()) -> str:
    """MICROPYPATH for the portable core plus one board (and any extra folders first)."""
    # ".frozen" keeps the port's frozen modules (asyncio among them) importable.
    parts = [*(str(p) for p in extra), str(FIRMWARE), str(BOARDS / board), ".frozen"]
    return ":".join(parts)


def micropython_argv(heapsize: str = DEFAULT_HEAP) -> list[str]:
    return [micropython_binary(), "-X", f"heapsize={heapsize}"]


def run_micropython(
    args: Sequence[str],
    *,
    heapsize: str = DEFAULT_HEAP,
    board: str = "virtual",
    extra_path: Sequence[Path] = (),
    env: dict[str, str] | None = None,
    timeout: float = 120.0,
    cwd: Path | None = None,
    stdin: bytes | None = None,
) -> subprocess.CompletedProcess[bytes]:
    """Run `micropython -X heapsize=... ARGS` and return its exit status and output."""
    full_env = dict(os.environ)
    full_env["MICROPYPATH"] = module_path(board, extra_path)
    if env:
        full_env.update(env)
    return subprocess.run(
        [*micropython_argv(heapsize), *args],
        env=full_env,
        capture_output=True,
        timeout=timeout,
        cwd=cwd,
        input=stdin,
        check=False,
    )
