"""A shop (tests/correlate/builder.py) on SQLite for the report tests: what they render does
not depend on the engine (tests/correlate holds both)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.correlate.builder import Shop


@pytest.fixture
def shop(tmp_path: Path) -> Iterator[Shop]:
    s = Shop(f"sqlite:///{tmp_path / 'report.db'}", tmp_path)
    try:
        yield s
    finally:
        s.close()
