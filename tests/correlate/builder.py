"""A hand-built store for the rule-by-rule correlation tests: a few facts, one correlation run.

Every fact goes in through the writer the product uses for it — device records and declared
gaps through the collector's `ingest_batch`, heartbeats through `ingest_heartbeat`, merchants,
detail rows and payouts through the settlement importer on small CSV files written here — so
that a test states what the terminal, the device and the acquirer said, and nothing about how
correlation reads it. Nothing comes from the scenario generator (`daozhang.lab.sim`): these tests
must not share its idea of the rules.

Times are Beijing wall-clock text ("2025-01-07 15:00"); amounts are fen.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

import cbor2
from daozhang.collector.ingest import ingest_batch
from daozhang.collector.keys import add_device
from daozhang.collector.timeline import ingest_heartbeat
from daozhang.correlate.classify import Finding
from daozhang.correlate.engine import analyse
from daozhang.correlate.render import evidence
from daozhang.lab.devicewire import batch_bytes, record_bytes
from daozhang.schema import open_database
from daozhang.settle.importer import import_file
from daozhang.settle.notices import import_notices
from daozhang.settle.rows import DETAIL, beijing_time
from daozhang.store import Store
from daozhang.units import BEIJING, fen_to_yuan

M1, M2, M3, M4 = (f"89831004816{n:04d}" for n in (1, 2, 3, 4))
T1 = "10000001"
DEV = "DEV00001"
CARD = "622848******1234"
ACQ = "ACQ1"

# Receipt states in which a response came from the host, so the receipt has an RRN (§1.2).
_ANSWERED = ("approved", "declined", "voided", "offline_sent")


def bj(text: str) -> int:
    """Beijing wall-clock text, with or without seconds, to unix seconds."""
    return beijing_time(text if len(text) > 16 else text + ":00")


@dataclass
class _Device:
    seq: int = 0
    pending: list[bytes] = field(default_factory=list)
    gaps: list[list[int]] = field(default_factory=list)
    last_t: int = 0


class Shop:
    """Merchants, their terminals' devices and their acquirer, written through the product."""

    def __init__(self, url: str, workdir: Path) -> None:
        self.url = url
        self.dir = workdir
        self.store: Store = open_database(url)
        self._devices: dict[str, _Device] = {}
        self._merchants: dict[str, dict[str, str]] = {}
        self._detail: dict[str, list[dict[str, str]]] = {}
        self._payouts: dict[str, list[dict[str, Any]]] = {}
        self._rows: list[dict[str, str]] = []  # every detail row, for the payouts' plans
        self._trc = 0
        self._rrn = 0
        self._notices: list[dict[str, str]] = []
        self.unlisted: set[str] = set()  # merchants the merchants file leaves out
        self.policy_file: Path | None = None

    def close(self) -> None:
        self.store.close()

    # -- the merchant file ------------------------------------------------------------------
    def merchant(
        self,
        mid: str = M1,
        *,
        acquirer: str = ACQ,
        fee_rate: str = "0.0060",
        debit_cap: int | None = None,
        settle_type: str = "T1",
        status: str = "active",
        delay_days: int | None = None,
        reserve_rate: str = "",
        reserve_release: str = "",
        terminals: str = "",
    ) -> None:
        self._merchants[mid] = {
            "merchant_id": mid,
            "acquirer_code": acquirer,
            "fee_rate": fee_rate,
            "debit_cap": "" if debit_cap is None else fen_to_yuan(debit_cap),
            "d0_surcharge": "",
            "settle_type": settle_type,
            "bank_account_masked": "6222****0001",
            "status": status,
            # The optional settlement settings (DESIGN §2.3), empty when not set.
            "delay_days": "" if delay_days is None else str(delay_days),
            "reserve_rate": reserve_rate,
            "reserve_release": reserve_release,
            "terminal_ids": terminals,
        }

    def notice(self, start: str, end: str, what: str, acquirer: str = ACQ) -> None:
        """An announced maintenance window, imported as support would (settle notices)."""
        self._notices.append({"acquirer": acquirer, "start": start, "end": end, "what": what})

    def policy(self, toml: str) -> None:
        self.policy_file = self.dir / "policy.toml"
        self.policy_file.write_text(toml, encoding="utf-8")

    # -- the terminal and its device ------------------------------------------------------------
    def sale(
        self,
        at: str,
        amt: int = 10_000,
        *,
        st: str = "approved",
        typ: str = "sale",
        dev: str = DEV,
        mid: str = M1,
        tid: str = T1,
        pan: str = CARD,
        ck: str = "D",
        rrn: str | None = None,
        trc: str | None = None,
        sent: str | None = None,
        **extra: Any,
    ) -> dict[str, Any]:
        """A receipt as the terminal reports it; `sent`: when the device recorded this state
        (the record's `t`), if not at the transaction time."""
        self._trc += 1
        body: dict[str, Any] = {
            "mid": mid,
            "tid": tid,
            "bat": "000001",
            "trc": trc or f"{self._trc:06d}",
            "typ": typ,
            "amt": amt,
            "cur": "CNY",
            "pan": pan,
            "ck": ck,
            "ent": "051",
            "lt": bj(at),
            "st": st,
        }
        if rrn is None and st in _ANSWERED:
            rrn = self.new_rrn()
        if rrn:
            body["rrn"] = rrn
        body.update(extra)
        self.record(dev, "r", body, bj(sent or at))
        return body

    def new_rrn(self) -> str:
        self._rrn += 1
        return f"501{self._rrn:09d}"

    def later(self, receipt: dict[str, Any], at: str, dev: str = DEV, **change: Any) -> None:
        """A later state of the same transaction: a new record with the same natural key."""
        receipt.update(change)
        self.record(dev, "r", dict(receipt), bj(at))

    def outage(
        self, start: str, end: str | None, dev: str = DEV, stage: str = "tcp", why: str = "timeout"
    ) -> None:
        self.record(dev, "d", {"ev": "link_down", "stage": stage, "why": why}, bj(start))
        if end is not None:
            down_ms = (bj(end) - bj(start)) * 1000
            self.record(dev, "d", {"ev": "link_up", "down_ms": down_ms, "tries": 3}, bj(end))

    def signal(self, at: str, dev: str = DEV, rssi: int = -97) -> None:
        self.record(dev, "d", {"ev": "signal", "rat": "lte", "rssi": rssi, "reg": 1}, bj(at))

    def boot(self, at: str, cause: str = "watchdog", dev: str = DEV) -> None:
        """The terminal's agent restarted at `at` and journalled why."""
        self.record(dev, "d", {"ev": "boot", "cause": cause}, bj(at))

    def lose(self, n: int, dev: str = DEV) -> None:
        """The device's journal lost the next `n` records: declared in its next upload."""
        d = self._device(dev)
        d.gaps.append([d.seq + 1, d.seq + n])
        d.seq += n

    def record(self, dev: str, kind: str, body: dict[str, Any], t: int) -> None:
        d = self._device(dev)
        d.seq += 1
        d.pending.append(record_bytes(d.seq, kind, body, t=t, up=d.seq * 1000))
        d.last_t = max(d.last_t, t)

    def upload(self, at: str | None = None, dev: str = DEV, key: bytes | None = None) -> None:
        """Send what the device holds, in one batch, received by the collector at `at` (by
        default half a minute after its newest record), signed with `key` if given."""
        d = self._device(dev)
        if not d.pending and not d.gaps:
            return
        received = bj(at) if at else d.last_t + 30
        payload = batch_bytes(dev, 7, d.pending, gaps=d.gaps or None, key=key)
        with self.store.transaction() as tx:
            ingest_batch(tx, dev, payload, received)
        d.pending, d.gaps = [], []

    def provision(self, key: bytes, dev: str = DEV) -> None:
        """The device's key, as flashing registers it: its uploads must carry its MAC."""
        add_device(self.store, dev, key)

    def heartbeat(
        self,
        at: str | None,
        dev: str = DEV,
        jrec: int = 0,
        received: str | None = None,
        up_s: int = 0,
        fw: str = "1.0",
        boot: int = 1,
        cause: str = "power_on",
    ) -> None:
        """A heartbeat the terminal sent at `at` by its clock (None: its clock unknown, t = 0),
        `up_s` after boot, reaching the host at `received` (default: at once)."""
        t = bj(at) if at is not None else 0
        hb = {"v": 1, "dev": dev, "t": t, "epoch": 7, "fw": fw, "boot": boot, "jrec": jrec}
        hb["cause"] = cause
        hb["up"] = up_s * 1000
        arrived = bj(received) if received is not None else t
        with self.store.transaction() as tx:
            ingest_heartbeat(tx, dev, cbor2.dumps(hb), arrived)

    def _device(self, dev: str) -> _Device:
        return self._devices.setdefault(dev, _Device())

    # -- the acquirer's files -------------------------------------------------------------------
    def cleared(
        self,
        receipt: dict[str, Any] | None = None,
        *,
        on: str,
        flag: str = "Y",
        fee: int | None = None,
        payout: str | None = None,
        **facts: Any,
    ) -> dict[str, str]:
        """The acquirer's detail row for `receipt` (or for the facts given alone), settled `on`.

        The fee defaults to 0.6 % rounded half up (the default merchant's agreed rate)."""
        r = {**(receipt or {}), **facts}
        mid, amt = r.get("mid", M1), int(r["amt"])
        if fee is None:
            fee = int((Decimal(amt) * Decimal("0.006")).quantize(Decimal(1), ROUND_HALF_UP))
        lt = r["lt"] if "lt" in r else bj(r["at"])
        if "trc" not in r:
            self._trc += 1
        row = {
            "settle_date": on,
            "merchant_id": mid,
            "terminal_id": r.get("tid", T1),
            "txn_time": _text(lt),
            "txn_type": r.get("typ", "sale"),
            "channel": "card",
            "batch_no": r.get("bat", "000001"),
            "trace_no": r.get("trc", f"{self._trc:06d}"),
            "rrn": r.get("rrn") or self.new_rrn(),
            "orig_rrn": r.get("orrn", ""),
            "card_masked": r.get("pan", CARD),
            "card_kind": r.get("ck", "D"),
            "amount": fen_to_yuan(amt),
            "fee": fen_to_yuan(fee),
            "settle_amount": fen_to_yuan(_net(amt, fee, flag, r.get("direction", "in"))),
            "fund_direction": r.get("direction", "in"),
            "settle_type": r.get("sm", "T1"),
            "check_flag": flag,
            "payout_id": payout_id(mid, on) if payout is None else payout,
        }
        self._detail.setdefault(on, []).append(row)
        self._rows.append(row)
        self._merchant_seen(mid)
        return row

    def detail_file(self, on: str) -> None:
        """The acquirer's detail file for `on` is imported, even if it has no rows."""
        self._detail.setdefault(on, [])

    def payout(
        self,
        on: str,
        mid: str = M1,
        *,
        state: str = "paid",
        plan: int | None = None,
        fee_total: int = 0,
        suspend: int = 0,
        retained: int = 0,
        paid: int | None = None,
        reason: str = "",
        pid: str | None = None,
    ) -> None:
        """One payout row; the plan defaults to the sum of its detail rows' net amounts and
        `paid` to the plan less charges, suspended and retained money (nothing unless paid)."""
        self._payouts.setdefault(on, []).append(
            {
                "payout_id": pid or payout_id(mid, on),
                "mid": mid,
                "on": on,
                "state": state,
                "plan": plan,
                "fee_total": fee_total,
                "suspend": suspend,
                "retained": retained,
                "paid": paid,
                "reason": reason,
            }
        )
        self._merchant_seen(mid)

    def _merchant_seen(self, mid: str) -> None:
        if mid not in self._merchants:
            self.merchant(mid)

    # -- one run ------------------------------------------------------------------------------
    def run(self, as_of: str) -> Findings:
        for dev in self._devices:
            self.upload(dev=dev)
        for mid in self._receipt_mids() - self.unlisted:
            self._merchant_seen(mid)  # a merchant file lists every merchant a receipt names
        self._import("merchants.csv", list(self._merchants.values()))
        for on, rows in sorted(self._detail.items()):
            self._import(f"detail_{on.replace('-', '')}.csv", rows, _DETAIL_HEADER)
        self._detail = {}
        for on, payouts in sorted(self._payouts.items()):
            self._import(
                f"payout_{on.replace('-', '')}.csv", [self._payout_row(p) for p in payouts]
            )
        self._payouts = {}
        if self._notices:
            self._import_notices()
        return Findings(analyse(self.store, as_of=bj(as_of), policy_file=self.policy_file).findings)

    def _import_notices(self) -> None:
        path = self.dir / "notices.csv"
        with path.open("w", encoding="utf-8", newline="") as out:
            w = csv.DictWriter(out, ["acquirer", "start", "end", "what"], lineterminator="\n")
            w.writeheader()
            w.writerows(self._notices)
        import_notices(self.store, path)
        self._notices = []

    def _receipt_mids(self) -> set[str]:
        return {str(m) for (m,) in self.store.query("SELECT DISTINCT mid FROM receipts")}

    def _payout_row(self, p: dict[str, Any]) -> dict[str, str]:
        plan = p["plan"]
        if plan is None:
            plan = sum(
                _fen(r["settle_amount"]) for r in self._rows if r["payout_id"] == p["payout_id"]
            )
        paid = p["paid"]
        if paid is None:
            held = p["fee_total"] + p["suspend"] + p["retained"]
            paid = plan - held if p["state"] == "paid" else 0
        return {
            "payout_id": p["payout_id"],
            "merchant_id": p["mid"],
            "settle_type": "T1",
            "settle_date": p["on"],
            "plan_amount": fen_to_yuan(plan),
            "fee_total": fen_to_yuan(p["fee_total"]),
            "suspend_amount": fen_to_yuan(p["suspend"]),
            "retained_amount": fen_to_yuan(p["retained"]),
            "real_amount": fen_to_yuan(paid),
            "state": p["state"],
            "fail_reason": p["reason"],
            "bank_account_masked": "6222****0001",
        }

    def _import(
        self, name: str, rows: list[dict[str, str]], header: list[str] | None = None
    ) -> None:
        if not rows and header is None:
            return
        columns = header or list(rows[0])
        text = io.StringIO()
        out = csv.DictWriter(text, columns, lineterminator="\n")
        out.writeheader()
        out.writerows(rows)
        path = self.dir / name
        path.write_text(text.getvalue(), encoding="utf-8")
        import_file(self.store, path)


_DETAIL_HEADER = list(DETAIL)  # the documented columns (DESIGN §2.1), in order


def payout_id(mid: str, on: str) -> str:
    return f"PO{mid[-4:]}{on.replace('-', '')}"


def _text(t: int) -> str:
    return datetime.fromtimestamp(t, BEIJING).strftime("%Y-%m-%d %H:%M:%S")


def _fen(yuan: str) -> int:
    return int(Decimal(yuan) * 100)


class Findings:
    def __init__(self, found: list[Finding]) -> None:
        self.all = found

    def of(self, receipt: dict[str, Any]) -> Finding:
        """The transaction finding for a receipt (or a detail row) by its natural key."""
        key = _key(receipt)
        (f,) = [
            f for f in self.all if f.kind == "transaction" and (f.mid, f.tid, f.bat, f.trc) == key
        ]
        return f

    def payout(self, pid: str) -> Finding:
        (f,) = [f for f in self.all if f.kind == "payout" and f.payout_id == pid]
        return f

    def transactions(self) -> list[Finding]:
        return [f for f in self.all if f.kind == "transaction"]


def _key(r: dict[str, Any]) -> tuple[str, str, str, str]:
    if "merchant_id" in r:
        return (r["merchant_id"], r["terminal_id"], r["batch_no"], r["trace_no"])
    return (r["mid"], r["tid"], r["bat"], r["trc"])


def facts(f: Finding, source: str) -> list[str]:
    """The rendered evidence sentences of one source (receipt, diag_event, heartbeat,
    settlement_row, settlement_file, payout, calendar, policy, merchant, quarantine)."""
    return [e["fact"] for e in evidence(f) if e["source"] == source]


def sources(f: Finding) -> list[str]:
    return [e["source"] for e in evidence(f)]


def day(text: str) -> date:
    return date.fromisoformat(text)


def _net(amt: int, fee: int, flag: str, direction: str) -> int:
    """The settled amount as the importer checks it: nothing for a row not settled (flag B),
    money out (a refund) negative, less the fee either way."""
    if flag == "B":
        return 0
    return (-amt if direction in ("out", "refund") else amt) - fee
