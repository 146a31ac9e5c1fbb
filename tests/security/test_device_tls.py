"""TLS on the virtual board's agent for real: the real MicroPython agent (its own mbedtls)
against the real Mosquitto configured by `daozhang broker`, and the real collector."""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
from daozhang.broker.config import FleetListeners
from daozhang.broker.mosquitto import Mosquitto
from daozhang.lab.mp.run import micropython_argv, module_path
from daozhang.schema import open_database
from daozhang.security.pki import Pki
from daozhang.security.scan import scan

from tests.collector.procs import CollectorProcess
from tests.uplink.agent_run import agent_config, finish_agent, start_agent

HERE = Path(__file__).parent
KEY = bytes(range(100, 132))


def _plan(tmp: Path, pki: Pki, port: int, dev: str = "devA01", **extra: Any) -> dict[str, Any]:
    cfg = agent_config(
        dev,
        port,
        tls=True,
        key=KEY.hex(),
        secrets=str(pki.device_dir(dev)),
        time_floor=str(tmp / "timefloor"),
        backoff_base_ms=300,
        backoff_cap_ms=1000,
    )
    return {"cfg": cfg, "root": str(tmp / "j"), "until_acked": True, **extra}


def _journal(tmp: Path) -> list[dict[str, Any]]:
    mpy = tmp / "mpy"  # compiled by start_agent
    env = {**os.environ, "MICROPYPATH": module_path("virtual", [mpy])}
    out = subprocess.run(
        [*micropython_argv("256K"), str(HERE / "mp_journal_dump.py"), str(tmp / "j")],
        env=env,
        capture_output=True,
        timeout=60,
        check=True,
    ).stdout.decode()
    return [json.loads(line[4:]) for line in out.splitlines() if line.startswith("REC ")]


def _link_downs(tmp: Path) -> list[dict[str, Any]]:
    return [r["b"] for r in _journal(tmp) if r["k"] == "d" and r["b"]["ev"] == "link_down"]


def _control(tmp: Path, **control: Any) -> str:
    path = tmp / "control.json"
    path.write_text(json.dumps(control))
    return str(path)


@pytest.mark.slow
def test_agent_uploads_over_tls_with_its_certificate(
    fleet_broker: Mosquitto, fleet_pki: Pki, sqlite_url: str, tmp_path: Path
) -> None:
    with open_database(sqlite_url) as store, store.transaction() as tx:
        tx.execute("INSERT INTO devices (dev, hmac_key) VALUES (?, ?)", ("devA01", KEY))
    collector = CollectorProcess(
        fleet_broker.url,
        sqlite_url,
        tmp_path,
        "c1",
        "--tls-dir",
        str(fleet_pki.collector_dir("main")),
        "--require-key",
    ).start()
    try:
        plan = _plan(tmp_path, fleet_pki, fleet_broker.port, preload=200, max_s=60)
        result = finish_agent(start_agent(tmp_path, plan), timeout=90)
    finally:
        collector.stop()
    assert result.acked == result.next_seq - 1 >= 200, result.output
    with open_database(sqlite_url, migrate=False) as store, store.transaction() as tx:
        stored = tx.execute("SELECT COUNT(*) FROM records WHERE dev = 'devA01'")[0][0]
        quarantined = tx.execute("SELECT reason FROM quarantine")
        statuses = tx.execute("SELECT status, session FROM status_events WHERE dev = 'devA01'")
    assert stored >= 200 and quarantined == []
    # Its status was signed, with its CONNECT counter (an unsigned one would be quarantined).
    assert statuses and ("online", 1) in statuses, statuses
    # The time floor was persisted from the real clock.
    assert abs(int((tmp_path / "timefloor").read_text()) - time.time()) < 120
    # Every artefact of the run (database, journal, collector log, broker files) holds no
    # full card number and no track data.
    report = scan([tmp_path])
    assert report.files > 5 and report.findings == [], report.findings


@pytest.mark.slow
def test_broker_with_a_certificate_from_another_ca_is_refused(
    fleet_pki: Pki, foreign_pki: Pki, tmp_path: Path
) -> None:
    listeners = FleetListeners(foreign_pki, tmp_path / "evil")
    evil = Mosquitto(workdir=tmp_path / "evil", listeners=listeners).start()
    try:
        plan = _plan(tmp_path, fleet_pki, evil.port, preload=5, max_s=4)
        result = finish_agent(start_agent(tmp_path, plan), timeout=60)
    finally:
        evil.stop()
    assert result.acked == 0 and result.stats["sessions"] == 0, result.output
    downs = _link_downs(tmp_path)
    assert downs and all(d["stage"] == "tls" for d in downs), downs
    assert downs[0]["why"].startswith("The certificate is not correctly signed"), downs


@pytest.mark.slow
def test_unknown_clock_never_silently_skips_the_validity_check(
    fleet_broker: Mosquitto, fleet_pki: Pki, tmp_path: Path
) -> None:
    # No NTP, no modem time, no persisted floor: no TLS session at all.
    control = _control(tmp_path, clock="none")
    plan = _plan(tmp_path, fleet_pki, fleet_broker.port, preload=3, max_s=3, control=control)
    result = finish_agent(start_agent(tmp_path, plan), timeout=60)
    assert result.stats["sessions"] == 0, result.output
    assert {(d["stage"], d["why"]) for d in _link_downs(tmp_path)} == {("tls", "clock unknown")}

    # A persisted floor past the certificates' end: refused as expired before any handshake.
    expired = tmp_path / "expired"
    expired.mkdir()
    (expired / "timefloor").write_text(str(int(time.time()) + 20 * 365 * 86400))
    plan = _plan(expired, fleet_pki, fleet_broker.port, preload=3, max_s=3, control=control)
    result = finish_agent(start_agent(expired, plan), timeout=60)
    assert result.stats["sessions"] == 0, result.output
    assert {(d["stage"], d["why"]) for d in _link_downs(expired)} == {("tls", "cert expired")}

    # A floor inside the validity: the session opens (provisionally, on the lower bound).
    floored = tmp_path / "floored"
    floored.mkdir()
    (floored / "timefloor").write_text(str(int(time.time()) - 86400))
    plan = _plan(floored, fleet_pki, fleet_broker.port, preload=3, max_s=3, control=control)
    result = finish_agent(start_agent(floored, plan), timeout=60)
    assert result.stats["sessions"] >= 1, result.output
    assert all(d["stage"] != "tls" for d in _link_downs(floored))
