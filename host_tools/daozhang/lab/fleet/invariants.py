"""The no-loss invariant, checked the way Jepsen's total-queue checker does.

Ground truth is what each POS simulator saw: every receipt it sent to its board and what the
board answered (`ACK seq`, a definite `NAK`, or nothing before a power cut: unknown). The
store is what the collector kept (`records` of kind `r`). A receipt's identity is its natural
key plus its state (`mid tid bat trc st`): a later state of the same transaction is a new record
(DESIGN §1.2), and intake is idempotent on exactly that key.

Per device:
- ok          acked to the POS, stored exactly once, with the same amount;
- recovered   the POS never saw the answer, and it is stored once (allowed: at-least-once);
- lost        acked to the POS and not stored: the one outcome the product promises never happens;
- duplicated  stored more than once;
- unexpected  stored but never sent by this POS, refused to it with a NAK, or stored with
              content (amount) other than what was acked.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cbor2

from daozhang.errors import InputError, StoreError
from daozhang.store.engine import Store

KEY_FIELDS = ("mid", "tid", "bat", "trc", "st")
OUTCOMES = ("acked", "nak", "unknown")

ReceiptKey = tuple[str, str, str, str, str]


@dataclass(frozen=True)
class Sent:
    """One receipt frame a POS sent to its board, and what came back."""

    dev: str
    key: ReceiptKey
    amt: int
    outcome: str  # acked | nak | unknown
    seq: int | None = None


@dataclass(frozen=True)
class Stored:
    """One receipt record in the store."""

    dev: str
    epoch: int
    seq: int
    key: ReceiptKey
    amt: int


@dataclass
class DeviceResult:
    dev: str
    sent: int = 0  # distinct receipts the POS sent
    acked: int = 0
    stored: int = 0  # stored records (copies count)
    ok: int = 0
    recovered: int = 0
    lost: int = 0
    duplicated: int = 0
    unexpected: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def valid(self) -> bool:
        return not (self.lost or self.duplicated or self.unexpected)


@dataclass
class CheckResult:
    devices: list[DeviceResult]

    def total(self, name: str) -> int:
        return sum(int(getattr(d, name)) for d in self.devices)

    @property
    def valid(self) -> bool:
        return all(d.valid for d in self.devices)


def receipt_key(body: dict[str, Any], where: str) -> ReceiptKey:
    try:
        return (
            str(body["mid"]),
            str(body["tid"]),
            str(body["bat"]),
            str(body["trc"]),
            str(body["st"]),
        )
    except KeyError as exc:
        raise InputError(f"{where}: receipt has no {exc.args[0]!r}") from None


def check(sent: Iterable[Sent], stored: Iterable[Stored], max_problems: int = 5) -> CheckResult:
    # Several sends of one receipt (the POS resends what it saw no answer for) collapse to one:
    # acked if any send was acked; nak only if every send was refused.
    truth: dict[str, dict[ReceiptKey, list[Sent]]] = defaultdict(lambda: defaultdict(list))
    for s in sent:
        truth[s.dev][s.key].append(s)
    kept: dict[str, dict[ReceiptKey, list[Stored]]] = defaultdict(lambda: defaultdict(list))
    for r in stored:
        kept[r.dev][r.key].append(r)

    results = []
    for dev in sorted(set(truth) | set(kept)):
        res = DeviceResult(dev)
        sends, copies = truth.get(dev, {}), kept.get(dev, {})
        res.sent = len(sends)
        res.stored = sum(len(c) for c in copies.values())

        def note(message: str, res: DeviceResult = res) -> None:
            if len(res.problems) < max_problems:
                res.problems.append(message)

        for key in sorted(set(sends) | set(copies)):
            attempts, found = sends.get(key, []), copies.get(key, [])
            outcomes = {a.outcome for a in attempts}
            acked = [a for a in attempts if a.outcome == "acked"]
            label = "/".join(key)
            if acked:
                res.acked += 1
            if len(found) > 1:
                res.duplicated += 1
                where = ", ".join(f"{c.epoch}:{c.seq}" for c in found)
                note(f"duplicated {label}: stored {len(found)} times (epoch:seq {where})")
            if acked and not found:
                res.lost += 1
                note(f"lost {label}: acked to the POS as seq {acked[0].seq}, not in the store")
            elif not attempts and found:
                res.unexpected += 1
                note(f"unexpected {label}: stored as seq {found[0].seq}, never sent by the POS")
            elif found and outcomes == {"nak"}:
                res.unexpected += 1
                note(f"unexpected {label}: stored as seq {found[0].seq}, but refused to the POS")
            elif found and found[0].amt != attempts[0].amt:
                res.unexpected += 1
                note(
                    f"unexpected {label}: stored amount {found[0].amt}, "
                    f"the POS sent {attempts[0].amt}"
                )
            elif len(found) == 1:
                if acked:
                    res.ok += 1
                else:
                    res.recovered += 1
        results.append(res)
    return CheckResult(results)


# --- ground truth file (JSON lines, one per send) and the store side -----------------------


def write_truth(path: Path, sent: Iterable[Sent]) -> int:
    n = 0
    with path.open("w", encoding="utf-8") as f:
        for s in sent:
            row = {
                "dev": s.dev,
                **dict(zip(KEY_FIELDS, s.key, strict=True)),
                "amt": s.amt,
                "outcome": s.outcome,
                "seq": s.seq,
            }
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
            n += 1
    return n


def read_truth(path: Path) -> Iterator[Sent]:
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise InputError(f"ground truth {path}: cannot read: {exc.strerror}") from None
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        where = f"ground truth {path}, line {number}"
        try:
            row = json.loads(line)
        except ValueError as exc:
            raise InputError(f"{where}: not JSON: {exc}") from None
        if not isinstance(row, dict):
            raise InputError(f"{where}: expected an object")
        outcome = row.get("outcome")
        if outcome not in OUTCOMES:
            raise InputError(f"{where}: outcome {outcome!r} is not one of {', '.join(OUTCOMES)}")
        seq = row.get("seq")
        amt = row.get("amt")
        if not isinstance(amt, int) or not (seq is None or isinstance(seq, int)):
            raise InputError(f"{where}: amt must be an integer and seq an integer or null")
        yield Sent(str(row.get("dev", "")), receipt_key(row, where), amt, outcome, seq)


def stored_receipts(store: Store) -> Iterator[Stored]:
    """Every receipt record the collector accepted (`records`, DESIGN interfaces C)."""
    try:
        with store.transaction() as tx:
            rows = tx.execute(
                "SELECT dev, epoch, seq, raw FROM records WHERE kind = ? ORDER BY dev, epoch, seq",
                ("r",),
            )
    except Exception as exc:  # noqa: BLE001 -- sqlite3 or psycopg: the engine's own error types
        raise StoreError(
            f"cannot read receipts from {store.url}: {exc} (is it a collector's database?)"
        ) from None
    for dev, epoch, seq, raw in rows:
        where = f"records({dev}, {epoch}, {seq})"
        try:
            record = cbor2.loads(bytes(raw))
            body = record["b"]
        except (ValueError, LookupError, TypeError, cbor2.CBORDecodeError) as exc:
            raise InputError(f"{where}: raw is not a CBOR record with a body: {exc}") from None
        yield Stored(dev, int(epoch), int(seq), receipt_key(body, where), int(body.get("amt", 0)))


# --- the table ---------------------------------------------------------------------------

COLUMNS = ("sent", "acked", "stored", "ok", "recovered", "lost", "duplicated", "unexpected")


def render(result: CheckResult, only_problems: bool = False) -> str:
    """A plain-text table: one row per device, a total row, then the first problems."""
    rows = [d for d in result.devices if not (only_problems and d.valid)]
    header = ("device", *COLUMNS, "")
    body = [
        (d.dev, *(str(getattr(d, c)) for c in COLUMNS), "ok" if d.valid else "FAIL") for d in rows
    ]
    total = ("total", *(str(result.total(c)) for c in COLUMNS), "ok" if result.valid else "FAIL")
    widths = [max(len(r[i]) for r in (header, *body, total)) for i in range(len(header))]

    def line(cells: tuple[str, ...]) -> str:
        first = cells[0].ljust(widths[0])
        rest = [c.rjust(w) for c, w in zip(cells[1:-1], widths[1:-1], strict=True)]
        return "  ".join([first, *rest, cells[-1]]).rstrip()

    rule = "-" * len(line(header))
    out = [line(header), rule, *(line(r) for r in body), rule, line(total)]
    for d in result.devices:
        for problem in d.problems:
            out.append(f"  {d.dev}: {problem}")
    return "\n".join(out)
