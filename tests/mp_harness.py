"""Pytest plugin: firmware tests that run under the real `micropython` binary.

A file `tests/**/mp_test_*.py` is MicroPython code. Each top-level `def test_*()` in it becomes
one pytest item, run as `micropython -X heapsize=64K tests/firmware/mp_runner.py FILE TEST` with
`firmware/`, the board folder, `tests/fakes/` and the file's folder on the module path.
Decorators from `mptest` (read here with `ast`, never executed by CPython) adjust one test:

    @heap("256K")      a larger heap cap for this test
    @board("esp32-devkit")  the board folder on the path
    @timeout(600)      seconds before the run is killed
    @slow              marks the pytest item `slow`

A failure shows the MicroPython traceback and everything the test printed.
"""

from __future__ import annotations

import ast
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from daozhang.lab.mp.run import DEFAULT_HEAP, run_micropython

TESTS = Path(__file__).resolve().parent
RUNNER = TESTS / "firmware" / "mp_runner.py"
FAKES = TESTS / "fakes"
MP_HELPERS = TESTS / "firmware"


class MicroPythonTestFailed(Exception):
    def __init__(self, output: str) -> None:
        super().__init__(output)
        self.output = output


def _is_mp_test(file_path: Path) -> bool:
    return file_path.suffix == ".py" and file_path.name.startswith("mp_test_")


def pytest_collect_file(parent: pytest.Collector, file_path: Path) -> pytest.Collector | None:
    # A file named on the command line reaches pytest's Python collector, which asks
    # pytest_pycollect_makemodule below; collecting it here too would run it twice.
    if _is_mp_test(file_path) and not parent.session.isinitpath(file_path):
        return MicroPythonFile.from_parent(parent, path=file_path)
    return None


def pytest_pycollect_makemodule(module_path: Path, parent: pytest.Collector) -> Any:
    # Never import MicroPython test files into CPython, even when named explicitly.
    if _is_mp_test(module_path):
        return MicroPythonFile.from_parent(parent, path=module_path)
    return None


def _decorator_settings(func: ast.FunctionDef) -> dict[str, Any]:
    settings: dict[str, Any] = {"heap": DEFAULT_HEAP, "board": "virtual", "timeout": 120.0}
    for deco in func.decorator_list:
        if isinstance(deco, ast.Name) and deco.id == "slow":
            settings["slow"] = True
        elif (
            isinstance(deco, ast.Call)
            and isinstance(deco.func, ast.Name)
            and deco.func.id in ("heap", "board", "timeout")
            and len(deco.args) == 1
            and isinstance(deco.args[0], ast.Constant)
        ):
            settings[deco.func.id] = deco.args[0].value
    return settings


class MicroPythonFile(pytest.File):
    def collect(self) -> Iterator[pytest.Item]:
        tree = ast.parse(self.path.read_text(), filename=str(self.path))
        for node in tree.body:
            if isinstance(node, ast.FunctionDef) and node.name.startswith("test_"):
                settings = _decorator_settings(node)
                item = MicroPythonItem.from_parent(self, name=node.name, settings=settings)
                if settings.get("slow"):
                    item.add_marker(pytest.mark.slow)
                yield item


class MicroPythonItem(pytest.Item):
    def __init__(self, *, settings: dict[str, Any], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.settings = settings

    def runtest(self) -> None:
        tmp = self.config._tmp_path_factory.mktemp(self.name[:40])  # type: ignore[attr-defined]
        try:
            result = run_micropython(
                [str(RUNNER), self.path.stem, self.name],
                heapsize=str(self.settings["heap"]),
                board=str(self.settings["board"]),
                extra_path=[self.path.parent, FAKES, MP_HELPERS],
                env={"DZ_TMP": str(tmp)},
                timeout=float(self.settings["timeout"]),
                cwd=tmp,
            )
        except subprocess.TimeoutExpired as exc:
            out = (exc.stdout or b"").decode(errors="replace")
            raise MicroPythonTestFailed(
                f"timed out after {self.settings['timeout']} s\n{out}"
            ) from None
        output = result.stdout.decode(errors="replace") + result.stderr.decode(errors="replace")
        # Shown with -s or in the report, like print() output of a CPython test.
        print(output, end="")
        if result.returncode != 0 or "MPTEST PASS" not in output:
            raise MicroPythonTestFailed(output)

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> str:
        if isinstance(excinfo.value, MicroPythonTestFailed):
            heap = self.settings["heap"]
            return f"MicroPython test failed (heap {heap}):\n{excinfo.value.output}"
        return str(super().repr_failure(excinfo))

    def reportinfo(self) -> tuple[Path, int | None, str]:
        return self.path, None, f"micropython: {self.name}"
