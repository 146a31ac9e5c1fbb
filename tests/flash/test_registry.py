"""The flash registry and the HMAC key store, on SQLite and PostgreSQL."""

from __future__ import annotations

import json

import pytest
from daozhang.cli import main as cli_main
from daozhang.collector.keys import add_device
from daozhang.errors import StoreError
from daozhang.flash import registry
from daozhang.schema import open_database


def record(dev: str, result: str = "pass", operator: str = "li") -> registry.FlashRecord:
    return registry.FlashRecord(
        dev=dev,
        board="virtual",
        port="/dev/ttyUSB0",
        fw_version="0.1.0",
        fw_hash="ab" * 32,
        mpy="6.3",
        operator=operator,
        files_written=15,
        files_removed=0,
        result=result,
        selftest=[["journal", "pass", "ok"]],
    )


def test_a_key_is_made_once_and_reused(db_url: str) -> None:
    with open_database(db_url) as store:
        first = registry.key_for(store, "POS0001")
        again = registry.key_for(store, "POS0001")
        other = registry.key_for(store, "POS0002")
        assert len(first) == 32 and first == again and other != first
        # It is the collector's key: the one it checks batches with.
        with store.transaction() as tx:
            stored = tx.execute("SELECT hmac_key FROM devices WHERE dev = ?", ("POS0001",))
        assert bytes(stored[0][0]) == first


def test_a_key_registered_by_hand_is_used_and_a_bad_one_refused(db_url: str) -> None:
    with open_database(db_url) as store:
        add_device(store, "POS0003", bytes(range(32)))
        assert registry.key_for(store, "POS0003") == bytes(range(32))
        add_device(store, "POS0004", bytes(16))
        with pytest.raises(StoreError, match="registered HMAC key is 16 bytes, expected 32"):
            registry.key_for(store, "POS0004")


def test_registry_keeps_the_latest_flash_and_the_history(
    db_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with open_database(db_url) as store:
        registry.record_flash(store, record("POS0001", "fail", "li"))
        registry.record_flash(store, record("POS0001", "pass", "wang"))
        registry.record_flash(store, record("POS0002"))
        latest = registry.flashed_devices(store)
        with store.transaction() as tx:
            history = tx.execute("SELECT dev, operator, result FROM flash_history ORDER BY id")
    assert [(r["dev"], r["operator"], r["result"]) for r in latest] == [
        ("POS0001", "wang", "pass"),
        ("POS0002", "li", "pass"),
    ]
    assert [tuple(r) for r in history] == [
        ("POS0001", "li", "fail"),
        ("POS0001", "wang", "pass"),
        ("POS0002", "li", "pass"),
    ]
    assert cli_main(["device", "flashed", "--db", db_url, "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert [r["dev"] for r in shown] == ["POS0001", "POS0002"]
    assert cli_main(["device", "flashed", "--db", db_url]) == 0
    assert "wang" in capsys.readouterr().out
