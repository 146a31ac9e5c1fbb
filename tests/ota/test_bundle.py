"""`daozhang ota build`: the bundle holds the compiled agent `flash` writes, a manifest a device
can read with its own CBOR decoder, and every file's SHA-256; damage is found (DESIGN §1.6)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from daozhang.cli import main as cli_main
from daozhang.errors import InputError, UsageError
from daozhang.flash.build import build, compilers
from daozhang.lab.mp.run import run_micropython
from daozhang.ota.bundle import (
    Manifest,
    make_bundle,
    manifest_id,
    offer_mac,
    parse_version,
    read_bundle,
)


@pytest.fixture(scope="module")
def bundle_bytes() -> bytes:
    return make_bundle("0.2.0", "virtual", compilers()[0], "0.1.0")


def test_the_bundle_is_the_flash_build_with_its_manifest(bundle_bytes: bytes) -> None:
    compiler = compilers()[0]
    bundle = read_bundle(bundle_bytes)
    m = bundle.manifest
    assert (m.version, m.board, m.mpy, m.min_version) == (
        "0.2.0",
        "virtual",
        compiler.label,
        "0.1.0",
    )
    flashed = {f.remote: f.data for f in build("virtual", compiler).files}
    packed = {f.path: bundle.file_data(i) for i, f in enumerate(m.files)}
    fw = json.loads(packed.pop("/fw.json"))
    assert packed == flashed  # byte for byte what `daozhang flash` writes
    assert fw["version"] == "0.2.0" and fw["board"] == "virtual"
    assert sorted(fw["files"]) == sorted(flashed)
    assert "/main.py" in packed and any(p.endswith(".mpy") for p in packed)
    for i, f in enumerate(m.files):
        assert f.size == len(bundle.file_data(i))
        assert f.sha256 == hashlib.sha256(bundle.file_data(i)).digest()
    # The same sources give the same bundle (canonical manifest, stable compiler output).
    assert make_bundle("0.2.0", "virtual", compiler, "0.1.0") == bundle_bytes


def test_every_damage_is_found(bundle_bytes: bytes) -> None:
    bundle = read_bundle(bundle_bytes)
    last = bytearray(bundle_bytes)
    last[-1] ^= 0x01
    with pytest.raises(InputError, match="does not match its SHA-256"):
        read_bundle(bytes(last))
    with pytest.raises(InputError, match="bytes of files"):
        read_bundle(bundle_bytes[:-1])
    with pytest.raises(InputError, match="bytes of files"):
        read_bundle(bundle_bytes + b"\0")
    with pytest.raises(InputError, match="no DZB1 header"):
        read_bundle(b"PK" + bundle_bytes[2:])
    with pytest.raises(InputError, match="too short"):
        read_bundle(b"DZ")
    head = bytearray(bundle_bytes)
    head[bundle_bytes.index(bundle.manifest.files[3].sha256)] ^= 0x01  # a hash in the manifest
    with pytest.raises(InputError, match="does not match its SHA-256"):
        read_bundle(bytes(head))


def test_the_offer_mac_is_per_device(bundle_bytes: bytes) -> None:
    manifest = read_bundle(bundle_bytes).manifest_bytes
    a, b = offer_mac(b"k" * 32, manifest), offer_mac(b"j" * 32, manifest)
    assert len(a) == 32 and a != b
    assert manifest_id(manifest) == hashlib.sha256(manifest).hexdigest()
    assert Manifest.decode(manifest).encode() == manifest


def test_the_device_reads_the_manifest_with_its_own_decoder(bundle_bytes: bytes) -> None:
    bundle = read_bundle(bundle_bytes)
    script = (
        "import binascii\nfrom dzcore import cbor\n"
        f"m = cbor.decode(binascii.unhexlify({bundle.manifest_bytes.hex()!r}))\n"
        "print(m['version'], m['board'], m['mpy'], m['min'], len(m['files']))\n"
        "p, s, h = m['files'][0]\nprint(p, s, binascii.hexlify(h).decode())\n"
    )
    result = run_micropython(["-c", script])
    assert result.returncode == 0, result.stderr.decode()
    first = bundle.manifest.files[0]
    m = bundle.manifest
    assert result.stdout.decode().splitlines() == [
        f"{m.version} {m.board} {m.mpy} {m.min_version} {len(m.files)}",
        f"{first.path} {first.size} {first.sha256.hex()}",
    ]


def test_versions_are_three_numbers() -> None:
    assert parse_version("0.2.0") == (0, 2, 0)
    assert parse_version("10.0.12") > parse_version("9.9.99")
    for bad in ("1.2", "1.2.3.4", "v1.2.3", "01.2.3", "1.2.x", "", "1.2.3 "):
        with pytest.raises(UsageError):
            parse_version(bad)


def test_ota_build_writes_the_bundle_and_refuses_bad_input(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "agent-0.2.0.dzb"
    argv = ["ota", "build", "--version", "0.2.0", "--board", "virtual", "--out", str(out)]
    assert cli_main(argv) == 0
    said = capsys.readouterr().out
    assert "版本 version 0.2.0" in said and "板型 board virtual" in said
    assert read_bundle(out.read_bytes()).manifest.version == "0.2.0"
    assert [p.name for p in tmp_path.iterdir()] == [out.name]  # no temporary file left
    cases = [
        (["--version", "0.2"], "expected MAJOR.MINOR.PATCH"),
        (["--version", "0.2.0", "--min-version", "0.3.0"], "above --version"),
        (["--version", "0.2.0", "--board", "nope"], "nope"),
        (["--version", "0.2.0", "--mpy", "9.9"], "--mpy 9.9: no installed mpy-cross"),
        (["--version", "0.2.0", "--mpy", "5.0"], "--mpy 5.0: the agent needs .mpy v6"),
    ]
    for extra, message in cases:
        status = cli_main(["ota", "build", "--board", "virtual", *extra, "--out", str(out)])
        err = capsys.readouterr().err
        assert status == 2 and message in err, (extra, err)
    missing = tmp_path / "no" / "x.dzb"
    status = cli_main(["ota", "build", "--version", "0.2.0", "--out", str(missing)])
    assert status == 2 and "does not exist" in capsys.readouterr().err
