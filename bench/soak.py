"""Soak: 50 virtual boards, 100,000 receipts, faults all along (scenarios/soak.toml).

Not part of the test suite (about an hour on the 2-core sandbox). It runs the whole fleet
with `daozhang sim run`, then, as the baseline in the same run, stores the same receipts
straight through the collector's ingest path (no boards, no network, no faults) into a fresh
database, and prints:
- receipts sent by the POS simulators, lost / duplicated / unexpected (must be 0 / 0 / 0);
- end-to-end time (traffic + drain) against the baseline's ingest time;
- correlation against the ground truth.

    .venv/bin/python bench/soak.py [--scenario FILE] [--out DIR]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import cbor2
from daozhang.collector.ingest import ingest_batch
from daozhang.lab.fleet import scenario as scenario_mod
from daozhang.lab.fleet.runner import run_scenario
from daozhang.schema import open_database

SOAK = Path(scenario_mod.__file__).with_name("scenarios") / "soak.toml"


def baseline(out: Path, truth_file: Path) -> tuple[int, float]:
    """The same receipts, stored by the collector's own ingest path in batches of 50."""
    from daozhang.lab.fleet.invariants import read_truth

    by_dev: dict[str, list[dict[str, object]]] = {}
    for sent in read_truth(truth_file):
        mid, tid, bat, trc, st = sent.key
        body = {
            "mid": mid,
            "tid": tid,
            "bat": bat,
            "trc": trc,
            "st": st,
            "typ": "sale",
            "amt": sent.amt,
            "cur": "CNY",
        }
        by_dev.setdefault(sent.dev, []).append(body)
    url = f"sqlite:///{out / 'baseline.db'}"
    n = 0
    started = time.perf_counter()
    with open_database(url) as store:
        for dev, bodies in by_dev.items():
            for start in range(0, len(bodies), 50):
                recs = [
                    {"seq": start + i + 1, "k": "r", "t": 1795000000, "boot": 1, "up": i, "b": b}
                    for i, b in enumerate(bodies[start : start + 50])
                ]
                payload = cbor2.dumps({"v": 1, "dev": dev, "epoch": 1, "boot": 1, "recs": recs})
                with store.transaction() as tx:
                    n += ingest_batch(tx, dev, payload, time.time()).stored
    return n, time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenario", type=Path, default=SOAK)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    out = args.out or Path(tempfile.mkdtemp(prefix="daozhang-soak-"))
    scenario = scenario_mod.load(args.scenario)
    started = time.perf_counter()
    result = run_scenario(scenario, out / "run")
    elapsed = time.perf_counter() - started
    check = result.invariants
    if check is None:
        print("soak: the run produced no invariant check", file=sys.stderr)
        return 1
    n_base, t_base = baseline(out, out / "run" / "truth.jsonl")
    sent = check.total("sent")
    print(f"boards {len(scenario.devices)}, receipts sent {sent}, stored {check.total('stored')}")
    print(
        f"lost {check.total('lost')}, duplicated {check.total('duplicated')}, "
        f"unexpected {check.total('unexpected')}"
    )
    print(
        f"end to end {elapsed:.0f} s ({sent / elapsed:.0f} receipts/s, traffic phase "
        f"{scenario.duration_s:.0f} s) vs direct ingest of {n_base} receipts {t_base:.1f} s: "
        f"ratio {elapsed / t_base:.1f}x"
    )
    print("\n".join(result.summary))
    return 0 if result.ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
