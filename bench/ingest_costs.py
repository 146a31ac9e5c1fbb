"""Where a stored record's time goes on the collector's ingest path, against cbor2.loads.

The collector bench (`collector_ingest.py`) compares whole processes over MQTT. This one takes
the same messages (50 records each) without MQTT and times each step of the ingest path on its
own, in one run, as microseconds per record and as a multiple of `cbor2.loads` of the whole
message (the decode-only subscriber's work besides paho):

- the CPU steps, best of three passes: the split into records with their exact bytes and the
  contract's limits (`decode_batch`), the batch checks (`check_batch`), and `verify` with its
  records judged (both, plus the header);
- the row writes, each into a fresh SQLite store on the real disk (WAL, synchronous=FULL), with
  rows built beforehand, 2,000 records per transaction: the `records` insert alone, the
  `receipts` upsert alone, and the `records` insert again without fsync (synchronous=OFF) to
  show what the syncs cost;
- the whole path: verify, `ingest_batch` and commit, on a fresh store;
- the inbox path (collector/inbox.py): the verdict's `inbox` run alone (CPU), then that,
  `ingest_upload` and commit on a fresh store (what an ack waits for), then storing those inbox
  rows (`Projector.chunk`, what follows the ack).

    .venv/bin/python bench/ingest_costs.py [--records N]
"""

from __future__ import annotations

import argparse
import shutil
import sqlite3
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import cbor2
from collector_ingest import messages
from daozhang.collector.accounting import AckState
from daozhang.collector.inbox import Projector, ingest_upload
from daozhang.collector.ingest import (  # the private parts: the bench writes ingest's own rows
    _RECEIPT_UPSERT,
    _store,
    ingest_batch,
)
from daozhang.collector.keys import DeviceInfo
from daozhang.collector.verify import Upload, Verdict, check_batch, verify
from daozhang.collector.wire import decode_batch
from daozhang.collector.writer import GroupWriter, read_devices
from daozhang.schema import open_database
from daozhang.store import Store, Transaction

T = TypeVar("T")


def judged(device: DeviceInfo, dev: str, payload: bytes) -> Verdict:
    """The verdict with its records judged, as the full path has it before the transaction."""
    verdict = verify(Upload(dev, payload), device, require_key=False)
    verdict.records  # noqa: B018 - computed on first use
    return verdict


def ackable(device: DeviceInfo, dev: str, payload: bytes) -> Verdict:
    """The verdict with its inbox run, as the inbox path has it before the transaction."""
    verdict = verify(Upload(dev, payload), device, require_key=False)
    verdict.inbox  # noqa: B018 - computed on first use
    return verdict


PER_MESSAGE = 50
PER_TRANSACTION = 2000
_UNKNOWN = DeviceInfo(key=None, mid=None, tid=None)


def best_of(passes: int, step: Callable[[], object]) -> float:
    best = float("inf")
    for _ in range(passes):
        start = time.perf_counter()
        step()
        best = min(best, time.perf_counter() - start)
    return best


def _fresh_store(work: Path, name: str) -> Path:
    path = work / f"{name}.db"
    open_database(f"sqlite:///{path}").close()
    return path


def _write_rows(
    path: Path, sql: str, rows: list[tuple[Any, ...]], synchronous: str = "FULL"
) -> float:
    """Seconds to write `rows` with `sql`, PER_TRANSACTION rows per commit."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute(f"PRAGMA synchronous={synchronous}")
    start = time.perf_counter()
    for i in range(0, len(rows), PER_TRANSACTION):
        conn.execute("BEGIN IMMEDIATE")
        if sql:
            conn.executemany(sql, rows[i : i + PER_TRANSACTION])
        conn.execute("COMMIT")
    elapsed = time.perf_counter() - start
    conn.close()
    return elapsed


def _rows(msgs: list[tuple[str, bytes]]) -> dict[str, list[tuple[Any, ...]]]:
    """The rows ingest's own `_store` writes for these messages, by statement."""
    writer = GroupWriter()
    for dev, payload in msgs:
        batch = decode_batch(payload)
        records = check_batch(batch.recs)
        if records is None:
            raise SystemExit(f"a bench batch of {dev} does not pass the checks")
        state = AckState(dev, batch.fields["epoch"], 0, 0, 0, None, None, None)
        _store(writer, state, records, 0.0)
    return writer.rows


def _commit_groups(
    store: Store,
    msgs: list[tuple[str, bytes]],
    check: Callable[[DeviceInfo, str, bytes], T],
    ingest: Callable[[Transaction, GroupWriter, str, bytes, T], object],
) -> float:
    """Seconds to take `msgs` through the collector's steps, 2,000 records per transaction:
    each upload checked before the transaction (`check`), then written (`ingest`)."""
    start = time.perf_counter()
    # As the collector: the key store read once and kept between groups for the checks,
    # and read again once per transaction, all of a group's devices in one query.
    devices = read_devices(store.query, sorted({dev for dev, _ in msgs}))
    for i in range(0, len(msgs), PER_TRANSACTION // PER_MESSAGE):
        group = msgs[i : i + PER_TRANSACTION // PER_MESSAGE]
        checked = [check(devices[dev], dev, payload) for dev, payload in group]
        with store.transaction() as tx:
            writer = GroupWriter()
            writer.load_devices(tx, {dev for dev, _ in group})
            for (dev, payload), result in zip(group, checked, strict=True):
                ingest(tx, writer, dev, payload, result)
            writer.flush(tx)
    return time.perf_counter() - start


def _whole_path(path: Path, msgs: list[tuple[str, bytes]]) -> float:
    with open_database(f"sqlite:///{path}", migrate=False) as store:
        return _commit_groups(
            store,
            msgs,
            judged,
            lambda tx, w, dev, payload, verdict: ingest_batch(
                tx, dev, payload, 0.0, writer=w, verdict=verdict
            ),
        )


def _inbox_path(path: Path, msgs: list[tuple[str, bytes]]) -> tuple[float, float]:
    """Seconds to ack every message from the inbox, and then to store the inbox."""
    store = open_database(f"sqlite:///{path}", migrate=False)
    acking = _commit_groups(
        store,
        msgs,
        ackable,
        lambda tx, w, dev, payload, verdict: ingest_upload(
            tx, w, dev, payload, 0.0, collector="", require_key=False, verdict=verdict, inbox=True
        ),
    )
    acked = time.perf_counter()
    projector = Projector("bench", PER_TRANSACTION)
    while projector.chunk(store).records:
        pass
    stored = time.perf_counter()
    with store.transaction() as tx:
        ((count,),) = tx.execute("SELECT COUNT(*) FROM records")
    store.close()
    if count != sum(len(cbor2.loads(p)["recs"]) for _, p in msgs):
        raise RuntimeError(f"the inbox path stored {count} records")
    return acking, stored - acked


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=50_000)
    args = parser.parse_args()
    msgs = messages(PER_MESSAGE, args.records)
    payloads = [payload for _, payload in msgs]
    n = sum(len(cbor2.loads(p)["recs"]) for p in payloads)
    batches = [decode_batch(p) for p in payloads]
    steps: list[tuple[str, float]] = [
        (
            "cbor2.loads of each message (the baseline)",
            best_of(3, lambda: [*map(cbor2.loads, payloads)]),
        ),
        (
            "decode_batch: split with exact bytes and limits",
            best_of(3, lambda: [*map(decode_batch, payloads)]),
        ),
        (
            "check_batch: schema, enums, PAN",
            best_of(3, lambda: [check_batch(b.recs) for b in batches]),
        ),
        (
            "verify, records judged: both, plus the header",
            best_of(3, lambda: [judged(_UNKNOWN, d, p) for d, p in msgs]),
        ),
        (
            "verify, inbox run: what the inbox acks on (MAC, CBOR, header, seqs, digit runs)",
            best_of(3, lambda: [ackable(_UNKNOWN, d, p) for d, p in msgs]),
        ),
    ]
    rows = _rows(msgs)
    insert = next(sql for sql in rows if sql.startswith("INSERT INTO records"))
    records, receipts = rows[insert], rows[_RECEIPT_UPSERT]
    work = Path(tempfile.mkdtemp(prefix="dz-costs-", dir="/var/tmp"))  # the real disk
    try:
        steps += [
            (
                "records insert (10 columns)",
                _write_rows(_fresh_store(work, "rec"), insert, records),
            ),
            (
                "receipts upsert (27 columns)",
                _write_rows(_fresh_store(work, "rcp"), _RECEIPT_UPSERT, receipts),
            ),
            (
                "records insert, synchronous=OFF (what the fsyncs cost)",
                _write_rows(_fresh_store(work, "nosync"), insert, records, "OFF"),
            ),
            (
                "whole path: verify + ingest_batch + commit",
                _whole_path(_fresh_store(work, "all"), msgs),
            ),
        ]
        acked, stored = _inbox_path(_fresh_store(work, "inbox"), msgs)
        steps += [
            ("inbox path to the ack: verify + ingest_upload + commit", acked),
            ("inbox path behind the ack: storing the inbox rows", stored),
        ]
    finally:
        shutil.rmtree(work, ignore_errors=True)
    loads = steps[0][1]
    print(f"{n} records, {PER_MESSAGE} per message\n")
    print("| step | µs/record | × cbor2.loads |")
    print("|---|---|---|")
    for name, seconds in steps:
        print(f"| {name} | {seconds * 1e6 / n:.1f} | {seconds / loads:.2f} |")


if __name__ == "__main__":
    main()
