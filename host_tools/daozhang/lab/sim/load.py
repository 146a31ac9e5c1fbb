"""Write a scenario's files and load it into a store the way production data arrives.

Device data goes through the collector's own `ingest_batch` (CBOR batches as a device sends
them), never through a side door, so correlation is tested on exactly what the collector
stores. Settlement files are written to disk (CSV in UTF-8 or GBK, or fixed-width) and
imported with the settle importer, as an operator would.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from datetime import date, datetime
from pathlib import Path

from daozhang.lab.sim.device import Message, messages
from daozhang.lab.sim.files import csv_bytes, fixed_width_bytes
from daozhang.lab.sim.model import ACQUIRERS, Scenario
from daozhang.settle.importer import import_file
from daozhang.settle.notices import import_notices
from daozhang.store import Store
from daozhang.units import BEIJING

COMMIT_EVERY = 400  # messages per transaction: a collector commits in groups too


def write_files(sc: Scenario, out: Path) -> list[tuple[Path, str | None]]:
    """Merchants, then per acquirer and day a detail and a payout file (not the missing);
    each with the acquirer an operator would name (`--acquirer`) when importing it."""
    out.mkdir(parents=True, exist_ok=True)
    merchants = [
        {
            "mid": m.mid,
            "acquirer": m.acquirer,
            "fee_rate": m.fee_rate,
            "debit_cap_fen": 2000,
            "d0_surcharge": m.d0_surcharge,
            "settle_type": m.settle_type,
            "bank_account": "6222****" + m.mid[-4:],
            "status": m.status,
            "terminals": m.tid,  # the registry of terminal numbers (terminal_misconfigured)
            "reserve_rate": m.reserve_rate,
            "reserve_release": m.reserve_release,
        }
        for m in sc.merchants
    ]
    paths: list[tuple[Path, str | None]] = [(out / "merchants.csv", None)]
    paths[0][0].write_bytes(csv_bytes("merchants", merchants))
    by_mid = {m.mid: m.acquirer for m in sc.merchants}
    day = sc.start
    n = 0
    while day <= sc.as_of_date:
        for acq in ACQUIRERS:
            if (acq, day) in sc.missing_files:
                continue
            rows = sc.detail_rows.get((acq, day), [])
            stamp = f"{day:%Y%m%d}"
            n += 1
            if acq == "ACQ02":  # this acquirer sends the fixed-width clearing file, in GBK
                p = out / f"{acq}_clear_{stamp}.txt"
                p.write_bytes(fixed_width_bytes(day.isoformat(), acq, rows, "gbk"))
            else:
                p = out / f"{acq}_detail_{stamp}.csv"
                p.write_bytes(csv_bytes("detail", rows, "gbk" if n % 2 else "utf-8"))
            paths.append((p, acq))
            pay = [
                r
                for r in sc.payouts
                if by_mid[r["mid"]] == acq and r["settle_date"] == day.isoformat()
            ]
            p = out / f"{acq}_payout_{stamp}.csv"
            p.write_bytes(csv_bytes("payout", pay, "gbk"))
            paths.append((p, acq))
        day = date.fromordinal(day.toordinal() + 1)
    truth = {"|".join(k): asdict(v) for k, v in sc.truth.items()}
    meta = {
        "seed": sc.seed,
        "as_of": sc.as_of,
        "start": sc.start.isoformat(),
        "truth": truth,
        "missing_files": sorted(f"{a} {d}" for a, d in sc.missing_files),
    }
    (out / "ground_truth.json").write_text(json.dumps(meta, ensure_ascii=False, indent=1))
    return paths


def load_devices(store: Store, msgs: list[Message]) -> dict[str, int]:
    """Feed every device message to the collector's ingest path; return counts."""
    from daozhang.collector.timeline import ingest_message

    counts = {"stored": 0, "quarantined": 0, "heartbeats": 0}
    for start in range(0, len(msgs), COMMIT_EVERY):
        with store.transaction() as tx:
            for msg in msgs[start : start + COMMIT_EVERY]:
                result = ingest_message(tx, f"dz/v1/{msg.dev}/{msg.channel}", msg.payload, msg.at)
                counts["stored"] += result.stored
                counts["quarantined"] += len(result.quarantined)
                counts["heartbeats"] += msg.channel == "hb"
    return counts


def load(store: Store, sc: Scenario, out: Path) -> dict[str, int]:
    """Device data through the collector, then the settlement files through the importer."""
    counts = load_devices(store, messages(sc))
    for path, acquirer in write_files(sc, out):
        import_file(store, path, acquirer=acquirer, now=sc.as_of)
    notices = write_notices(sc, out)
    if notices is not None:
        import_notices(store, notices)
    return counts


def write_notices(sc: Scenario, out: Path) -> Path | None:
    """The acquirers' announced windows, as support keeps them (`settle notices import`)."""
    if not sc.notices:
        return None
    path = out / "notices.csv"
    lines = ["acquirer,start,end,what"]
    for acq, start, end, what in sc.notices:
        lines.append(f"{acq},{_minute(start)},{_minute(end)},{what}")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _minute(t: int) -> str:
    return datetime.fromtimestamp(t, BEIJING).strftime("%Y-%m-%d %H:%M")
