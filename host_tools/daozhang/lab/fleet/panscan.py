"""After a fleet run: scan every artefact it left for full PANs and track data (issue 9).

Everything in the run's folder is scanned by `daozhang.security.scan` in one pass (so ids
learnt from the database's id columns hold for the logs and reports too): the SQLite
database with its WAL, every board's LittleFS image read raw (free blocks included), every
log (boards, collectors, broker, proxies), the POS ledgers, the reports and the settlement
files. The files are grouped by kind only to say how much of each was scanned.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from daozhang.security.scan import iter_files, scan

KINDS = ("database", "flash image", "log", "POS ledger", "report", "settlement", "other")


def kind_of(out: Path, path: Path) -> str:
    rel = path.relative_to(out)
    top = rel.parts[0] if len(rel.parts) > 1 else ""
    name = path.name
    if ".db" in name and top == "":
        return "database"  # daozhang.db, -wal, -shm
    if path.suffix == ".img":
        return "flash image"
    if top == "logs" or path.suffix in (".log", ".out", ".err"):
        return "log"
    if top == "pos":
        return "POS ledger"
    if top == "settlement":
        return "settlement"
    if path.suffix in (".html", ".json", ".csv", ".txt", ".jsonl"):
        return "report"
    return "other"


@dataclass
class RunScan:
    files: dict[str, int] = field(default_factory=lambda: dict.fromkeys(KINDS, 0))
    bytes: dict[str, int] = field(default_factory=lambda: dict.fromkeys(KINDS, 0))
    findings: list[str] = field(default_factory=list)

    def render(self) -> str:
        lines = [f"{'kind':<12} {'files':>6} {'bytes':>12}"]
        for kind in KINDS:
            if self.files[kind]:
                lines.append(f"{kind:<12} {self.files[kind]:>6} {self.bytes[kind]:>12}")
        total_files, total_bytes = sum(self.files.values()), sum(self.bytes.values())
        lines.append(f"{'total':<12} {total_files:>6} {total_bytes:>12}")
        lines.append(f"{len(self.findings)} finding(s) (full PAN or track data)")
        return "\n".join(lines + self.findings)


def scan_run(out: Path) -> RunScan:
    """Scan the whole run folder `out`; findings are masked (`file:offset: full PAN 6225...`)."""
    result = RunScan()
    for path in iter_files([out]):
        kind = kind_of(out, path)
        result.files[kind] += 1
        result.bytes[kind] += path.stat().st_size
    report = scan([out])
    result.findings = [f.describe(str(p.relative_to(out))) for p, f in report.findings]
    if report.files != sum(result.files.values()):
        raise RuntimeError(f"{out}: files changed while scanning")
    return result
