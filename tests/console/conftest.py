from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.console import fleet_data, money_data
from tests.console.server import add_user, console


@pytest.fixture(scope="module")
def db_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    url = f"sqlite:///{tmp_path_factory.mktemp('console') / 'console.db'}"
    fleet_data.build(url)
    for name, role in (("wang", "fleet"), ("li", "support"), ("zhao", "admin")):
        done = add_user(url, name, role)
        assert done.returncode == 0, done.stderr
    return url


@pytest.fixture(scope="module")
def base_url(db_url: str) -> Iterator[str]:
    with console(db_url) as url:
        yield url


@pytest.fixture(scope="module")
def money_db_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    """Money findings of January 2025 and cell outages of the last day (money_data.py)."""
    workdir = tmp_path_factory.mktemp("money")
    url = f"sqlite:///{workdir / 'money.db'}"
    money_data.build(url, workdir)
    for name, role in (("wang", "fleet"), ("li", "support")):
        done = add_user(url, name, role)
        assert done.returncode == 0, done.stderr
    return url


@pytest.fixture(scope="module")
def money_url(money_db_url: str) -> Iterator[str]:
    with console(money_db_url) as url:
        yield url


@pytest.fixture(scope="session")
def artefacts() -> Path:
    """Screenshots kept for people to look at after the run (the paths are printed): in the
    checkout's `artifacts/console/` (git ignores it), not in pytest's temporary folders, which
    later runs delete."""
    folder = Path(__file__).resolve().parents[2] / "artifacts" / "console"
    folder.mkdir(parents=True, exist_ok=True)
    return folder
