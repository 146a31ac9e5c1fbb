"""`daozhang alerts run --once` and `alerts list` through the command line."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from daozhang.cli import main
from daozhang.collector.timeline import ingest_heartbeat, ingest_status
from daozhang.lab.devicewire import heartbeat_bytes
from daozhang.schema import open_database

from tests.fakes.webhook_receiver import WebhookReceiver


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    server = WebhookReceiver()
    try:
        yield server
    finally:
        server.stop()


def a_backlog_two_hours_old(
    sqlite_url: str, tmp_path: Path, receiver: WebhookReceiver, now: float
) -> Path:
    """POS-0001's last heartbeat says 4 records unsent, the oldest two hours old; a rules file
    with `oldest_unsent` at 60 minutes to the receiver's `/hook`. -> the rules file."""
    with open_database(sqlite_url) as store, store.transaction() as tx:
        ingest_status(tx, "POS-0001", b"online", now - 3600)
        hb = heartbeat_bytes("POS-0001", t=int(now - 600), jrec=4, jold_s=7200, next_seq=5)
        ingest_heartbeat(tx, "POS-0001", hb, now - 600)
    rules = tmp_path / "rules.toml"
    rules.write_text(
        "[rules.oldest_unsent]\nminutes = 60\n\n"
        f'[[webhooks]]\nkind = "json"\nurl = "{receiver.url("/hook")}"\n'
    )
    return rules


def test_run_once_fires_then_lists_then_resolves(
    sqlite_url: str, tmp_path: Path, receiver: WebhookReceiver, capsys: pytest.CaptureFixture[str]
) -> None:
    now = time.time()
    rules = a_backlog_two_hours_old(sqlite_url, tmp_path, receiver, now)
    argv = ["alerts", "run", "--db", sqlite_url, "--rules", str(rules), "--once"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "firing    oldest_unsent:POS-0001" in out and "sent 1" in out
    assert main(argv) == 0  # still firing: nothing new
    assert "sent 0" in capsys.readouterr().out
    assert main(["alerts", "list", "--db", sqlite_url]) == 0
    listed = capsys.readouterr().out
    assert "警告 warning  oldest_unsent:POS-0001" in listed
    assert "最早一条未上传记录已 130 分钟" in listed
    with open_database(sqlite_url) as store, store.transaction() as tx:
        hb = heartbeat_bytes("POS-0001", t=int(now), jrec=0, jold_s=0, next_seq=5)
        ingest_heartbeat(tx, "POS-0001", hb, now)
    assert main(argv) == 0
    assert "resolved  oldest_unsent:POS-0001" in capsys.readouterr().out
    assert [b["event"] for b in receiver.bodies("/hook")] == ["firing", "resolved"]


def test_a_wrong_rules_file_is_one_line(
    sqlite_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    open_database(sqlite_url).close()
    rules = tmp_path / "rules.toml"
    rules.write_text("[rules.silent_unsent]\nminutes = -5\n")
    argv = ["alerts", "run", "--db", sqlite_url, "--rules", str(rules), "--once"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"daozhang: {rules}: [rules.silent_unsent] minutes: must be between")
