"""Score correlation against a generated scenario's ground truth (shared by tests and demo)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from daozhang.correlate.classify import Finding
from daozhang.correlate.engine import analyse
from daozhang.lab.sim.load import load
from daozhang.lab.sim.scenario import generate
from daozhang.schema import open_database


def label(status: str, cause: str) -> str:
    return cause or status


def score(url: str, seed: int, workdir: Path, cases: int = 30) -> Counter[tuple[str, str]]:
    """(truth label, predicted label) counts for cause and for data, one seed."""
    sc = generate(seed, cases=cases)
    pairs: Counter[tuple[str, str]] = Counter()
    with open_database(url) as store:
        load(store, sc, workdir / f"files-{seed}")
        findings: list[Finding] = analyse(store, sc.as_of).findings
    got = {("r", f.mid, f.tid, f.bat, f.trc): f for f in findings if f.kind == "transaction"}
    for key, truth in sc.truth.items():
        f = got.get(key)
        predicted = label(f.status, f.cause) if f else "(no finding)"
        pairs[(label(truth.status, truth.cause), predicted)] += 1
        pairs[("data:" + truth.data, "data:" + (f.data if f else "(no finding)"))] += 1
    for key in got.keys() - sc.truth.keys():
        pairs[("(none expected)", label(got[key].status, got[key].cause))] += 1
    return pairs


def matrix(pairs: Counter[tuple[str, str]]) -> tuple[str, dict[str, float]]:
    truths = sorted({t for t, _ in pairs})
    predicted = sorted({p for _, p in pairs})
    width = max(len(x) for x in truths + predicted) + 1
    lines = ["truth \\ predicted".ljust(width) + "".join(p[:9].rjust(10) for p in predicted)]
    accuracy = {}
    for t in truths:
        row = [pairs.get((t, p), 0) for p in predicted]
        total = sum(row)
        accuracy[t] = pairs.get((t, t), 0) / total if total else 0.0
        lines.append(
            t.ljust(width)
            + "".join(str(n).rjust(10) for n in row)
            + f"   n={total} ok={accuracy[t]:.1%}"
        )
    return "\n".join(lines), accuracy
