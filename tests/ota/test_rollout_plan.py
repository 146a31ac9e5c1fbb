"""Rollouts in the store (DESIGN §1.6): cohorts, the halt rule, target selection, and a rollout
read back as it was left (what `ota resume` and `ota status` start from)."""

from __future__ import annotations

from pathlib import Path

import pytest
from daozhang.cli import main as cli_main
from daozhang.errors import DaozhangError, UsageError
from daozhang.flash.build import compilers
from daozhang.ota.bundle import make_bundle
from daozhang.ota.rollout import (
    cohort_of,
    create,
    decide,
    load,
    parse_cohorts,
    parse_halt,
    running,
    select,
)
from daozhang.schema import open_database


def test_cohorts_are_cumulative_shares_of_at_least_one_device() -> None:
    devs = [f"DEV-{i:04d}" for i in range(200)]
    cohorts = cohort_of(devs, [1, 10, 50, 100])
    sizes = [sum(1 for c in cohorts.values() if c == k) for k in range(4)]
    assert sizes == [2, 18, 80, 100]
    assert [cohort_of(["A-01", "B-02"], [1, 10, 50, 100])[d] for d in ("A-01", "B-02")] == [0, 1]
    assert set(cohort_of(["A-01"], [1, 100]).values()) == {0}
    assert parse_cohorts("1,10,50,100") == [1, 10, 50, 100]
    for bad in ("10,5,100", "50", "0,100", "x"):
        with pytest.raises(UsageError):
            parse_cohorts(bad)
    assert parse_halt("5%") == 5 and parse_halt("0") == 0
    with pytest.raises(UsageError):
        parse_halt("120%")


def test_the_halt_rule() -> None:
    assert decide(["confirmed", "fetching 40%"], 5) == "wait"
    assert decide(["confirmed", "refused downgrade"], 0) == "next"  # already up to date
    assert decide(["confirmed", "rolled back crash"], 5) == "halt"
    assert decide(["confirmed", "refused mac"], 60) == "next"  # 50 % is not past 60 %
    assert decide(["confirmed"] * 19 + ["refused hash"], 5) == "next"  # 5 % is not past 5 %
    assert decide(["confirmed"] * 18 + ["refused hash"] * 2, 5) == "halt"


def test_a_rollout_is_kept_in_the_store(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = f"sqlite:///{tmp_path / 'fleet.db'}"
    for i in range(4):
        assert cli_main(["device", "add", f"DEV-000{i}", "--generate", "--db", db]) == 0
    assert cli_main(["device", "add", "NOKEY-01", "--db", db]) == 0
    data = make_bundle("0.2.0", "virtual", compilers()[0], "0.1.0")
    with open_database(db, create=False) as store:
        assert select(store, everyone=True) == [f"DEV-000{i}" for i in range(4)]
        assert select(store, devices=["DEV-0002", "DEV-0001"]) == ["DEV-0001", "DEV-0002"]
        assert select(store, fw="0.1.0") == []
        with pytest.raises(Exception, match="no key for NOKEY-01"):
            create(store, data, ["NOKEY-01"], [100], 5)
        rid = create(store, data, select(store, everyone=True), [25, 100], 5)
    capsys.readouterr()
    # Read back by a new process: `ota status`.
    assert cli_main(["ota", "status", "--db", db]) == 1
    out = capsys.readouterr().out
    assert f"rollout {rid}: 版本 version 0.2.0, 进行中 running" in out
    assert "分组 cohort 1/2 (25,100%)" in out
    assert "[1] DEV-0000             等待中 waiting" in out
    assert "[2] DEV-0003             未开始 not offered yet" in out
    with open_database(db, create=False) as store:
        r = load(store, rid)
    assert [(t.dev, t.cohort) for t in r.targets] == [
        ("DEV-0000", 0),
        ("DEV-0001", 1),
        ("DEV-0002", 1),
        ("DEV-0003", 1),
    ]


def test_migration_2_keeps_the_rollouts_and_lets_one_driver_hold_each(db_url: str) -> None:
    """A store with a rollout from before migration 2 (drivers): the rollout is kept, nobody
    holds it, and a hold is then taken by one driver and refused to another."""
    from daozhang.ota.lease import driver_name, release, take
    from daozhang.ota.tables import MIGRATIONS
    from daozhang.store import open_store

    with open_store(db_url, [("ota", MIGRATIONS[:1])]) as store, store.transaction() as tx:
        tx.execute("INSERT INTO ota_bundles VALUES ('b1', '0.2.0', 'virtual', ?, 0)", (b"x",))
        tx.execute(
            "INSERT INTO ota_rollouts (bundle_id, cohorts, halt_pct, cohort, state, why,"
            " created_at, updated_at) VALUES ('b1', '[100]', 5, 0, 'running', NULL, 0, 0)"
        )
    with open_database(db_url) as store:
        (rid,) = running(store)
        assert load(store, rid).driver is None
        me, other = driver_name(), driver_name()
        take(store, rid, me, 20)
        assert load(store, rid).driver == me
        with pytest.raises(DaozhangError, match=f"is being driven by {me}"):
            take(store, rid, other, 20)
        release(store, rid, me)
        take(store, rid, other, 20)
        assert load(store, rid).driver == other
