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

from tests.correlate.builder import M1, M2, Shop, bj


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


@pytest.mark.parametrize("in_the_file", [False, True], ids=["receipt", "acquirer-row"])
def test_a_completion_under_another_merchant_number_closes_the_preauth_in_every_chunk(
    db_url: str, tmp_path: Path, in_the_file: bool
) -> None:
    """A completion that names its pre-authorisation by RRN alone, reported (or cleared by the
    acquirer) under another merchant's number: the two merchants fall in different chunks,
    and the pre-authorisation is still closed there (docs/design.md §2.3.4)."""
    shop = Shop(db_url, tmp_path)
    try:
        shop.merchant(M1)
        shop.merchant(M2)
        p = shop.sale("2025-01-07 15:00", 50_000, typ="preauth")
        if in_the_file:
            shop.cleared(on="2025-01-09", at="2025-01-08 10:00", amt=48_000, mid=M2,
                         typ="preauth_done", orrn=p["rrn"])  # fmt: skip
        else:
            done = shop.sale("2025-01-08 10:00", 48_000, typ="preauth_done", mid=M2,
                             tid="20000001", dev="DEV00002", orrn=p["rrn"])  # fmt: skip
            shop.cleared(done, on="2025-01-09")
        shop.payout("2025-01-09", M2)
        as_of = bj("2025-01-20 12:00")
        found = shop.run("2025-01-20 12:00")
        assert found.of(p).status == "not_expected"
        parts = list(chunks(shop.store, _ctx(as_of), 1))
        assert len(parts) >= 2
        (chunked,) = (f for c in parts for f in c.findings if f.kind == "transaction"
                      and f.mid == M1)  # fmt: skip
        assert chunked.status == "not_expected", (chunked.status, chunked.cause)
        whole = _as_json(analyse(shop.store, as_of).findings)
        assert _as_json([f for c in parts for f in c.findings]) == whole
        # `correlate --merchant M1` reads that merchant alone, and sees it closed too.
        (alone,) = analyse(shop.store, as_of, merchant=M1).findings
        assert alone.status == "not_expected"
    finally:
        shop.close()
