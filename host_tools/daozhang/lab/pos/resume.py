"""Where a terminal's last simulator run stopped: its next message id, trace and clock.

A real terminal's trace number (凭证号) and clock run on across power cycles and batches. A
simulator run that started again at trace 000001 and the same clock sent the first run's
natural keys (mid, tid, batch, trace) again, stored as later states of the first run's sales.
The next run continues from the ledger (`--ledger`) and from what the board keeps
(`pos.json` in a virtual board's state folder, for `--board`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from daozhang.lab.pos.transactions import Merchant


@dataclass(frozen=True)
class Resume:
    last_id: int = 0  # the ledger's last message id
    trace: int = 0  # the terminal's last trace number
    clock: int = 0  # the terminal's clock at its last transaction (unix s)

    def later(self, other: Resume) -> Resume:
        return Resume(
            max(self.last_id, other.last_id),
            max(self.trace, other.trace),
            max(self.clock, other.clock),
        )

    @classmethod
    def from_ledger(cls, events: list[dict[str, Any]], merchant: Merchant) -> Resume:
        last_id = trace = clock = 0
        for event in events:
            if "id" in event:
                last_id = max(last_id, int(event["id"]))
            body = event.get("body") or {}
            if body.get("mid") == merchant.mid and body.get("tid") == merchant.tid:
                trace = max(trace, int(body.get("trc", 0)))
                clock = max(clock, int(body.get("lt", 0)))
        return cls(last_id, trace, clock)

    @classmethod
    def from_board(cls, path: Path, merchant: Merchant) -> Resume:
        try:
            kept = json.loads(path.read_text())[f"{merchant.mid}/{merchant.tid}"]
            return cls(0, int(kept["trace"]), int(kept["clock"]))
        except (OSError, ValueError, KeyError, TypeError):
            return cls()  # never run on this board (or its file torn): from the start

    @staticmethod
    def keep_on_board(path: Path, merchant: Merchant, trace: int, clock: int) -> None:
        try:
            kept = json.loads(path.read_text())
        except (OSError, ValueError):
            kept = {}
        kept[f"{merchant.mid}/{merchant.tid}"] = {"trace": trace, "clock": clock}
        tmp = path.with_suffix(".new")
        tmp.write_text(json.dumps(kept, sort_keys=True))
        tmp.replace(path)
