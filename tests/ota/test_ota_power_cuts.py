"""Power cuts at every flash write of an update (DESIGN §1.6), on a real LittleFS2 image under
the real MicroPython, with the journal's power-cut harness (tests/fakes/flash.py: a block
device that logs every program and erase; tests/firmware/powercut.py does the same for the
journal). For each cut point the image is booted: the version chosen is the old one or the new
one, never a mix (the chosen slot's every file matches the manifest), the journal and config
are byte for byte as before, and the update, resumed from what is on flash, completes."""

from __future__ import annotations

import hashlib
import struct
from pathlib import Path

from daozhang.lab.mp.run import run_micropython
from daozhang.ota.bundle import MAGIC, BundleFile, Manifest, offer_mac, read_bundle

HERE = Path(__file__).resolve().parent
FAKES = HERE.parent / "fakes"
KEY = bytes(range(32))


def small_bundle() -> bytes:
    """A bundle of the real format with a few files of several chunks each (the real agent's
    63 KB would take ten times the cut points to the same end)."""
    files = [
        ("/main.py", b"# main\n" * 150),
        ("/lib/dzcore/ota/slots.mpy", bytes(range(256)) * 9),
        ("/lib/board.mpy", b"\x4d\x06" + bytes(1800)),
        ("/board.json", b'{"name": "virtual"}\n'),
        ("/fw.json", b'{"version": "0.2.0"}\n'),
    ]
    manifest = Manifest(
        "0.2.0",
        "virtual",
        "6.3",
        "0.1.0",
        tuple(BundleFile(p, len(d), hashlib.sha256(d).digest()) for p, d in files),
    ).encode()
    data = MAGIC + struct.pack(">I", len(manifest)) + manifest + b"".join(d for _, d in files)
    read_bundle(data)  # the real format
    return data


def otacut(work: Path, mode: str) -> list[list[str]]:
    script = work / "run_mp_otacut.py"
    script.write_text("import mp_otacut\nmp_otacut.main()\n")
    result = run_micropython(
        [str(script), mode, str(work)],
        heapsize="256K",
        extra_path=[FAKES, HERE],
        timeout=600,
        cwd=work,
    )
    out = result.stdout.decode()
    assert result.returncode == 0, out[-3000:] + result.stderr.decode()
    return [line.split() for line in out.splitlines() if line]


def test_a_power_cut_at_every_write_boots_old_or_new_never_a_mix(tmp_path: Path) -> None:
    bundle = small_bundle()
    (tmp_path / "bundle.bin").write_bytes(bundle)
    (tmp_path / "offer.mac").write_bytes(offer_mac(KEY, read_bundle(bundle).manifest_bytes))
    recorded = {row[0]: int(row[1]) for row in otacut(tmp_path, "record")}
    total, switch = recorded["T"], recorded["S"]
    assert switch <= total
    (tmp_path / "cuts.txt").write_text("".join(f"{k}\n" for k in range(1, total + 1)))
    rows = otacut(tmp_path, "replay")
    boots = {int(r[1]): r for r in rows if r[0] == "C"}
    verified = {int(r[1]): r[2] for r in rows if r[0] == "V"}
    others = {int(r[1]) for r in rows if r[0] == "J" and r[2] == rows_crc(rows)}
    ends = {int(r[1]): r for r in rows if r[0] == "E"}
    assert sorted(boots) == list(range(1, total + 1))
    olds = news = 0
    for k, (_, _, run, state, _) in boots.items():
        if run == "0":
            olds += 1
            assert k < switch + 1 or state != "trial", k  # the flashed version until the switch
        else:
            news += 1
            assert k >= switch, (k, switch)  # the new version only once the rename is on flash
            assert state == "trial" and verified[k] == "ok", (k, boots[k], verified.get(k))
        assert k in others, f"cut {k}: the journal or config changed"
        end = ends[k]
        assert end[2] == "a" and end[3] == "ok", (k, end)
    # Cuts fell both before and after the switch; the update resumed from the middle (not
    # from zero) after some of them.
    assert olds and news
    assert any(int(e[4]) > 0 for e in ends.values())
    print(f"OTA POWERCUT cuts={total} old={olds} new={news} switch_at={switch}")


def rows_crc(rows: list[list[str]]) -> str:
    """The journal and config checksum of the first boot (before any update write mattered)."""
    return next(r[2] for r in rows if r[0] == "J")
