"""Record streams the collector tests upload: receipts with a diagnostic every seventh seq."""

from __future__ import annotations

from daozhang.lab.devicewire import receipt_body, record_bytes


def stream(n: int, dev_no: int = 0) -> list[bytes]:
    mid = f"8983100481{dev_no:05d}"
    return [
        record_bytes(s, "r", receipt_body(s, mid=mid), t=1_780_000_000 + s, up=s)
        if s % 7
        else record_bytes(s, "d", {"ev": "probe", "rtt_ms": s % 300}, t=1_780_000_000 + s)
        for s in range(1, n + 1)
    ]
