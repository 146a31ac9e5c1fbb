"""Do network-caused findings cite what the terminal saw around the sale? (issue 23)

Reads `findings.json` as a user would: each network-caused finding should cite a diagnostic
(`diag_event` evidence: an outage, a signal reading) whose time overlaps the 15 minutes either
side of the sale, and no outage that does not. Times in the evidence are Beijing time as the
report prints them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from daozhang.correlate.finding import NETWORK_CAUSES
from daozhang.units import BEIJING

WINDOW_S = 900
_STAMP = r"(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d)"
_OUTAGE = re.compile(rf"link down {_STAMP} \.\. (?:{_STAMP}|still down)")
_SIGNAL = re.compile(rf"signal at {_STAMP}")


def _t(text: str) -> int:
    return int(datetime.strptime(text, "%Y-%m-%d %H:%M:%S").replace(tzinfo=BEIJING).timestamp())


@dataclass
class EvidenceCheck:
    network: int = 0  # network-caused findings with a sale time
    citing: int = 0  # of them, citing a diagnostic within the window
    outside: list[str] = field(default_factory=list)  # cited outages that miss the window

    @property
    def share(self) -> float:
        return self.citing / self.network if self.network else 1.0

    def line(self) -> str:
        return (
            f"network-caused findings citing a diagnostic within ±15 min of the sale: "
            f"{self.citing} of {self.network} ({self.share:.0%}); citing an outage outside "
            f"that window: {len(self.outside)}"
        )


def check(findings: list[dict[str, Any]]) -> EvidenceCheck:
    result = EvidenceCheck()
    for f in findings:
        if f.get("cause") not in NETWORK_CAUSES or not f.get("txn_time"):
            continue
        result.network += 1
        lo, hi = _t(f["txn_time"]) - WINDOW_S, _t(f["txn_time"]) + WINDOW_S
        near = False
        for item in f.get("evidence", ()):
            if item.get("source") != "diag_event":
                continue
            fact = item["fact"]
            outage = _OUTAGE.search(fact)
            if outage is not None:
                start = _t(outage.group(1))
                end = _t(outage.group(2)) if outage.group(2) else 2**62
                if start <= hi and end >= lo:
                    near = True
                else:
                    result.outside.append(f"{f['dev']} {f['txn_time']}: {fact}")
                continue
            signal = _SIGNAL.search(fact)
            if signal is not None and lo <= _t(signal.group(1)) <= hi:
                near = True
        result.citing += near
    return result
