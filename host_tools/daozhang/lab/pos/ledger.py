"""What the POS was told: the ground truth of which receipt the agent acknowledged as stored.

An append-only JSON Lines file, one event per line (`sent`, `acked`, `refused`), flushed and
fsynced per line: after a crash of the simulator itself, every ACK it printed is in the file.
Full PANs never reach it (masked like the agent masks them).
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from daozhang.errors import InputError

NaturalKey = tuple[str, str, str, str]


def mask_pan(pan: str) -> str:
    if pan.isdigit() and 13 <= len(pan) <= 19:
        return pan[:6] + "*" * (len(pan) - 10) + pan[-4:]
    return pan


def natural_key(body: dict[str, Any]) -> NaturalKey:
    return (str(body["mid"]), str(body["tid"]), str(body["bat"]), str(body["trc"]))


@dataclass(frozen=True)
class LedgerEntry:
    """One receipt state the agent acknowledged: stored under (epoch, seq)."""

    key: NaturalKey
    st: str
    seq: int
    epoch: int | None
    dup: bool
    body: dict[str, Any]
    at: float


class Ledger:
    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file = self.path.open("a", encoding="utf-8")

    def close(self) -> None:
        self._file.close()

    def _write(self, event: dict[str, Any]) -> None:
        self._file.write(json.dumps(event, ensure_ascii=False, sort_keys=True) + "\n")
        self._file.flush()
        os.fsync(self._file.fileno())

    def sent(self, msg_id: int, body: dict[str, Any]) -> None:
        self._write({"ev": "sent", "id": msg_id, "at": time.time(), "body": _safe(body)})

    def acked(self, msg_id: int, body: dict[str, Any], reply: dict[str, Any]) -> None:
        self._write(
            {
                "ev": "acked",
                "id": msg_id,
                "at": time.time(),
                "seq": reply.get("seq"),
                "epoch": reply.get("epoch"),
                "dup": bool(reply.get("dup")),
                "body": _safe(body),
            }
        )

    def refused(self, msg_id: int, body: dict[str, Any], why: str) -> None:
        self._write(
            {"ev": "refused", "id": msg_id, "at": time.time(), "why": why, "body": _safe(body)}
        )

    # -- reading --------------------------------------------------------------------------
    @staticmethod
    def read(path: Path) -> list[dict[str, Any]]:
        events = []
        try:
            lines = Path(path).read_text(encoding="utf-8").splitlines()
        except OSError as exc:
            raise InputError(f"ledger {path}: {exc.strerror}") from None
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                event = json.loads(line)
            except ValueError:
                if number == len(lines):
                    continue  # a line torn by a crash of the simulator: never acked
                raise InputError(f"ledger {path}, line {number}: not JSON") from None
            events.append(event)
        return events

    @classmethod
    def acked_entries(cls, path: Path) -> list[LedgerEntry]:
        out = []
        for event in cls.read(path):
            if event.get("ev") == "acked":
                body = event["body"]
                out.append(
                    LedgerEntry(
                        natural_key(body),
                        str(body["st"]),
                        int(event["seq"]),
                        event.get("epoch"),
                        bool(event.get("dup")),
                        body,
                        float(event["at"]),
                    )
                )
        return out

    @classmethod
    def unanswered(cls, path: Path) -> list[tuple[int, dict[str, Any]]]:
        """Receipts sent but neither acked nor refused: to be sent again, oldest first."""
        open_ids: dict[int, dict[str, Any]] = {}
        for event in cls.read(path):
            if event.get("ev") == "sent":
                open_ids[int(event["id"])] = event["body"]
            elif event.get("ev") in ("acked", "refused"):
                open_ids.pop(int(event["id"]), None)
        return sorted(open_ids.items())


def _safe(body: dict[str, Any]) -> dict[str, Any]:
    if "pan" in body and isinstance(body["pan"], str):
        return {**body, "pan": mask_pan(body["pan"])}
    return body
