"""firmware/manifest.py (what a board build freezes) names every module the flash tool writes
to /lib from firmware/, and nothing that is not there. Read with stand-ins for the package() and
module() of MicroPython's tools/manifestfile.py, as that tool reads it."""

from __future__ import annotations

from pathlib import Path

from daozhang.flash.build import device_paths
from daozhang.paths import FIRMWARE


def frozen_by_the_manifest() -> set[str]:
    frozen: set[str] = set()

    def package(name: str, files: object = None, base_path: str = ".", opt: object = None) -> None:
        assert files is None, "the manifest freezes whole packages"
        root = FIRMWARE / base_path / name
        assert root.is_dir(), f"package({name!r}): no folder {root}"
        frozen.update(p.relative_to(FIRMWARE).as_posix() for p in root.rglob("*.py"))

    def module(name: str, base_path: str = ".", opt: object = None) -> None:
        path = FIRMWARE / base_path / name
        assert path.is_file(), f"module({name!r}): no file {path}"
        frozen.add(path.relative_to(FIRMWARE).as_posix())

    source = (FIRMWARE / "manifest.py").read_text()
    exec(compile(source, "firmware/manifest.py", "exec"), {"package": package, "module": module})
    return frozen


def test_the_manifest_freezes_what_the_flash_tool_writes_to_lib() -> None:
    flashed = {
        path.removeprefix("/lib/").removesuffix(".mpy") + ".py"
        for path in device_paths("virtual")
        if path.startswith("/lib/")
    }
    board_files = {p.name for p in (FIRMWARE.parent / "boards" / "virtual").glob("*.py")}
    from_firmware = {name for name in flashed if name not in board_files}
    assert frozen_by_the_manifest() == from_firmware
    assert not any(Path(name).name == "main.py" for name in from_firmware)
