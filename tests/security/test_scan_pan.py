"""`daozhang scan-pan`: planted card numbers are found (masked) in every kind of artefact."""

from __future__ import annotations

import os
import random
import sqlite3
from pathlib import Path

import cbor2
import pytest
from daozhang.cli import main
from daozhang.security.pan import is_full_pan, luhn_ok, mask, scan_bytes
from daozhang.security.scan import scan

VISA = "4111111111111111"
UNIONPAY = "6228480402564890018"  # 19 digits, Luhn-valid
AMEX = "378282246310005"


def _luhn_complete(prefix: str) -> str:
    for check in "0123456789":
        if luhn_ok(prefix + check):
            return prefix + check
    raise AssertionError


def test_luhn_and_mask():
    assert all(is_full_pan(p) for p in (VISA, UNIONPAY, AMEX))
    assert not is_full_pan("4111111111111112")  # Luhn fails
    assert not is_full_pan(_luhn_complete("811111111111111"))  # starts with 8
    assert not is_full_pan(_luhn_complete("41111111111"))  # 12 digits
    assert mask(UNIONPAY) == "622848*********0018"
    assert mask("4111-1111-1111-1111") == "411111******1111"


def test_finds_plain_grouped_and_track_data_with_offsets():
    # No digits in the noise: one glued to the first PAN would make it another run (about one
    # run in 25 failed so while the noise kept every digit but 4).
    noise = os.urandom(100).translate(None, b"0123456789")
    data = (
        noise
        + VISA.encode()
        + b" and "
        + b"4111 1111 1111 1111"
        + b"|;"
        + UNIONPAY.encode()
        + b"=25121010000012300000?"
        + b"%B"
        + AMEX.encode()
        + b"^ZHANG/SAN^2512101"
    )
    found = list(scan_bytes(data))
    kinds = [(f.kind, f.offset) for f in found]
    assert kinds[0] == ("pan", len(noise))
    assert [k for k, _ in kinds] == ["pan", "pan", "track2", "track1"]
    assert all(VISA not in f.masked and UNIONPAY not in f.masked for f in found)


def test_ids_masked_pans_and_longer_runs_are_not_findings():
    mid = _luhn_complete("40231005812345")  # a 15-digit merchant id that passes Luhn
    data = b"".join(
        [
            b'{"mid": "' + mid.encode() + b'", "pan": "622848******1234"}',
            b"\n" + (VISA + "12345").encode(),  # 21 digits: not a 13-19 digit run
            b"\n" + cbor2.dumps({"mid": mid, "rrn": "123456789012"}),
            b"\n" + b"ts=1763780000123",  # 13 digits, starts with 1
        ]
    )
    assert list(scan_bytes(data)) == []
    assert [f.masked for f in scan_bytes(b"note " + mid.encode())] == [mask(mid)]
    assert list(scan_bytes(b"note " + mid.encode(), known={mid})) == []


def test_cbor_journal_record_with_a_full_pan_is_found():
    record = cbor2.dumps({"seq": 7, "k": "r", "b": {"mid": "898440358120001", "pan": VISA}})
    (finding,) = scan_bytes(b"\xff" * 64 + record)
    assert finding.masked == "411111******1111"


def _planted_image(path: Path, offset: int) -> None:
    """A flash image: erased blocks (0xFF), random-looking data, and a deleted record in a
    free block that LittleFS would never show through the filesystem."""
    rng = random.Random(7)
    image = bytearray(b"\xff" * 256 * 1024)
    image[4096:8192] = bytes(rng.getrandbits(8) for _ in range(4096)).replace(b"4", b"x")
    stale = cbor2.dumps({"k": "r", "b": {"pan": UNIONPAY, "amt": 1200}})
    image[offset : offset + len(stale)] = stale
    path.write_bytes(bytes(image))


def test_cli_on_a_folder_of_artefacts(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    clean = tmp_path / "clean"
    clean.mkdir()
    (clean / "report.json").write_text('{"pan": "622848******0018", "mid": "898440358120001"}')
    assert main(["scan-pan", str(clean)]) == 0

    dirty = tmp_path / "dirty"
    dirty.mkdir()
    _planted_image(dirty / "board.img", 200_003)
    (dirty / "collector.log").write_text("2026-11-22 ok\nrejected card 4111-1111-1111-1111\n")
    assert main(["scan-pan", str(clean), str(dirty)]) == 1
    out = capsys.readouterr().out
    assert f"{dirty / 'board.img'}:" in out and "622848*********0018" in out
    assert "collector.log:" in out and "411111******1111" in out
    assert UNIONPAY not in out and VISA not in out and "4111-1111-1111-1111" not in out
    offset = int(out.split(f"{dirty / 'board.img'}:")[1].split(":")[0])
    assert UNIONPAY.encode() == (dirty / "board.img").read_bytes()[offset : offset + 19]


def test_sqlite_cells_free_pages_and_known_id_columns(tmp_path: Path):
    path = tmp_path / "store.db"
    db = sqlite3.connect(path)
    mid = _luhn_complete("40231005812345")
    db.execute("CREATE TABLE receipts (mid TEXT, tid TEXT, pan TEXT, body TEXT)")
    db.execute("INSERT INTO receipts VALUES (?, '12345678', '622848******0018', '{}')", (mid,))
    # A PAN glued to digits of the previous cell in the raw page: only the cell pass sees it.
    db.execute("INSERT INTO receipts VALUES (?, '1', ?, 'x')", (mid, VISA))
    db.commit()
    report = scan([path])
    assert [f.where for _, f in report.findings] == ["receipts.pan rowid 2"]

    db.execute("DELETE FROM receipts WHERE rowid = 2")
    db.execute("INSERT INTO receipts VALUES (?, '1', 'x', ?)", (mid, "note " + AMEX))
    db.commit()
    db.execute("DELETE FROM receipts WHERE rowid = 3")
    db.commit()
    db.close()
    # Deleted rows stay in free pages until vacuumed: the raw pass finds them.
    masked = {f.masked for _, f in scan([path]).findings}
    assert mask(AMEX) in masked or mask(VISA) in masked


def test_postgres_dump_copy_blocks(tmp_path: Path):
    mid = _luhn_complete("40231005812345")
    dump = tmp_path / "dump.sql"
    dump.write_text(
        "COPY public.receipts (dev, mid, tid, pan) FROM stdin;\n"
        f"dev1\t{mid}\t12345678\t622848******0018\n"
        "\\.\n"
        f"-- {mid} is only an id; this comment mentions it again\n"
    )
    assert scan([dump]).findings == []
    dump.write_text(dump.read_text() + f"INSERT INTO x VALUES ('{UNIONPAY}');\n")
    (finding,) = [f for _, f in scan([dump]).findings]
    assert finding.masked == mask(UNIONPAY)


def test_missing_path_is_a_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    assert main(["scan-pan", str(tmp_path / "nope")]) == 2
    assert "no such file or directory" in capsys.readouterr().err


def test_every_offset_including_chunk_cuts_and_file_ends(monkeypatch: pytest.MonkeyPatch):
    from daozhang.security import pan

    monkeypatch.setattr(pan, "_CHUNK", 1000)  # many chunk cuts in a small buffer
    filler = b"\xff" * 5000
    for offset in (0, 1, 990, 995, 999, 1000, 1001, 2500, 5000 - 16):
        data = bytearray(filler)
        data[offset : offset + 16] = VISA.encode()
        found = list(scan_bytes(bytes(data)))
        assert [(f.offset, f.masked) for f in found] == [(offset, mask(VISA))], offset
    # Track 2 data across a cut, and a grouped PAN right at the end.
    data = bytearray(filler)
    track = b";" + UNIONPAY.encode() + b"=25121010000012300000?"
    data[980 : 980 + len(track)] = track
    data += b" 4111 1111 1111 1111"
    assert [f.kind for f in scan_bytes(bytes(data))] == ["track2", "pan"]


def test_a_luhn_valid_timestamp_in_a_fixed_width_file_is_not_a_pan():
    # ACQ02's clearing rows carry the local time as YYYYMMDDhhmmss with no column names;
    # one such time in ten passes Luhn (this one does), and no card brand's numbers start
    # with 20: nor do merchants' order numbers led by a date (the collector stores them).
    row = b"D 20261120 898440050000001 10000001 20261119093007 SALE C 000001"
    assert luhn_ok("20261119093007")
    assert list(scan_bytes(row)) == []
    order = b'"ord": "WX20250107130000001"'
    assert luhn_ok("20250107130000001") and list(scan_bytes(order)) == []
    # Mastercard's 2-series (2221-2720) is a card number.
    two_series = _luhn_complete("222100000000001")
    assert [f.masked for f in scan_bytes(b"x " + two_series.encode())] == [mask(two_series)]


def test_a_short_cell_glued_to_a_known_id_in_a_raw_page_is_not_a_pan(tmp_path: Path):
    # The chaos run's database: rc "51" then rrn "51000000xxxx" are written back to back in
    # the record, a 14-digit run that one time in ten passes Luhn. rrn is an id column.
    rrn = next(r for r in (f"5100000{i:05d}" for i in range(100)) if is_full_pan("51" + r))
    path = tmp_path / "store.db"
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE receipts (st TEXT, rc TEXT, rrn TEXT, note TEXT)")
    db.execute("INSERT INTO receipts VALUES ('declined', '51', ?, 'x')", (rrn,))
    db.commit()
    assert ("51" + rrn).encode() in path.read_bytes()
    assert scan([path]).findings == []
    # Without the id column to learn from, the same bytes are a finding (the rule is narrow).
    assert [f.masked for f in scan_bytes(path.read_bytes())] == [mask("51" + rrn)]
    # A real PAN in a cell next to it is still found.
    db.execute("INSERT INTO receipts VALUES ('declined', '51', ?, ?)", (rrn, "card " + VISA))
    db.commit()
    db.close()
    assert {f.masked for _, f in scan([path]).findings} == {mask(VISA)}


def test_digits_inside_a_hex_key_are_not_a_pan_but_a_pan_beside_cbor_keys_is():
    # Seen in a chaos run: a device's HMAC key in /config.json, whose 13 decimal digits in a
    # row pass Luhn and start like a card number (here "4156081930915", a Visa-like run).
    config = b'{"dev": "dz0008", "key": "a893cbae46b1904383c6a7ad6092a45bbe4156081930915b9bf9d92"}'
    assert is_full_pan("4156081930915")
    assert list(scan_bytes(config)) == []
    # The same run with too little hex around it to be a key is still reported ...
    assert [f.masked for f in scan_bytes(b'{"x": "be4156081930915b9"}')] == ["415608***0915"]
    # ... and so is a PAN in a CBOR map, whose neighbours include the hex-letter byte `c`.
    record = cbor2.dumps({"pan": "4111111111111111", "tid": "10000001", "cur": "abcdef"})
    assert [f.masked for f in scan_bytes(record)] == ["411111******1111"]


def test_a_long_digit_run_cut_by_a_scan_window_is_not_a_pan():
    # Seen in a chaos run's database: an index page glues mid, tid, batch and trace into one
    # 35-digit run, whose last 13 digits pass Luhn. A nearby candidate that needs the full
    # regexes (here a spaced number) opened a window starting inside the run.
    glued = b"89844120000000610000006000001000003"
    assert is_full_pan(glued[-13:].decode())
    # The window opens 64 bytes before the candidate: 13 digits before the run's end.
    page = b"\x01" * 100 + glued + b"O" * 51 + b"1234 5678 9012 3456 7" + b"\x00" * 40
    assert list(scan_bytes(page)) == []
