"""A shop (tests/correlate/builder.py) on each engine the suite runs."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.correlate.builder import Shop


@pytest.fixture
def shop(db_url: str, tmp_path: Path) -> Iterator[Shop]:
    s = Shop(db_url, tmp_path)
    try:
        yield s
    finally:
        s.close()
