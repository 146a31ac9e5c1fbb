"""What the project ships for Prometheus and Grafana: the alerting rules pass their own unit
tests under the real `promtool`, and every metric the rules and the dashboard read is one the
collector's /metrics serves."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

from daozhang.security.pki import Pki

from tests.collector.test_alert_gauges import scrape_names

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
RULES = DEPLOY / "prometheus" / "daozhang.rules.yml"
RULE_TESTS = DEPLOY / "prometheus" / "daozhang.rules.test.yml"
DASHBOARD = DEPLOY / "grafana" / "daozhang.json"
METRIC = re.compile(r"\b(dz_[a-z0-9_]+)")


def _promtool() -> str:
    found = shutil.which("promtool")
    # Not a skip: `./run setup` installs Debian's `prometheus` package, which provides it.
    assert found, "promtool is missing: run ./run setup as root, or apt-get install prometheus"
    return found


def test_the_rules_are_valid_and_pass_their_unit_tests() -> None:
    promtool = _promtool()
    check = subprocess.run(
        [promtool, "check", "rules", str(RULES)],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert check.returncode == 0, check.stdout + check.stderr
    tested = subprocess.run(
        [promtool, "test", "rules", RULE_TESTS.name],
        cwd=RULE_TESTS.parent,
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert tested.returncode == 0 and "SUCCESS" in tested.stdout, tested.stdout + tested.stderr


def test_a_broken_rule_fails_its_unit_test(tmp_path: Path) -> None:
    """The unit tests can fail: a rule whose threshold moved is caught."""
    promtool = _promtool()
    (tmp_path / RULES.name).write_text(
        RULES.read_text().replace(
            "max(dz_unsent_oldest_seconds) > 3600", "max(dz_unsent_oldest_seconds) > 7200"
        )
    )
    (tmp_path / RULE_TESTS.name).write_text(RULE_TESTS.read_text())
    tested = subprocess.run(
        [promtool, "test", "rules", RULE_TESTS.name],
        cwd=tmp_path,
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert tested.returncode != 0 and "DaozhangUnsentTooOld" in tested.stdout + tested.stderr


def _dashboard_exprs() -> list[str]:
    dashboard = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    assert dashboard["panels"], "a dashboard with no panels"
    exprs = []
    for panel in dashboard["panels"]:
        assert panel["targets"], panel["title"]
        exprs += [t["expr"] for t in panel["targets"]]
    return exprs


def test_every_metric_the_rules_and_dashboard_read_is_exported(
    sqlite_url: str, tmp_path: Path
) -> None:
    pki = Pki(tmp_path / "pki")
    pki.init(["localhost"])  # the PKI gauges are served when the collector has --pki-dir
    exported = scrape_names(sqlite_url, pki.root)
    rule_metrics = set(METRIC.findall(RULES.read_text()))
    dashboard_metrics = {m for e in _dashboard_exprs() for m in METRIC.findall(e)}
    assert rule_metrics and dashboard_metrics
    assert rule_metrics - exported == set()
    assert dashboard_metrics - exported == set()


def test_the_dashboard_panels_are_laid_out_and_bilingual() -> None:
    dashboard = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    assert dashboard["timezone"] == "Asia/Shanghai"
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    for panel in dashboard["panels"]:
        assert " / " in panel["title"], panel["title"]  # Chinese / English
        assert panel["gridPos"]["x"] + panel["gridPos"]["w"] <= 24


def test_every_alert_has_a_unit_test_and_every_test_an_alert() -> None:
    defined = set(re.findall(r"- alert: (\w+)", RULES.read_text()))
    tested = set(re.findall(r"alertname: (\w+)", RULE_TESTS.read_text()))
    assert tested <= defined and defined <= tested, (defined, tested)
