"""The rules file: defaults, business hours, webhooks, and refusals that name the key."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from daozhang.alerts.rules import RulesFile, load, parse
from daozhang.errors import InputError
from daozhang.units import BEIJING

REPO = Path(__file__).resolve().parents[2]


def test_the_shipped_sample_loads_with_every_rule_and_bot() -> None:
    rules = load(REPO / "deploy" / "alerts" / "rules.toml")
    assert set(rules.rules) >= {
        "silent_unsent",
        "oldest_unsent",
        "journal_full",
        "signal_poor",
        "cell_down",
        "quarantine_spike",
        "unexplained_unpaid",
        "acquirer_day_unpaid",
    }
    assert {h.kind for h in rules.webhooks} == {"wecom", "dingtalk", "feishu", "json"}


def test_an_empty_table_takes_the_defaults_and_an_absent_rule_is_off() -> None:
    rules = parse({"rules": {"silent_unsent": {}}})
    assert rules.on("silent_unsent") and not rules.on("journal_full")
    assert rules.get("silent_unsent", "minutes") == 15


def test_business_hours_in_beijing_time_past_midnight_and_by_weekday() -> None:
    hours = parse({"business_hours": {"start": "20:00", "end": "02:00", "days": [1, 2]}}).hours
    monday = dt.datetime(2026, 12, 7, 23, 30, tzinfo=BEIJING)
    assert hours.contains(monday)
    assert not hours.contains(monday.replace(hour=12))
    assert not hours.contains(monday + dt.timedelta(days=5))  # Saturday
    always = parse({"business_hours": {"start": "00:00", "end": "00:00"}}).hours
    assert always.contains(monday.replace(hour=4)) and always.contains(monday.replace(hour=0))


@pytest.mark.parametrize(
    ("doc", "words"),
    [
        ({"rules": {"silent": {}}}, "[rules.silent] is not a rule"),
        ({"rules": {"silent_unsent": {"minutes": "15"}}}, "minutes: expected a number"),
        ({"rules": {"silent_unsent": {"minutes": 0}}}, "must be between 0.1 and"),
        ({"rules": {"journal_full": {"percnt": 80}}}, "unknown key(s) percnt"),
        ({"rules": {"pki_expiry": {}}}, "dir is required"),
        ({"rules": {"cell_down": {"severity": "urgent"}}}, "severity: expected one of critical"),
        ({"business_hours": {"start": "8h"}}, 'expected a time like "08:00"'),
        ({"business_hours": {"days": [0]}}, "days must be a list"),
        ({"webhooks": [{"kind": "slack", "url": "http://x"}]}, "kind must be one of"),
        ({"webhooks": [{"kind": "json", "url": "ftp://x"}]}, "url must be an http"),
        (
            {
                "webhooks": [
                    {"kind": "json", "url": "http://a"},
                    {"kind": "json", "url": "http://b"},
                ]
            },
            "give each webhook a name",
        ),
        ({"rulez": {}}, "unknown table(s) rulez"),
    ],
)
def test_mistakes_are_refused_naming_the_key(doc: dict[str, object], words: str) -> None:
    with pytest.raises(InputError) as caught:
        parse(doc, "rules.toml")
    assert words in str(caught.value) and str(caught.value).startswith("rules.toml:")


def test_a_file_that_is_not_toml_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "rules.toml"
    path.write_text("[rules\n")
    with pytest.raises(InputError, match="not a valid TOML file"):
        load(path)


def test_a_changed_rules_file_is_read_again_and_a_wrong_one_leaves_the_rules_in_force(
    tmp_path: Path,
) -> None:
    path = tmp_path / "rules.toml"
    path.write_text("[rules.silent_unsent]\nminutes = 15\n", encoding="utf-8")
    said: list[str] = []
    source = RulesFile(path, said.append)
    assert source.current().get("silent_unsent", "minutes") == 15 and said == []
    path.write_text(
        '[rules.silent_unsent]\nminutes = 30\nseverity = "warning"\n[rules.cell_down]\n',
        encoding="utf-8",
    )
    now = source.current()
    assert (now.get("silent_unsent", "minutes"), now.severity("silent_unsent")) == (30, "warning")
    assert now.on("cell_down")
    assert said == [f"alerts: rules reloaded from {path}: 2 rule(s), 0 webhook(s)"]
    path.write_text('[rules.silent_unsent]\nminutes = "half an hour"\n', encoding="utf-8")
    kept = source.current()
    assert kept is now  # a typo never switches alerting off
    assert said[-1].startswith("daozhang: alerts: the rules file changed and is refused")
    assert "minutes: expected a number" in said[-1]
    assert source.current() is now and len(said) == 2  # said once, not every round
