"""A throwaway PostgreSQL server on loopback, for tests and benchmarks.

`initdb` refuses to run as root, so as root the cluster is created and run as the `postgres`
user; its data directory lives in a temporary folder and goes away with it.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from daozhang.errors import DaozhangError
from daozhang.ports import free_port


def _pg_bindir() -> Path:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    if initdb:
        return Path(initdb).parent
    raise DaozhangError(
        "PostgreSQL server binaries not found: run `./run test` as root, "
        "or `apt-get install postgresql`"
    )


@dataclass
class TempPostgres:
    workdir: Path
    port: int = 0
    process: subprocess.Popen[bytes] | None = None

    def _as_owner(self, argv: list[str]) -> list[str]:
        if os.geteuid() == 0:
            return ["runuser", "-u", "postgres", "--", *argv]
        return argv

    def start(self) -> TempPostgres:
        bindir = _pg_bindir()
        self.workdir.mkdir(parents=True, exist_ok=True)
        data = self.workdir / "data"
        sockets = self.workdir / "sock"
        sockets.mkdir(exist_ok=True)
        if os.geteuid() == 0:
            shutil.chown(self.workdir, "postgres")
            shutil.chown(sockets, "postgres")
            os.chmod(self.workdir, 0o755)
        if not data.exists():
            subprocess.run(
                self._as_owner(
                    [
                        str(bindir / "initdb"),
                        "-D",
                        str(data),
                        "-U",
                        "postgres",
                        "-A",
                        "trust",
                        "-E",
                        "UTF8",
                        "--no-locale",
                    ]
                ),
                check=True,
                capture_output=True,
            )
        if not self.port:
            self.port = free_port()
        log = self.workdir / "postgres.log"
        if os.geteuid() == 0 and not log.exists():
            log.touch()
            shutil.chown(log, "postgres")
        self.process = subprocess.Popen(
            self._as_owner(
                [
                    str(bindir / "postgres"),
                    "-D",
                    str(data),
                    "-p",
                    str(self.port),
                    "-k",
                    str(sockets),
                    "-c",
                    "listen_addresses=127.0.0.1",
                    "-c",
                    "fsync=on",
                    "-c",
                    "max_connections=200",
                ]
            ),
            stdout=log.open("ab"),
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            ready = subprocess.run(
                [str(bindir / "pg_isready"), "-h", "127.0.0.1", "-p", str(self.port)],
                capture_output=True,
                check=False,
            )
            if ready.returncode == 0:
                return self
            time.sleep(0.1)
        self.stop()
        raise DaozhangError(f"PostgreSQL did not start; see {log}")

    def create_database(self, name: str) -> str:
        """Create an empty database and return its URL."""
        import psycopg

        with psycopg.connect(self.url("postgres"), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def url(self, database: str) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def stop(self) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None
