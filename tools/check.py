"""`./run check`: lint and type-check everything in one command.

- ruff (lint and format) on host_tools/, tests/, bench/, tools/, firmware/, boards/;
- mypy --strict on host_tools/;
- the host package's import layers (tools/import_layers.py: imports run down, the product
  never imports the test lab);
- mypy on firmware/ plus one board at a time, against that board's MicroPython stub set
  (board.json "stubs": unix, esp32, or a local stub folder such as boards/cat1-quecpython/stubs),
  with boards/contract.py: the board's `Board` must hold to the board contract's Protocol.
Exit status is non-zero if any step fails; every step runs so all problems show at once.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
PY_DIRS = ["host_tools", "tests", "bench", "tools", "firmware", "boards"]
CONTRACT = REPO / "boards" / "contract.py"  # the Protocol every board is checked against


def step(title: str, argv: list[str], env: dict[str, str] | None = None) -> bool:
    print(f"== {title}", flush=True)
    result = subprocess.run(argv, cwd=REPO, env={**os.environ, **(env or {})}, check=False)
    print(f"   {'ok' if result.returncode == 0 else 'FAILED'}", flush=True)
    return result.returncode == 0


def board_runs() -> list[tuple[str, Path, list[Path]]]:
    runs = []
    for board_json in sorted((REPO / "boards").glob("*/board.json")):
        board = board_json.parent
        spec = json.loads(board_json.read_text())
        stub_set = spec["stubs"]
        typeshed = (
            REPO / ".stubs" / stub_set.get("base", "unix")
            if isinstance(stub_set, dict)
            else REPO / ".stubs" / stub_set
        )
        extra = [board / stub_set["local"]] if isinstance(stub_set, dict) else []
        runs.append((board.name, typeshed, [*extra, typeshed]))
    return runs


def main() -> int:
    ok = True
    ok &= step("ruff check", [str(BIN / "ruff"), "check", *PY_DIRS])
    ok &= step("ruff format --check", [str(BIN / "ruff"), "format", "--check", *PY_DIRS])
    ok &= step("mypy --strict host_tools", [str(BIN / "mypy")])
    ok &= step("import layers", [sys.executable, str(REPO / "tools" / "import_layers.py")])
    for board, typeshed, stub_path in board_runs():
        board_dir = REPO / "boards" / board
        if not (board_dir / "board.py").is_file():
            # The core imports `board`; without an adapter there is nothing to check it against.
            print(f"== boards/{board}: no adapter (board.py) yet; not checked", flush=True)
            continue
        targets = ["firmware", str(board_dir), str(CONTRACT)]
        mypy_path = ":".join(
            str(p) for p in [*stub_path, REPO / "firmware", REPO / "boards" / board]
        )
        ok &= step(
            f"mypy firmware + boards/{board} against {typeshed.name} stubs",
            [
                str(BIN / "mypy"),
                "--config-file",
                str(REPO / "tools" / "mypy-firmware.ini"),
                "--custom-typeshed-dir",
                str(typeshed),
                *targets,
            ],
            env={"MYPYPATH": mypy_path},
        )
    print("check passed" if ok else "check FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
