"""A settled or unpaid transaction whose receipt the collector refused: its data value is
`refused` with the quarantine row as evidence, not `no_receipt` ("the device never reported
it"), which would send support staff to the wrong terminal question.

The store is a generated scenario; two of its receipts are taken out of `receipts` and sent
again through the collector's own ingest path so that the collector refuses them: one record
with a field the contract does not allow (acked, gone from the terminal), one inside an
upload whose MAC fails (not acked, still on the terminal).
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

from daozhang.cli import main
from daozhang.collector.ingest import ingest_batch
from daozhang.collector.keys import add_device
from daozhang.lab.devicewire import batch_bytes, record_bytes
from daozhang.lab.sim.load import load
from daozhang.lab.sim.scenario import generate
from daozhang.schema import open_database
from daozhang.units import BEIJING

KEY = b"k" * 32
FIELDS = ("mid", "tid", "bat", "trc", "typ", "amt", "pan", "ck", "lt", "st", "rrn", "dev")


def _findings(url: str, as_of: str, out: Path) -> dict[str, dict[str, Any]]:
    assert main(["correlate", "--db", url, "--as-of", as_of, "--json", str(out), "--quiet"]) == 0
    found = json.loads(out.read_text())["findings"]
    return {f["rrn"]: f for f in found if f["kind"] == "transaction" and f["rrn"]}


def test_a_refused_receipt_is_data_refused_with_its_quarantine_row(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'r.db'}"
    sc = generate(2024, cases=6)
    with open_database(url) as store:
        load(store, sc, tmp_path / "files")
    as_of = datetime.fromtimestamp(sc.as_of, BEIJING).strftime("%Y-%m-%d %H:%M")
    before = _findings(url, as_of, tmp_path / "before.json")
    with open_database(url) as store, store.transaction() as tx:
        rows = tx.execute(
            f"SELECT {', '.join(FIELDS)} FROM receipts r WHERE typ = 'sale' AND st = 'approved'"
            " AND rrn IS NOT NULL AND pan IS NOT NULL AND EXISTS (SELECT 1 FROM settle_detail d"
            " WHERE d.rrn = r.rrn AND d.mid = r.mid) ORDER BY rrn LIMIT 2"
        )
    (bad, forged) = [dict(zip(FIELDS, row, strict=True)) for row in rows]
    assert before[bad["rrn"]]["data"] == "complete"
    with open_database(url) as store:
        for dev in {bad["dev"], forged["dev"]}:
            add_device(store, dev, KEY, replace=True, note=None)
        with store.transaction() as tx:
            for receipt in (bad, forged):
                tx.execute("DELETE FROM receipts WHERE rrn = ?", (receipt["rrn"],))
            body = {k: bad[k] for k in FIELDS if k != "dev"} | {"typ": "steal"}
            record = record_bytes(900_001, "r", body, t=bad["lt"])
            upload = batch_bytes(bad["dev"], 77, [record], key=KEY)
            ingest_batch(tx, bad["dev"], upload, sc.as_of)
            body = {k: forged[k] for k in FIELDS if k != "dev"}
            record = record_bytes(900_002, "r", body, t=forged["lt"])
            upload = batch_bytes(forged["dev"], 78, [record], key=b"x" * 32)
            ingest_batch(tx, forged["dev"], upload, sc.as_of)
    after = _findings(url, as_of, tmp_path / "after.json")

    gone = after[bad["rrn"]]
    assert gone["data"] == "refused" and gone["dev"] == bad["dev"]
    (fact,) = [e["fact"] for e in gone["evidence"] if e["source"] == "quarantine"]
    assert "record_schema" in fact and "the device deleted it" in fact
    held = after[forged["rrn"]]
    assert held["data"] == "refused"
    (fact,) = [e["fact"] for e in held["evidence"] if e["source"] == "quarantine"]
    assert "mac:" in fact and "still holds it" in fact
    # Only these two changed: everything else is classified as before.
    changed = {r for r in before if before[r]["data"] != after.get(r, {}).get("data")}
    assert changed == {bad["rrn"], forged["rrn"]}
