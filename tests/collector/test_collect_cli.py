"""`daozhang collect` refuses what it cannot do safely, with one clear line."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
from daozhang.broker.mosquitto import Mosquitto
from daozhang.cli import main
from daozhang.collector.committer import ensure_durable
from daozhang.collector.service import Collector, CollectorConfig
from daozhang.errors import DaozhangError, StoreError
from daozhang.ports import free_port
from daozhang.schema import COMPONENTS, open_database
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
    args = ["collect", "--broker", broker, "--db", db or sqlite_url, "--connect-timeout", "0"]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.startswith("daozhang: ") and message in err


@pytest.mark.parametrize(
    ("value", "message"),
    [("-1", "must be at least 0, got -1"), ("lots", "expected a whole number, got 'lots'")],
)
def test_collect_refuses_a_bad_max_inbox(
    sqlite_url: str, capsys: pytest.CaptureFixture[str], value: str, message: str
) -> None:
    args = ["collect", "--broker", "mqtt://127.0.0.1:1", "--db", sqlite_url, "--max-inbox", value]
    with pytest.raises(SystemExit) as exit_info:
        main(args)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "argument --max-inbox" in err and message in err


def test_collect_waits_for_a_broker_that_starts_later(tmp_path: Path, sqlite_url: str) -> None:
    port = free_port()
    url = f"mqtt://127.0.0.1:{port}"
    collector = Collector(
        CollectorConfig(broker=url, db_url=sqlite_url, name="late-broker", schema=COMPONENTS)
    )
    connecting = threading.Thread(target=collector.connect)
    connecting.start()
    time.sleep(1.5)  # a few refused attempts
    assert connecting.is_alive()
    broker = Mosquitto(workdir=tmp_path / "mq", port=port).start()
    try:
        connecting.join(15)
        assert not connecting.is_alive()
        runner = threading.Thread(target=collector.run)
        runner.start()
        assert collector.subscribed.wait(10)
        collector.stop()
        runner.join(10)
    finally:
        broker.stop()


def test_collect_gives_up_after_its_connect_timeout(sqlite_url: str) -> None:
    url = f"mqtt://127.0.0.1:{free_port()}"
    config = CollectorConfig(
        broker=url, db_url=sqlite_url, connect_timeout_s=1.2, schema=COMPONENTS
    )
    started = time.monotonic()
    with pytest.raises(DaozhangError, match=r"gave up after 1.2 s"):
        Collector(config).connect()
    assert 0.4 < time.monotonic() - started < 5


def test_acks_need_a_durable_sqlite(sqlite_url: str) -> None:
    with open_database(sqlite_url) as store:
        assert isinstance(store, SqliteStore)
        ensure_durable(store)
        store._conn.execute("PRAGMA synchronous=NORMAL")
        with pytest.raises(StoreError, match="synchronous=FULL"):
            ensure_durable(store)


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("--metrics-port", "70000", "--metrics-port: must be at most 65,535, got 70000"),
        ("--metrics-port", "-1", "--metrics-port: must be at least 1, got -1"),
        ("--max-unacked", "0", "--max-unacked: must be at least 1, got 0"),
        ("--commit-records", "0", "--commit-records: must be at least 1, got 0"),
    ],
)
def test_collect_refuses_options_it_cannot_run_with(
    sqlite_url: str, capsys: pytest.CaptureFixture[str], option: str, value: str, message: str
) -> None:
    """Issue 29: `daozhang: ...` and exit status 2, not a traceback or a broken session."""
    args = ["collect", "--broker", "mqtt://127.0.0.1:1", "--db", sqlite_url, option, value]
    args += ["--connect-timeout", "0"]
    with pytest.raises(SystemExit) as exit_info:  # refused while the options are read
        main(args)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "daozhang: collect: argument " + message in err and "Traceback" not in err
