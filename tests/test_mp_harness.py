"""The MicroPython harness fails a test that allocates past the heap cap, with its traceback."""

from __future__ import annotations

from pathlib import Path

from daozhang.lab.mp.run import run_micropython

TESTS = Path(__file__).parent
RUNNER = TESTS / "firmware" / "mp_runner.py"
SAMPLES = TESTS / "harness_samples"


def _run_sample(heapsize: str) -> tuple[int, str]:
    result = run_micropython(
        [str(RUNNER), "mp_sample_overalloc", "test_allocates_100k"],
        heapsize=heapsize,
        extra_path=[SAMPLES, TESTS / "firmware"],
    )
    return result.returncode, (result.stdout + result.stderr).decode()


def test_allocation_past_the_cap_fails_with_a_micropython_traceback() -> None:
    status, output = _run_sample("64K")
    assert status != 0
    assert "MemoryError" in output
    assert "Traceback" in output
    assert "MPTEST FAIL" in output


def test_same_test_passes_with_a_larger_cap() -> None:
    status, output = _run_sample("256K")
    assert status == 0, output
    assert "allocated 102400" in output


def test_firmware_main_does_nothing_at_import() -> None:
    result = run_micropython(["-c", "import main; print('imported')"])
    assert result.returncode == 0, result.stderr
    assert result.stdout.decode().strip() == "imported"
