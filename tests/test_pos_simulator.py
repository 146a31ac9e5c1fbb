"""The POS simulator as a library: transaction stream, frame codec, ledger, CLI errors.

The simulator against the real agent is in test_intake_process_kill.py and below
(test_pos_command_against_a_virtual_board).
"""

from __future__ import annotations

import itertools
import json
import re
from pathlib import Path

import cbor2
import pytest
from daozhang.cli import main as cli_main
from daozhang.lab.board.manager import VirtualBoard
from daozhang.lab.pos import Ledger, PosSimulator, TerminalLink, TransactionSource
from daozhang.lab.pos.ledger import natural_key
from daozhang.lab.pos.link import FrameDecoder, encode_frame
from daozhang.lab.pos.simulator import GaveUp
from daozhang.ports import wait_listening

from tests.fakes.nak_terminal import NakTerminal

TYPES = {"sale", "void", "refund", "preauth", "preauth_void", "preauth_done", "preauth_done_void"}
STATES = {
    "approved", "declined", "no_response", "reversal_pending", "reversed", "reversal_failed",
    "voided", "offline_pending", "offline_sent",
}  # fmt: skip


def test_transaction_stream_is_realistic_and_reproducible() -> None:
    first = list(itertools.islice(TransactionSource(seed=5), 400))
    again = list(itertools.islice(TransactionSource(seed=5), 400))
    assert first == again
    assert {r["typ"] for r in first} >= {"sale", "void", "refund", "preauth", "preauth_done"}
    assert {r["st"] for r in first} >= {"approved", "declined", "no_response", "reversed", "voided"}
    assert {r.get("ch", "card") for r in first} == {"card", "qr"}
    for r in first:
        assert r["typ"] in TYPES and r["st"] in STATES
        assert len(r["mid"]) == 15 and len(r["tid"]) == 8 and len(r["trc"]) == 6
        assert isinstance(r["amt"], int) and r["amt"] > 0
        if "pan" in r:
            assert re.fullmatch(r"\d{6}\*+\d{4}", r["pan"]), r["pan"]
        if r["st"] in ("approved", "declined"):
            assert "rrn" in r and len(r["rrn"]) == 12
        if r["st"] == "no_response":
            assert "rrn" not in r and "rc" not in r
        if r["typ"] in ("void", "refund", "preauth_done"):
            assert "orrn" in r and "otrc" in r
    # A timeout's reversal is a later state of the same natural key.
    keys = {}
    for r in first:
        keys.setdefault((r["bat"], r["trc"]), []).append(r["st"])
    assert ["no_response", "reversal_pending", "reversed"] in keys.values()


def test_full_pans_only_when_asked() -> None:
    stream = list(itertools.islice(TransactionSource(seed=5, full_pan_every=3), 200))
    full = [r["pan"] for r in stream if "pan" in r and r["pan"].isdigit()]
    assert full


def test_frame_decoder_skips_noise_and_reports_damaged_frames() -> None:
    good = encode_frame(b"A", cbor2.dumps({"id": 1, "seq": 5}))
    damaged = bytearray(encode_frame(b"A", cbor2.dumps({"id": 2, "seq": 6})))
    damaged[6] ^= 0xFF
    decoder = FrameDecoder()
    out = decoder.feed(b"xx" + good[:5])
    assert out == []
    out = decoder.feed(good[5:] + bytes(damaged) + good)
    assert out[0] == (b"A", cbor2.dumps({"id": 1, "seq": 5}))
    assert (b"!", b"crc") in out
    assert out[-1] == out[0]


def test_ledger_keeps_acks_and_finds_unanswered_receipts(tmp_path: Path) -> None:
    path = tmp_path / "ledger.jsonl"
    ledger = Ledger(path)
    bodies = list(itertools.islice(TransactionSource(seed=2, full_pan_every=1), 3))
    ledger.sent(1, bodies[0])
    ledger.acked(1, bodies[0], {"id": 1, "seq": 10, "epoch": 99})
    ledger.sent(2, bodies[1])
    ledger.refused(2, bodies[1], "schema:amt")
    ledger.sent(3, bodies[2])
    ledger.close()
    with path.open("a") as f:
        f.write('{"ev": "acked", "id": 3, "se')  # torn by a crash: never acked
    acked = Ledger.acked_entries(path)
    assert [(e.seq, e.epoch, e.st) for e in acked] == [(10, 99, bodies[0]["st"])]
    assert [i for i, _ in Ledger.unanswered(path)] == [3]
    text = path.read_text()
    for body in bodies:
        if "pan" in body and body["pan"].isdigit():
            assert body["pan"] not in text  # the ledger never holds a full PAN


def test_giving_up_says_what_the_terminal_answered_last() -> None:
    # A terminal whose journal stays full (it never gets to upload) keeps the POS resending;
    # when the POS gives up, the reason must be the NAK, not "no answer".
    body = next(iter(TransactionSource(seed=3)))
    with NakTerminal("full") as terminal:
        link = TerminalLink(f"tcp:127.0.0.1:{terminal.port}")
        sim = PosSimulator(link, None, ack_timeout_s=0.5, give_up_s=0.1, retry_delay_s=0.01)
        try:
            with pytest.raises(GaveUp) as caught:
                sim.send(body)
        finally:
            link.close()
    assert "NAK full (the terminal's journal is full)" in str(caught.value), caught.value
    assert sim.stats.naks == {"full": terminal.frames} and terminal.frames >= 1


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["pos", "--port", "tcp:127.0.0.1:notaport"], "expected tcp:HOST:PORT"),
        (["pos", "--port", "/nonexistent/tty"], "no such device"),
        (["pos", "--board", "nosuch"], "no running virtual board"),
        (["pos", "--port", "tcp:127.0.0.1:1", "--mid", "123"], "merchant id"),
    ],
)
def test_pos_command_reports_bad_options_in_one_line(
    argv: list[str],
    message: str,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("DAOZHANG_STATE", str(tmp_path))
    assert cli_main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("daozhang: ") and message in err, err


@pytest.mark.slow
def test_pos_command_against_a_virtual_board(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("DAOZHANG_STATE", str(tmp_path / "state"))
    vb = VirtualBoard.named("posb")
    vb.start(tmp_path / "posb.img", 1024 * 1024, heapsize="256K", autostart=True)
    try:
        assert vb.terminal_port is not None and wait_listening(vb.terminal_port, 20)
        ledger = tmp_path / "ledger.jsonl"
        argv = ["pos", "--board", "posb", "--count", "15", "--full-pan-every", "4"]
        assert cli_main([*argv, "--ledger", str(ledger)]) == 0
        out = capsys.readouterr().out
        assert out.count("ACK  seq=") == 15
        assert "15 acked (0 as repeats), 0 refused" in out
        events = [json.loads(line) for line in ledger.read_text().splitlines()]
        seqs = [e["seq"] for e in events if e["ev"] == "acked"]
        assert len(seqs) == 15 and seqs == sorted(set(seqs))

        # A second run, with and without the ledger, goes on where the terminal stopped:
        # never the first run's natural keys again, its clock never back in time.
        assert cli_main([*argv[:3], "--count", "5", "--ledger", str(ledger)]) == 0
        assert cli_main([*argv[:3], "--count", "5"]) == 0
        assert "5 acked (0 as repeats), 0 refused" in capsys.readouterr().out
        events = [json.loads(line) for line in ledger.read_text().splitlines()]
        bodies = [e["body"] for e in events if e["ev"] == "acked"]
        assert len({(natural_key(b), b["st"]) for b in bodies}) == len(bodies) == 20
        assert [b["lt"] for b in bodies] == sorted(b["lt"] for b in bodies)
        assert len({e["id"] for e in events if e["ev"] == "sent"}) == 20  # ids go on too
        kept = json.loads((vb.root / "pos.json").read_text())
        assert kept["898440358120001/12345678"]["trace"] > max(int(b["trc"]) for b in bodies)
    finally:
        vb.stop(power_cut=True)


@pytest.mark.slow
def test_pos_command_over_a_pty_like_a_serial_port(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # A real serial path: socat makes a pty whose other end is the board's terminal link,
    # as a USB-serial adapter wired to the POS main board would be.
    import subprocess
    import time

    monkeypatch.setenv("DAOZHANG_STATE", str(tmp_path / "state"))
    vb = VirtualBoard.named("ptyb")
    vb.start(tmp_path / "ptyb.img", 1024 * 1024, heapsize="256K", autostart=True)
    pty = tmp_path / "ttyPOS"
    socat = None
    try:
        assert vb.terminal_port is not None and wait_listening(vb.terminal_port, 20)
        socat = subprocess.Popen(
            [
                "socat",
                f"pty,link={pty},raw,echo=0",
                f"tcp:127.0.0.1:{vb.terminal_port},forever,interval=0.2",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while not pty.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert cli_main(["pos", "--port", str(pty), "--count", "5"]) == 0
        out = capsys.readouterr().out
        assert out.count("ACK  seq=") == 5, out
    finally:
        if socat is not None:
            socat.terminate()
            socat.wait(timeout=10)
        vb.stop(power_cut=True)
