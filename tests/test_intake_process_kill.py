"""Process kills during intake: a virtual board SIGKILLed at random moments, again and again.

The agent autostarts on a virtual board (real MicroPython, LittleFS image); the POS simulator
sends receipts over the terminal link and resends what it saw no ACK for. After 50+ kills and
restarts on the same image, the journal read back from the image must hold every receipt the
POS was ACKed, exactly once, under the seq it was told; and no receipt state twice.
"""

from __future__ import annotations

import json
import os
import random
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from daozhang.lab.board.manager import VirtualBoard
from daozhang.lab.mp.run import run_micropython
from daozhang.lab.pos import Ledger, PosSimulator, TerminalLink, TransactionSource
from daozhang.lab.pos.ledger import natural_key
from daozhang.ports import wait_listening

HERE = Path(__file__).resolve().parent
# Room for about 14,000 receipts. The agent has no uplink here, so nothing ever leaves the
# journal: a run sends 3,000-4,000 receipts (12 runs on 2026-12-06: 3,500-3,986), more than the
# about 3,470 that 1 MiB holds, where the POS then gave up on "NAK full".
FLASH = 4 * 1024 * 1024
KILLS = 50
# The agent runs from source on the board (compiled at boot): more than 64K on the 64-bit
# unix port, see test_journal_power_cuts.py.
HEAP = "256K"


@pytest.fixture
def board(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[VirtualBoard]:
    monkeypatch.setenv("DAOZHANG_STATE", str(tmp_path / "state"))
    vb = VirtualBoard.named("pk")
    try:
        yield vb
    finally:
        vb.stop(power_cut=True)


class ConsoleTap:
    """What the board prints on its console, kept for a failure message: without a reader the
    console drops it, like a UART, and an agent's traceback would be lost."""

    def __init__(self) -> None:
        self.out = bytearray()
        self.lock = threading.Lock()

    def attach(self, tty: Path, label: str) -> None:
        with self.lock:
            self.out += f"\n--- {label} ---\n".encode()
        fd = os.open(tty, os.O_RDONLY | os.O_NOCTTY)
        threading.Thread(target=self._read, args=(fd,), daemon=True).start()

    def _read(self, fd: int) -> None:
        try:
            while data := os.read(fd, 4096):
                with self.lock:
                    self.out += data
                    del self.out[:-20_000]
        except OSError:
            pass  # EIO: the board and its relay are gone (a power cut)
        finally:
            os.close(fd)

    def tail(self, size: int = 4000) -> str:
        with self.lock:
            return self.out[-size:].decode(errors="replace")


def power_on(vb: VirtualBoard, image: Path, tap: ConsoleTap | None = None) -> None:
    vb.start(image, FLASH, heapsize=HEAP, autostart=True)
    if tap is not None:
        tap.attach(vb.tty, f"power-on at {time.strftime('%H:%M:%S')}")
    port = vb.terminal_port
    assert port is not None
    assert wait_listening(port, timeout_s=20), (vb.root / "board.log").read_text()


def read_journal(image: Path) -> list[dict[str, Any]]:
    result = run_micropython(
        [str(HERE / "firmware" / "dump_journal.py"), str(image), str(FLASH // 4096)],
        heapsize="256K",
        extra_path=[HERE / "firmware"],
        timeout=120,
    )
    out = result.stdout.decode()
    assert result.returncode == 0, out + result.stderr.decode()
    return [json.loads(line) for line in out.splitlines() if line.startswith("{")]


@pytest.mark.slow
def test_sigkill_during_intake_loses_and_duplicates_nothing(
    board: VirtualBoard, tmp_path: Path
) -> None:
    image = tmp_path / "pk.img"
    tap = ConsoleTap()
    power_on(board, image, tap)
    port = board.terminal_port
    ledger = Ledger(tmp_path / "ledger.jsonl")
    link = TerminalLink(f"tcp:127.0.0.1:{port}")
    sim = PosSimulator(link, ledger, ack_timeout_s=1.0, give_up_s=60.0, retry_delay_s=0.05)
    stop = threading.Event()
    failure: list[BaseException] = []

    def pos() -> None:
        try:
            for body in TransactionSource(seed=42, full_pan_every=7):
                if stop.is_set():
                    return
                sim.send(body)
        except BaseException as exc:  # reported by the main thread
            failure.append(exc)

    thread = threading.Thread(target=pos, daemon=True)
    thread.start()
    rng = random.Random(7)
    kills = 0
    try:
        while kills < KILLS and not failure:
            time.sleep(rng.uniform(0.05, 0.6))  # at a random moment of the POS's traffic
            board.stop(power_cut=True)  # SIGKILL: no chance to flush anything more
            kills += 1
            power_on(board, image, tap)
    finally:
        stop.set()
        thread.join(timeout=90)
        link.close()
        ledger.close()
    assert not failure, f"{failure}; the board's console:{tap.tail()}"
    assert not thread.is_alive()
    board.stop(power_cut=True)

    acked = Ledger.acked_entries(ledger.path)
    records = read_journal(image)
    head, rows = records[0], records[1:]
    receipts = [r for r in rows if r.get("k") == "r"]
    stored: dict[tuple[Any, ...], list[int]] = {}
    for r in receipts:
        stored.setdefault((*natural_key(r["b"]), r["b"]["st"]), []).append(r["seq"])
    lost = [e for e in acked if e.seq not in stored.get((*e.key, e.st), [])]
    duplicated = {k: seqs for k, seqs in stored.items() if len(seqs) > 1}
    epochs = Counter(e.epoch for e in acked)
    print(
        f"kills={kills} acked={len(acked)} repeats_acked={sum(e.dup for e in acked)} "
        f"stored={len(receipts)} lost={len(lost)} duplicated={len(duplicated)} "
        f"resends={sim.stats.resends} reconnects={sim.stats.reconnects}"
    )
    assert kills >= KILLS
    assert len(acked) > KILLS  # intake went on between the kills
    assert lost == []
    assert duplicated == {}
    assert list(epochs) == [head["epoch"]]  # one journal, one epoch, across every power-on
    assert head["lost"] == 0
    assert not any("gap" in r for r in rows)
    # Every stored receipt was ACKed (the POS finished its last one before it stopped).
    assert {(*e.key, e.st) for e in acked} == set(stored)
    # Full PANs the POS sent were masked before they reached flash.
    assert all("*" in r["b"]["pan"] for r in receipts if "pan" in r["b"])
