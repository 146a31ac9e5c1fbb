"""Write settlement files the way an acquirer does: generic CSV (UTF-8 or GBK) or fixed-width.

Rows are dicts keyed like `daozhang.settle.rows` (amounts in fen, times unix seconds).
"""

from __future__ import annotations

import csv
import io
from datetime import datetime
from typing import Any

from daozhang.settle import rows as R
from daozhang.settle import unionpay
from daozhang.settle.parse import TRAILER
from daozhang.units import BEIJING, fen_to_yuan


def _cell(column: str, key: str, value: Any) -> str:
    if value is None:
        return ""
    if column == "txn_time":
        return datetime.fromtimestamp(int(value), BEIJING).strftime("%Y-%m-%d %H:%M:%S")
    if key.endswith("_fen") or key in ("amt", "fee", "settle_amt"):
        return fen_to_yuan(int(value))
    return str(value)


def csv_bytes(
    kind: str, rows: list[dict[str, Any]], encoding: str = "utf-8", trailer: bool = True
) -> bytes:
    """A generic CSV; with rows, ended by the `#rows,N` trailer the importer checks.

    A header-only file gets no trailer: the fleet harness (lab/sim/fleet.py) recognises the
    empty payout files it must not import by their one line."""
    spec = {**R.KINDS[kind], **R.OPTIONAL.get(kind, {})}
    out = io.StringIO(newline="")
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(list(spec))
    for row in rows:
        writer.writerow([_cell(col, key, row.get(key)) for col, (key, _) in spec.items()])
    if trailer and rows:
        writer.writerow([TRAILER, len(rows)])
    return out.getvalue().encode(encoding)


def fixed_width_bytes(
    file_date: str, acquirer: str, rows: list[dict[str, Any]], encoding: str = "gbk"
) -> bytes:
    return unionpay.write(file_date, acquirer, rows, encoding)
