"""`daozhang broker`: the config it writes, and the real broker it runs."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from daozhang.cli import main
from daozhang.ports import free_port
from daozhang.security.pki import Pki

from tests.security.mqtt_clients import connect


def test_write_only_config(tmp_path: Path, capsys):
    pki = Pki(tmp_path / "pki")
    pki.init([])
    pki.issue_collector("main")
    assert main(["broker", "--dir", str(pki.root), "--port", "18883", "--write-only"]) == 0
    conf = (pki.root / "broker" / "mosquitto.conf").read_text()
    for line in (
        "allow_anonymous false",
        "require_certificate true",
        "use_identity_as_username true",
        "use_username_as_clientid true",
        f"crlfile {pki.crl_path}",
        "listener 18883 127.0.0.1",
        "max_packet_size 8288",  # an 8 KB batch + its 32-byte MAC + the PUBLISH header
    ):
        assert line in conf.splitlines()
    acl = (pki.root / "broker" / "acl").read_text()
    assert "pattern write dz/v1/%u/up" in acl and "user collector.main" in acl
    assert "password_file" not in conf  # no password listener asked for


def test_broker_command_runs_a_tls_broker(tmp_path: Path):
    pki = Pki(tmp_path / "pki")
    pki.init([])
    pki.issue_device("term0001")
    port = free_port()
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "daozhang.cli",
            "broker",
            "--dir",
            str(pki.root),
            "--port",
            str(port),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env=env,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline().decode()
        assert f"mqtts://127.0.0.1:{port}" in line, line
        peer = connect(port, pki.ca_cert_path, pki.device_dir("term0001"))
        assert peer.connected.is_set(), peer.refused
        assert peer.publish("dz/v1/term0001/up", b"x") == 0
        peer.close()
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=15)
    time.sleep(0.2)
    refused = connect(port, pki.ca_cert_path, pki.device_dir("term0001"), timeout=1)
    assert not refused.connected.is_set()  # the broker went down with the command
