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


def _cell(column: str, key: str, value: Any) -> str:
    if value is None:
        return ""
    if column == "txn_time":
        return datetime.fromtimestamp(int(value), R.BEIJING).strftime("%Y-%m-%d %H:%M:%S")
    if key.endswith("_fen") or key in ("amt", "fee", "settle_amt"):
        return R.fen_to_yuan(int(value))
    return str(value)


def csv_bytes(kind: str, rows: list[dict[str, Any]], encoding: str = "utf-8") -> bytes:
    spec = R.KINDS[kind]
    out = io.StringIO(newline="")
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(list(spec))
    for row in rows:
        writer.writerow([_cell(col, key, row.get(key)) for col, (key, _) in spec.items()])
    return out.getvalue().encode(encoding)


def fixed_width_bytes(
    file_date: str, acquirer: str, rows: list[dict[str, Any]], encoding: str = "gbk"
) -> bytes:
    return unionpay.write(file_date, acquirer, rows, encoding)
