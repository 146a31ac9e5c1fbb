"""Realistic POS transactions (DESIGN §1.2): what a terminal's main board reports.

A `TransactionSource` yields receipt bodies in the order a terminal produces them: a sale and
its response; a timeout (`no_response`) followed by the reversal's states; voids and refunds
pointing at their original by trace and RRN; pre-authorisations and their completions; QR
payments; offline approvals uploaded later. The same seed gives the same stream.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

Receipt = dict[str, Any]

# (weight, flow) — a busy convenience-store terminal: mostly approved card and QR sales.
FLOWS: list[tuple[int, str]] = [
    (52, "sale"),
    (20, "qr_sale"),
    (6, "declined"),
    (5, "timeout_reversed"),
    (1, "timeout_reversal_failed"),
    (1, "timeout_unreversed_reswipe"),
    (4, "void"),
    (3, "refund"),
    (3, "preauth_done"),
    (1, "preauth_open"),
    (4, "offline"),
]
BINS = ["622848", "621700", "436742", "625807", "622202", "518710", "404119"]
ENTRY_MODES = ["051", "071", "021", "072"]  # chip, contactless, swipe, QuickPass
DECLINE_CODES = ["51", "55", "05", "61", "14"]


@dataclass
class Merchant:
    mid: str = "898440358120001"
    tid: str = "12345678"
    settle_mode: str = "T1"

    def __post_init__(self) -> None:
        if len(self.mid) != 15 or len(self.tid) != 8:
            raise ValueError("merchant id is 15 characters and terminal id 8")


@dataclass
class _Done:
    """An approved transaction a later void, refund or completion can point at."""

    trc: str
    rrn: str
    amt: int
    pan: str | None
    typ: str


@dataclass
class TransactionSource:
    merchant: Merchant = field(default_factory=Merchant)
    seed: int = 1
    start_time: int = 1_763_700_000  # unix s: the terminal's clock at the first transaction
    batch: int = 1
    full_pan_every: int = 0  # every Nth card receipt carries a full PAN (a POS bug to catch)
    last_trace: int = 0  # the terminal's trace number before this stream's first transaction

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)
        self.trace = self.last_trace
        self.now = self.start_time
        self.cards = 0
        self.done: list[_Done] = []
        self.open_preauths: list[_Done] = []

    def __iter__(self) -> Iterator[Receipt]:
        weights = [w for w, _ in FLOWS]
        names = [n for _, n in FLOWS]
        while True:
            flow = self.rng.choices(names, weights)[0]
            yield from getattr(self, "_" + flow)()

    # -- building blocks ------------------------------------------------------------------
    def _next_trace(self) -> str:
        self.trace = self.trace % 999_999 + 1
        self.now += self.rng.randint(20, 600)  # seconds between transactions
        return f"{self.trace:06d}"

    def _rrn(self) -> str:
        return f"{self.now % 1_000_000:06d}{self.rng.randint(0, 999_999):06d}"

    def _card(self) -> Receipt:
        self.cards += 1
        digits = self.rng.choice([16, 16, 16, 19])
        number = self.rng.choice(BINS) + "".join(
            str(self.rng.randint(0, 9)) for _ in range(digits - 6)
        )
        full = bool(self.full_pan_every) and self.cards % self.full_pan_every == 0
        pan = number if full else number[:6] + "*" * (digits - 10) + number[-4:]
        return {
            "pan": pan,
            "ck": self.rng.choice(["D", "D", "D", "C", "U"]),
            "ent": self.rng.choice(ENTRY_MODES),
        }

    def _base(self, typ: str, trc: str, amt: int) -> Receipt:
        m = self.merchant
        return {
            "mid": m.mid,
            "tid": m.tid,
            "bat": f"{self.batch:06d}",
            "trc": trc,
            "typ": typ,
            "ch": "card",
            "amt": amt,
            "cur": "CNY",
            "lt": self.now,
        }

    def _amount(self) -> int:
        # fen; convenience-store baskets with a long tail
        return int(self.rng.lognormvariate(8.3, 1.0)) + 100

    def _settle(self, receipt: Receipt) -> None:
        receipt["sd"] = _mmdd(self.now + 86_400 if self.merchant.settle_mode == "T1" else self.now)
        receipt["sm"] = self.merchant.settle_mode

    def _approve(self, receipt: Receipt) -> Receipt:
        receipt.update(st="approved", rc="00", rrn=self._rrn())
        receipt["auth"] = f"{self.rng.randint(0, 999_999):06d}"
        self._settle(receipt)
        return receipt

    def _remember(self, receipt: Receipt) -> None:
        self.done.append(
            _Done(
                receipt["trc"], receipt["rrn"], receipt["amt"], receipt.get("pan"), receipt["typ"]
            )
        )
        del self.done[:-50]

    # -- flows ----------------------------------------------------------------------------
    def _sale(self) -> Iterator[Receipt]:
        receipt = self._approve(
            {**self._base("sale", self._next_trace(), self._amount()), **self._card()}
        )
        self._remember(receipt)
        yield receipt

    def _qr_sale(self) -> Iterator[Receipt]:
        receipt = self._base("sale", self._next_trace(), self._amount())
        receipt["ch"] = "qr"
        # DESIGN §2.3: the merchant's order number and the wallet's 28-digit transaction id,
        # the keys a QR sale's row in WeChat's or Alipay's bill carries instead of an RRN.
        receipt["ord"] = f"DZ{self.now}-{receipt['trc']}"
        receipt["xid"] = f"4200{self.now:010d}{receipt['trc']}{self.batch:08d}"
        self._approve(receipt)
        self._remember(receipt)
        yield receipt

    def _declined(self) -> Iterator[Receipt]:
        receipt = {**self._base("sale", self._next_trace(), self._amount()), **self._card()}
        receipt.update(st="declined", rc=self.rng.choice(DECLINE_CODES), rrn=self._rrn())
        yield receipt

    def _no_response(self) -> Receipt:
        receipt = {**self._base("sale", self._next_trace(), self._amount()), **self._card()}
        receipt["st"] = "no_response"
        return receipt

    def _timeout_reversed(self) -> Iterator[Receipt]:
        first = self._no_response()
        yield dict(first)
        yield {**first, "st": "reversal_pending", "rv": "98"}
        yield {**first, "st": "reversed", "rv": "98"}

    def _timeout_reversal_failed(self) -> Iterator[Receipt]:
        first = self._no_response()
        yield dict(first)
        yield {**first, "st": "reversal_pending", "rv": "98"}
        yield {**first, "st": "reversal_failed", "rv": "98"}

    def _timeout_unreversed_reswipe(self) -> Iterator[Receipt]:
        # The cashier swipes the same card for the same amount again: a double-charge risk.
        first = self._no_response()
        yield dict(first)
        again = self._approve({**first, "trc": self._next_trace(), "lt": self.now})
        self._remember(again)
        yield again

    def _void(self) -> Iterator[Receipt]:
        sales = [d for d in self.done if d.typ == "sale"]
        if not sales:
            yield from self._sale()
            return
        original = self.rng.choice(sales)
        self.done.remove(original)
        void = self._base("void", self._next_trace(), original.amt)
        if original.pan is None:
            void["ch"] = "qr"
        else:
            void["pan"] = original.pan[:6] + "*" * (len(original.pan) - 10) + original.pan[-4:]
        void.update(otrc=original.trc, orrn=original.rrn)
        yield self._approve(void)
        # The terminal's batch now shows the sale as voided: a later state of the same key.
        yield {
            **self._base("sale", original.trc, original.amt),
            **({"ch": "qr"} if original.pan is None else {"pan": void["pan"]}),
            "st": "voided",
            "rrn": original.rrn,
            "lt": self.now,
        }

    def _refund(self) -> Iterator[Receipt]:
        if not self.done:
            yield from self._sale()
            return
        original = self.rng.choice(self.done)
        refund = self._base("refund", self._next_trace(), max(100, original.amt // 2))
        if original.pan is None:
            refund["ch"] = "qr"
        else:
            refund.update(self._card())
            refund["pan"] = original.pan[:6] + "*" * (len(original.pan) - 10) + original.pan[-4:]
        refund.update(otrc=original.trc, orrn=original.rrn)
        yield self._approve(refund)

    def _preauth(self) -> Receipt:
        receipt = self._approve(
            {**self._base("preauth", self._next_trace(), self._amount() * 3), **self._card()}
        )
        receipt.pop("sd")
        receipt.pop("sm")  # a pre-authorisation holds funds; nothing settles until completion
        return receipt

    def _preauth_done(self) -> Iterator[Receipt]:
        hold = self._preauth()
        yield hold
        done = self._base("preauth_done", self._next_trace(), hold["amt"] * 4 // 5)
        done.update(pan=hold["pan"], ck=hold["ck"], ent=hold["ent"])
        done.update(otrc=hold["trc"], orrn=hold["rrn"])
        yield self._approve(done)

    def _preauth_open(self) -> Iterator[Receipt]:
        yield self._preauth()  # never completed

    def _offline(self) -> Iterator[Receipt]:
        receipt = {
            **self._base("sale", self._next_trace(), self._amount() // 4 + 100),
            **self._card(),
        }
        receipt.update(st="offline_pending", auth=f"{self.rng.randint(0, 999_999):06d}")
        yield dict(receipt)
        receipt.update(st="offline_sent", rc="00", rrn=self._rrn())
        self._settle(receipt)
        yield receipt


def _mmdd(unix_s: int) -> str:
    import time

    tm = time.gmtime(unix_s + 8 * 3600)  # settlement dates are Beijing dates
    return f"{tm.tm_mon:02d}{tm.tm_mday:02d}"
