"""`daozhang collect` refuses what it cannot do safely, with one clear line."""

from __future__ import annotations

import pytest
from daozhang.cli import main
from daozhang.collector.service import ensure_durable
from daozhang.errors import StoreError
from daozhang.services.ports import free_port
from daozhang.store import open_store
from daozhang.store.engine import SqliteStore


@pytest.mark.parametrize(
    ("broker", "db", "message"),
    [
        ("http://127.0.0.1:1", None, "bad broker URL"),
        (None, "mysql://x/y", "unknown database URL"),
        ("mqtt://127.0.0.1:{port}", None, "cannot connect to the broker"),
    ],
)
def test_collect_refuses_clearly(
    sqlite_url: str,
    capsys: pytest.CaptureFixture[str],
    broker: str | None,
    db: str | None,
    message: str,
) -> None:
    broker = (broker or "mqtt://127.0.0.1:1").format(port=free_port())
    assert main(["collect", "--broker", broker, "--db", db or sqlite_url]) == 2
    err = capsys.readouterr().err
    assert err.startswith("daozhang: ") and message in err


def test_acks_need_a_durable_sqlite(sqlite_url: str) -> None:
    with open_store(sqlite_url) as store:
        assert isinstance(store, SqliteStore)
        ensure_durable(store)
        store._conn.execute("PRAGMA synchronous=NORMAL")
        with pytest.raises(StoreError, match="synchronous=FULL"):
            ensure_durable(store)
