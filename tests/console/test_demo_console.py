"""The demo's last step: the console on the demo's store, with a login made for it."""

from __future__ import annotations

from pathlib import Path

import httpx
from daozhang.lab.demo import start_console
from daozhang.lab.fleet.supervisor import Supervisor

from tests.console import fleet_data
from tests.console.server import csrf_of


def test_the_demo_starts_the_console_with_a_login_that_works(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'demo.db'}"
    fleet_data.build(url)
    with Supervisor(tmp_path / "logs", handle_signals=False) as sup:
        address, name, password = start_console(sup, url)
        with httpx.Client(base_url=address, timeout=30, follow_redirects=True) as c:
            token = csrf_of(c.get("/login").text)
            reply = c.post("/login", data={"name": name, "password": password, "csrf": token})
            assert reply.status_code == 200 and "设备 Fleet" in reply.text
            assert fleet_data.SILENT in reply.text
            assert "用户 Users" in reply.text  # an admin
    # A second run makes another login: never a default anyone could guess.
    with Supervisor(tmp_path / "logs", handle_signals=False) as sup:
        assert start_console(sup, url)[1:] != (name, password)
