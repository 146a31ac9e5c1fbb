"""Write settlement files the way an acquirer does: generic CSV (UTF-8 or GBK) or fixed-width.

Rows are dicts keyed like `daozhang.settle.rows` (amounts in fen, times unix seconds).
"""

from __future__ import annotations

import csv
import io
from datetime import datetime
from typing import Any

from daozhang.settle import profiles
from daozhang.settle import rows as R
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
    """daozhang's UnionPay-style file (H, D records, T), written from the layout and codes
    of its built-in profile (`unionpay-fixed` in settle/profiles.toml), the one source of both
    the reading and this writing. Rows as `csv_bytes` takes them, plus `merchant_name`."""
    p = profiles.load()["unionpay-fixed"]
    if p.header is None or p.trailer is None:
        raise RuntimeError("the built-in unionpay-fixed profile lost its header or trailer")
    by_column = {spec.column: spec for spec in p.fields}
    lines = [_record(p.header.layout, ["H", file_date.replace("-", ""), acquirer, "01"], encoding)]
    total = 0
    for r in rows:
        total += int(r["amt"])
        values = {"rec": "D", "merchant_name": str(r.get("merchant_name", ""))}
        values["settle_date"] = str(r["settle_date"]).replace("-", "")
        for column, width in p.layout:
            spec = by_column.get(column)
            if spec is not None and column not in values:
                values[column] = _fixed_cell(spec, r[spec.key], width)
        lines.append(_record(p.layout, [values[c] for c, _ in p.layout], encoding))
    count, amount = str(len(rows)).rjust(8, "0"), str(total).rjust(16, "0")
    lines.append(_record(p.trailer.layout, ["T", count, amount], encoding))
    return b"\r\n".join(lines) + b"\r\n"


def _fixed_cell(spec: profiles.FieldSpec, value: Any, width: int) -> str:
    if spec.time:
        return datetime.fromtimestamp(int(value), BEIJING).strftime(spec.time)
    if spec.mapping:
        codes = {v: k for k, v in spec.mapping.items()}
        return codes.get(str(value), str(value))  # a bad value written as it is (tests)
    if spec.signed:
        fen = int(value)
        return ("-" if fen < 0 else "+") + str(abs(fen)).rjust(width - 1, "0")
    if spec.fen:
        return str(int(value)).rjust(width, "0")
    return str(value)


def _record(layout: tuple[tuple[str, int], ...], values: list[str], encoding: str) -> bytes:
    """Each value padded with spaces to its width in bytes, one space between fields."""
    cells = []
    for (column, width), text in zip(layout, values, strict=True):
        raw = text.encode(encoding)
        if len(raw) > width:
            raise ValueError(f"{column}: {text!r} does not fit in {width} bytes")
        cells.append(raw.ljust(width, b" "))
    return b" ".join(cells)
