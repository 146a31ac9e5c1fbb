from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.correlate.builder import Shop


@pytest.fixture
def shop(tmp_path: Path) -> Iterator[Shop]:
    s = Shop(f"sqlite:///{tmp_path / 'shop.db'}", tmp_path)
    try:
        yield s
    finally:
        s.close()
