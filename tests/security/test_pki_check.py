"""`daozhang pki check`: every deadline of the fleet's PKI read from the files themselves, and
a non-zero exit naming each one that is missing, past, or due soon."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from daozhang.cli import main as cli_main
from daozhang.security.pki import Pki


def problems(capsys: pytest.CaptureFixture[str]) -> list[str]:
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return [line for line in err.splitlines() if line.startswith("daozhang: ")]


def test_a_healthy_pki_passes_and_lists_every_deadline(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pki = Pki(tmp_path / "pki")
    pki.init([])
    pki.issue_device("POS0001")
    pki.issue_device("POS0002", cert=False, password=True)  # no certificate: no deadline
    pki.issue_collector("main")
    assert cli_main(["pki", "check", "--dir", str(pki.root)]) == 0
    out = capsys.readouterr().out
    kinds = [line.split()[0] for line in out.splitlines()]
    assert kinds[0] == "CRL"  # 365 days: the soonest
    assert sorted(kinds) == ["CA", "CRL", "broker", "collector", "device"]
    assert "POS0002" not in out


def test_each_deadline_due_soon_past_or_missing_is_named(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pki = Pki(tmp_path / "pki")
    pki.init([])
    pki.issue_device("POS0001")  # five years: fine
    pki.issue_device("POS0010", days=10)
    pki.issue_device("POS0000", days=0)  # already past
    pki.issue_device("POS0005", days=5)
    pki.revoke("POS0005")  # revoked: its deadline no longer matters
    pki.issue_collector("main")
    (pki.collector_dir("main") / "client.crt").unlink()
    pki.write_crl(days=20)
    argv = ["pki", "check", "--dir", str(pki.root)]

    assert cli_main(argv) == 1
    lines = problems(capsys)
    assert len(lines) == 4, lines
    assert "collector collector.main:" in lines[0] and "client.crt is missing" in lines[0]
    assert "device POS0000: expired" in lines[1]
    assert "device POS0010: expires in 10 days" in lines[2] and "pki issue" in lines[2]
    assert "CRL: expires in 20 days" in lines[3] and "daozhang pki crl" in lines[3]

    # A shorter warning leaves only what is already broken.
    assert cli_main([*argv, "--warn-days", "7"]) == 1
    assert len(problems(capsys)) == 2

    assert cli_main([*argv, "--json"]) == 1
    report = json.loads(capsys.readouterr().out)
    by_name = {row["name"]: row for row in report["deadlines"]}
    assert by_name["POS0010"]["days_left"] == pytest.approx(10, abs=0.1)
    assert by_name["collector.main"]["ends"] is None
    assert "POS0005" not in by_name
    assert len(report["problems"]) == 4


def test_bad_input_is_one_clear_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        cli_main(["pki", "check", "--dir", str(tmp_path), "--warn-days", "soon"])
    assert exited.value.code == 2
    assert "'soon' is not a number of days" in problems(capsys)[0]

    assert cli_main(["pki", "check", "--dir", str(tmp_path / "none")]) == 2
    assert "not a PKI directory" in problems(capsys)[0]

    pki = Pki(tmp_path / "pki")
    pki.init([])
    pki.crl_path.write_text("not a CRL\n")
    assert cli_main(["pki", "check", "--dir", str(pki.root)]) == 2
    assert "crl.pem: not a PEM CRL" in problems(capsys)[0]
