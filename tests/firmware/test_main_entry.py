"""A real board runs /main.py at power-on as the script `__main__`: the agent must start then,
while importing main (the virtual board's vboot.py, tests) starts nothing. (Before, main.py
only defined main(): a flashed real board would have sat idle.)"""

from __future__ import annotations

import os
import subprocess

from daozhang.lab.mp.run import micropython_argv
from daozhang.paths import FIRMWARE

# No board folder on the path: a started agent stops at once, looking for its board.
PATH = f"{FIRMWARE}:.frozen"


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*micropython_argv("256K"), *args],
        env={**os.environ, "MICROPYPATH": PATH},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_main_py_run_as_a_script_starts_the_agent() -> None:
    run = _run(str(FIRMWARE / "main.py"))
    assert "no module named 'board'" in run.stdout + run.stderr  # main() ran and wanted its board


def test_importing_main_starts_nothing() -> None:
    run = _run("-c", "import main; print('imported')")
    assert run.returncode == 0 and run.stdout.strip() == "imported", run.stdout + run.stderr
