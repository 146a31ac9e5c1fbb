"""The Jepsen-style checker on constructed histories: each outcome is produced and counted."""

from __future__ import annotations

from pathlib import Path

import cbor2
import pytest
from daozhang.collector.ingest import ingest_batch
from daozhang.errors import InputError
from daozhang.lab.fleet.invariants import (
    Sent,
    Stored,
    check,
    read_truth,
    render,
    stored_receipts,
    write_truth,
)
from daozhang.schema import open_database


def key(trc: int, st: str = "approved") -> tuple[str, str, str, str, str]:
    return ("898440358120001", "10000001", "000001", f"{trc:06d}", st)


def sent(
    dev: str,
    trc: int,
    outcome: str = "acked",
    seq: int | None = None,
    amt: int = 100,
    st: str = "approved",
) -> Sent:
    return Sent(dev, key(trc, st), amt, outcome, seq if seq is not None else trc)


def stored(
    dev: str, trc: int, seq: int | None = None, amt: int = 100, st: str = "approved"
) -> Stored:
    return Stored(dev, 7, seq if seq is not None else trc, key(trc, st), amt)


def test_a_clean_history_is_valid() -> None:
    truth = [sent("dz01", i) for i in range(1, 6)]
    result = check(truth, [stored("dz01", i) for i in range(1, 6)])
    assert result.valid
    (dev,) = result.devices
    assert (dev.sent, dev.acked, dev.stored, dev.ok) == (5, 5, 5, 5)
    assert (dev.lost, dev.duplicated, dev.unexpected, dev.recovered) == (0, 0, 0, 0)


def test_each_failure_is_counted_on_its_device() -> None:
    truth = [
        sent("dz01", 1),
        sent("dz01", 2),  # acked, never stored: lost
        sent("dz01", 3),  # stored twice: duplicated
        sent("dz01", 4, outcome="nak"),  # refused, yet stored: unexpected
        sent("dz01", 5, amt=500),  # stored with another amount: unexpected
        sent("dz02", 1, outcome="unknown", seq=None),  # answer lost in a power cut, stored
        sent("dz02", 2, outcome="unknown", seq=None),  # answer lost, not stored: fine
    ]
    store = [
        stored("dz01", 1),
        stored("dz01", 3),
        stored("dz01", 3, seq=30),
        stored("dz01", 4),
        stored("dz01", 5, amt=50),
        stored("dz01", 9),  # never sent: unexpected
        stored("dz02", 1),
        stored("dz03", 1),  # a device no POS fed: unexpected
    ]
    result = check(truth, store)
    rows = {d.dev: d for d in result.devices}
    assert not result.valid
    d1 = rows["dz01"]
    assert (d1.ok, d1.lost, d1.duplicated, d1.unexpected) == (1, 1, 1, 3)
    assert rows["dz02"].valid and rows["dz02"].recovered == 1 and rows["dz02"].ok == 0
    assert rows["dz03"].unexpected == 1
    assert (result.total("lost"), result.total("duplicated"), result.total("unexpected")) == (
        1,
        1,
        4,
    )
    assert any("lost" in p and "000002" in p for p in d1.problems)
    assert any("epoch:seq 7:3, 7:30" in p for p in d1.problems)


def test_resends_of_one_receipt_collapse_and_states_are_distinct() -> None:
    truth = [
        sent("dz01", 1, outcome="unknown", seq=None),  # first send: no answer
        sent("dz01", 1, outcome="acked", seq=1),  # resend: intake answers with the same seq
        sent("dz01", 2, st="no_response"),
        sent("dz01", 2, st="reversed", seq=3),  # a later state is its own record
    ]
    store = [
        stored("dz01", 1),
        stored("dz01", 2, st="no_response"),
        stored("dz01", 2, seq=3, st="reversed"),
    ]
    result = check(truth, store)
    assert result.valid
    assert result.devices[0].ok == 3 and result.devices[0].sent == 3


def test_render_prints_a_row_per_device_and_the_totals() -> None:
    result = check([sent("dz01", 1), sent("dz02", 1)], [stored("dz01", 1)])
    text = render(result)
    lines = text.splitlines()
    assert lines[0].split() == [
        "device",
        "sent",
        "acked",
        "stored",
        "ok",
        "recovered",
        "lost",
        "duplicated",
        "unexpected",
    ]
    assert lines[2].split() == ["dz01", "1", "1", "1", "1", "0", "0", "0", "0", "ok"]
    assert lines[3].split() == ["dz02", "1", "1", "0", "0", "0", "1", "0", "0", "FAIL"]
    assert lines[5].split() == ["total", "2", "2", "1", "1", "0", "1", "0", "0", "FAIL"]
    assert "dz02: lost" in text
    assert "dz01" not in render(result, only_problems=True).splitlines()[2]


def test_truth_file_round_trips_and_bad_lines_are_named(tmp_path: Path) -> None:
    truth = [sent("dz01", 1), sent("dz01", 2, outcome="unknown", seq=None)]
    path = tmp_path / "truth.jsonl"
    assert write_truth(path, truth) == 2
    assert list(read_truth(path)) == truth
    path.write_text(path.read_text() + '{"dev": "dz01", "outcome": "maybe"}\n')
    with pytest.raises(InputError, match=r"truth.jsonl, line 3: outcome 'maybe'"):
        list(read_truth(path))


def batch(dev: str, epoch: int, recs: list[tuple[int, str, dict[str, object]]]) -> bytes:
    return cbor2.dumps(
        {
            "v": 1,
            "dev": dev,
            "epoch": epoch,
            "boot": 1,
            "recs": [
                {
                    "seq": seq,
                    "k": kind,
                    "t": 1795000000 + seq,
                    "boot": 1,
                    "up": seq * 1000,
                    "b": body,
                }
                for seq, kind, body in recs
            ],
        }
    )


def test_stored_receipts_reads_what_the_collector_stored(db_url: str) -> None:
    # Stored by the collector's own ingest path; diag records are not receipts.
    body = dict(zip(("mid", "tid", "bat", "trc", "st"), key(1), strict=True))
    payload = batch(
        "dz01",
        7,
        [
            (1, "r", {**body, "typ": "sale", "amt": 100, "cur": "CNY"}),
            (2, "d", {"ev": "boot", "cause": "power_on"}),
        ],
    )
    with open_database(db_url) as store:
        with store.transaction() as tx:
            result = ingest_batch(tx, "dz01", payload, 1795000100.0)
        assert not result.quarantined, result
        rows = list(stored_receipts(store))
    assert rows == [stored("dz01", 1)]
    assert check([sent("dz01", 1)], rows).valid
