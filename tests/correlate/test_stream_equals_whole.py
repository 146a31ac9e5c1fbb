"""The chunked run (correlate/stream.py) says what the whole-store `analyse` says.

Generated scenarios (every cause the generator injects, acquirer-side days across many
merchants, outages, reversals, silent terminals, missing files, refusals) are loaded through
the collector's ingest and the settle importer, then classified whole and a merchant range at
a time, down to one merchant per chunk: every finding must come back equal (the JSON the user
sees, evidence and explanation included), none lost, none twice. A second test shows that the
scenario would catch chunks judged without the other chunks' counts.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest
from daozhang.correlate.chunk import load_range, ranges, shared
from daozhang.correlate.classify import Context, classify
from daozhang.correlate.engine import analyse
from daozhang.correlate.render import to_dict
from daozhang.correlate.stream import chunks
from daozhang.lab.sim.load import load
from daozhang.lab.sim.scenario import generate
from daozhang.schema import open_database
from daozhang.settle.calendar import WorkingCalendar
from daozhang.settle.policy import Policies


def _as_json(findings: list) -> Counter[str]:  # type: ignore[type-arg]
    return Counter(json.dumps(to_dict(f), sort_keys=True, ensure_ascii=False) for f in findings)


def _ctx(as_of: int) -> Context:
    return Context(as_of=as_of, policies=Policies.load(None), calendar=WorkingCalendar.load(None))


@pytest.mark.parametrize("seed", [23, 2024])
def test_chunked_findings_equal_the_whole_store(db_url: str, tmp_path: Path, seed: int) -> None:
    sc = generate(seed, cases=8)
    with open_database(db_url) as store:
        load(store, sc, tmp_path / "files")
        whole = _as_json(analyse(store, sc.as_of).findings)
        for per_chunk in (1, 500, 10**9):  # one merchant a chunk; a few; the whole store
            parts = list(chunks(store, _ctx(sc.as_of), per_chunk))
            if per_chunk == 1:
                assert len(parts) > 10, len(parts)
            got = _as_json([f for c in parts for f in c.findings])
            assert got == whole, (per_chunk, got - whole, whole - got)
    causes = Counter(json.loads(k).get("cause") for k in whole.elements())
    assert causes["acquirer_side"] >= 3, causes
    assert causes["network_reversed"] and causes["file_missing"], causes


def test_chunks_judged_alone_would_differ(sqlite_url: str, tmp_path: Path) -> None:
    """The acquirer-side days span merchants in different chunks: classifying each chunk on its
    own (without the counts handed across) loses `acquirer_side`, and the test above would
    fail. So its equality is not luck of the chunk boundaries."""
    sc = generate(23, cases=8)
    with open_database(sqlite_url) as store:
        load(store, sc, tmp_path / "files")
        ctx = _ctx(sc.as_of)
        whole = [f.cause for f in analyse(store, sc.as_of).findings]
        alone = []
        with store.snapshot() as tx:
            common = shared(store, tx)
            for span in ranges(tx, common.merchants, 1):
                alone += [f.cause for f in classify(load_range(tx, common, span, ctx.as_of), ctx)]
    assert len(alone) == len(whole)
    assert whole.count("acquirer_side") >= 3
    assert alone.count("acquirer_side") < whole.count("acquirer_side"), Counter(alone)
