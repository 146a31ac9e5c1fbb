"""The POS main board: sends receipts one at a time and waits for the agent's answer.

Stop-and-wait, as terminal links are: a receipt frame goes out and the POS waits for ACK (the
seq it was stored under) or NAK (why not). Without an answer in time, or when the link drops
(board reset, power cut), it reconnects and sends the same frame again (same id): the agent
answers a repeat with the original seq. A retryable NAK (`full`, a damaged frame, a flash
error) keeps the receipt for later; a refusal (`schema:*`, `sensitive:*`) is final.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from daozhang.lab.pos.ledger import Ledger, natural_key
from daozhang.lab.pos.link import LinkClosed, TerminalLink

RETRYABLE = ("full", "crc", "len", "timeout", "io", "cbor")


@dataclass
class Outcome:
    body: dict[str, Any]
    seq: int | None = None
    epoch: int | None = None
    dup: bool = False
    refused: str | None = None
    attempts: int = 0


@dataclass
class PosStats:
    sent: int = 0
    acked: int = 0
    dup_acks: int = 0
    refused: int = 0
    resends: int = 0
    reconnects: int = 0
    naks: dict[str, int] = field(default_factory=dict)


class GaveUp(Exception):
    """No answer for a receipt within the time allowed; it stays unanswered in the ledger."""


class PosSimulator:
    def __init__(
        self,
        link: TerminalLink,
        ledger: Ledger | None = None,
        *,
        ack_timeout_s: float = 2.0,
        give_up_s: float = 60.0,
        retry_delay_s: float = 0.2,
        out: Callable[[str], None] | None = None,
        first_id: int = 1,
    ) -> None:
        self.link = link
        self.ledger = ledger
        self.ack_timeout_s = ack_timeout_s
        self.give_up_s = give_up_s
        self.retry_delay_s = retry_delay_s
        self.out = out or (lambda line: None)
        self.next_id = first_id
        self.stats = PosStats()

    def _connect(self, deadline: float) -> None:
        while not self.link.is_open:
            try:
                self.link.open()
                return
            except LinkClosed:
                if time.monotonic() > deadline:
                    raise GaveUp(f"terminal link {self.link.port}: no connection") from None
                time.sleep(self.retry_delay_s)
                self.stats.reconnects += 1

    def send(self, body: dict[str, Any], msg_id: int | None = None) -> Outcome:
        """Sends one receipt until it is ACKed or refused. Raises GaveUp after give_up_s."""
        if msg_id is None:
            msg_id = self.next_id
            self.next_id += 1
            if self.ledger:
                self.ledger.sent(msg_id, body)
        outcome = Outcome(body)
        deadline = time.monotonic() + self.give_up_s
        last = "no answer"  # what the terminal said last, for the give-up message
        while True:
            if time.monotonic() > deadline:
                raise GaveUp(
                    f"receipt trc={body.get('trc')}: not ACKed in {self.give_up_s:g} s"
                    f" ({outcome.attempts} sends; last: {last})"
                )
            try:
                self._connect(deadline)
                if outcome.attempts:
                    self.stats.resends += 1
                outcome.attempts += 1
                self.stats.sent += 1
                self.link.send(b"R", {"id": msg_id, "r": body})
                reply = self._answer(msg_id)
            except LinkClosed as exc:
                last = f"link closed ({exc})"
                self.stats.reconnects += 1
                time.sleep(self.retry_delay_s)
                continue
            if reply is None:
                last = "no answer"
                continue  # no answer: the same frame again
            kind, message = reply
            if kind == b"A":
                return self._acked(msg_id, outcome, message)
            why = str(message.get("why", "?"))
            self.stats.naks[why] = self.stats.naks.get(why, 0) + 1
            if why in RETRYABLE:
                last = f"NAK {why}" + (" (the terminal's journal is full)" if why == "full" else "")
                self.out(f"NAK  {why:<10} trc={body.get('trc')} (kept; sending again)")
                time.sleep(self.retry_delay_s if why != "full" else max(1.0, self.retry_delay_s))
                continue
            outcome.refused = why
            self.stats.refused += 1
            if self.ledger:
                self.ledger.refused(msg_id, body, why)
            self.out(f"NAK  {why:<10} trc={body.get('trc')} (refused)")
            return outcome

    def _answer(self, msg_id: int) -> tuple[bytes, dict[str, Any]] | None:
        deadline = time.monotonic() + self.ack_timeout_s
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            reply = self.link.receive(left)
            if reply is None:
                return None
            kind, message = reply
            if kind == b"!" or not isinstance(message, dict):
                continue  # a damaged reply: wait for the timeout, then send again
            if message.get("id") in (msg_id, None):
                return kind, message
            # An answer to an earlier send of another frame (it came late): not ours.

    def _acked(self, msg_id: int, outcome: Outcome, message: dict[str, Any]) -> Outcome:
        outcome.seq = int(message["seq"])
        outcome.epoch = message.get("epoch")
        outcome.dup = bool(message.get("dup"))
        self.stats.acked += 1
        if outcome.dup:
            self.stats.dup_acks += 1
        if self.ledger:
            self.ledger.acked(msg_id, outcome.body, message)
        body = outcome.body
        self.out(
            f"ACK  seq={outcome.seq:<6} trc={body['trc']} {body['typ']:<12} {body['st']:<16} "
            f"{body['amt'] / 100:>9.2f} {body.get('cur', 'CNY')}"
            + ("  (repeat)" if outcome.dup else "")
        )
        return outcome

    def resend_unanswered(self) -> int:
        """After a restart of the simulator: sends again what the ledger shows unanswered."""
        if not self.ledger:
            return 0
        pending = Ledger.unanswered(self.ledger.path)
        for msg_id, body in pending:
            self.next_id = max(self.next_id, msg_id + 1)
            self.send(body, msg_id)
        return len(pending)

    def run(
        self, source: Iterable[dict[str, Any]], count: int, rate_per_s: float = 0
    ) -> list[Outcome]:
        outcomes = []
        for body in _take(source, count):
            started = time.monotonic()
            outcomes.append(self.send(body))
            if rate_per_s > 0:
                time.sleep(max(0.0, 1 / rate_per_s - (time.monotonic() - started)))
        return outcomes


def _take(source: Iterable[dict[str, Any]], count: int) -> Iterator[dict[str, Any]]:
    for n, body in enumerate(source):
        if n >= count:
            return
        yield body


def keys_of(outcomes: Iterable[Outcome]) -> list[tuple[tuple[str, str, str, str], str]]:
    return [(natural_key(o.body), str(o.body["st"])) for o in outcomes]
