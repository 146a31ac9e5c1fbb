"""The console as users meet it: `daozhang console` in its own process on a free port, and a
client that logs in through the form, CSRF token and all."""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
from daozhang.ports import free_port, wait_listening

PASSWORD = "correct horse battery"
CSRF = re.compile(r'name="csrf" value="([^"]+)"')


def add_user(
    url: str, name: str, role: str, password: str = PASSWORD
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "daozhang.cli",
            "console",
            "user",
            "add",
            name,
            "--role",
            role,
            "--db",
            url,
            "--password-stdin",
        ],
        input=password + "\n",
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@contextmanager
def console(url: str, poll_s: float = 1.0) -> Iterator[str]:
    port = free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "daozhang.cli",
            "console",
            "--db",
            url,
            "--listen",
            f"127.0.0.1:{port}",
            "--poll",
            str(poll_s),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        if not wait_listening(port, 30):
            proc.kill()
            raise AssertionError(f"console did not start: {proc.communicate()}")
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(10)


def csrf_of(html: str) -> str:
    found = CSRF.search(html)
    assert found, "no CSRF field on the page"
    return found.group(1)


def login(client: httpx.Client, name: str, password: str = PASSWORD) -> httpx.Response:
    token = csrf_of(client.get("/login").text)
    return client.post(
        "/login", data={"name": name, "password": password, "csrf": token, "next": "/fleet"}
    )
