"""Fixtures shared by the whole suite: real brokers, real databases, the MicroPython harness."""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from daozhang.broker.mosquitto import Mosquitto
from daozhang.lab.postgres import TempPostgres

pytest_plugins = ["tests.mp_harness"]

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture
def mosquitto(tmp_path: Path) -> Iterator[Mosquitto]:
    """A real Mosquitto broker on a free loopback port, persistence on."""
    broker = Mosquitto(workdir=tmp_path / "mosquitto").start()
    try:
        yield broker
    finally:
        broker.stop()


@pytest.fixture(scope="session")
def postgres_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TempPostgres]:
    """One real PostgreSQL server for the session; each test gets its own database."""
    # Not under pytest's tmp dir: that one is private to root, and the server runs as postgres.
    workdir = Path(tempfile.mkdtemp(prefix="daozhang-pg-"))
    server = TempPostgres(workdir=workdir).start()
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(workdir, ignore_errors=True)


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh database URL, once per engine: the same test runs on SQLite and PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'daozhang.db'}"
    server: TempPostgres = request.getfixturevalue("postgres_server")
    return server.create_database(f"t_{uuid.uuid4().hex[:12]}")


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'daozhang.db'}"


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    # "No tests ran" must fail CI loudly, never pass as an empty green run.
    if session.testscollected == 0 and not os.environ.get("DAOZHANG_ALLOW_EMPTY"):
        session.exitstatus = pytest.ExitCode.NO_TESTS_COLLECTED
