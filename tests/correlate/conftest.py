"""The hand-built store of the rule-by-rule tests (builder.py), on SQLite or on both engines."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.correlate.builder import Shop


@pytest.fixture
def shop(tmp_path: Path) -> Iterator[Shop]:
    """On SQLite: most rules read the same rows whatever the engine."""
    s = Shop(f"sqlite:///{tmp_path / 'shop.db'}", tmp_path)
    try:
        yield s
    finally:
        s.close()


@pytest.fixture
def any_shop(db_url: str, tmp_path: Path) -> Iterator[Shop]:
    """On SQLite and on PostgreSQL, for rules whose rows come from engine-specific SQL (the
    RRN join, the declared gaps' neighbours, the last heartbeat, the quarantine)."""
    s = Shop(db_url, tmp_path)
    try:
        yield s
    finally:
        s.close()
