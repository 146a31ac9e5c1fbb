"""Silences (alerts recorded, no one told, told when the silence ends while they still fire)
and routes (which webhooks get which rules, mentioning whom), against a local webhook
receiver and through the command line."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from daozhang.alerts.alert import Alert, Verdict
from daozhang.alerts.deliver import deliver
from daozhang.alerts.message import digest
from daozhang.alerts.rules import Rules, parse
from daozhang.alerts.silence import add_silence
from daozhang.alerts.state import Transition, apply
from daozhang.cli import main
from daozhang.errors import InputError
from daozhang.schema import open_database
from daozhang.store import Store

from tests.alerts.test_alerts_cli import a_backlog_two_hours_old
from tests.fakes.webhook_receiver import WebhookReceiver


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    server = WebhookReceiver()
    try:
        yield server
    finally:
        server.stop()


def silent(dev: str) -> Alert:
    return Alert(
        "silent_unsent",
        dev,
        f"终端 {dev} 已 20 分钟无消息",
        f"device {dev} silent for 20 min",
        {"dev": dev},
    )


FULL = Alert("journal_full", "POS-0001", "终端 POS-0001 日志已 85%", "journal 85% full", {})


def round_(store: Store, rules: Rules, verdict: Verdict, now: float) -> list[Transition]:
    done = apply(store, verdict, now, rules.destinations, rules.severity)
    hooks = {h.label: h for h in rules.webhooks}
    deliver(store, hooks, now, rules.timeout_s, rules.attempts)
    return done


def test_a_silenced_alert_is_told_when_its_silence_ends_while_it_still_fires(
    sqlite_url: str, receiver: WebhookReceiver
) -> None:
    rules = parse({"webhooks": [{"kind": "json", "url": receiver.url("/hook")}]})
    now = time.time()
    with open_database(sqlite_url) as store:
        add_silence(store, "silent_unsent", "POS-0001", now + 600, "门店装修", "ops", now)
        both = Verdict(firing=[silent("POS-0001"), silent("POS-0002")])
        first = round_(store, rules, both, now)
        assert [(t.key, t.told) for t in first] == [
            ("silent_unsent:POS-0001", False),  # recorded, no one told
            ("silent_unsent:POS-0002", True),  # another subject: not covered
        ]
        round_(store, rules, both, now + 300)  # still silenced: still nothing
        assert [b["subject"] for b in receiver.bodies("/hook")] == ["POS-0002"]
        late = round_(store, rules, both, now + 601)  # the silence is over, it still fires
        assert [(t.key, t.event, t.told) for t in late] == [
            ("silent_unsent:POS-0001", "firing", True)
        ]
        round_(store, rules, Verdict(), now + 900)
    told = [(b["subject"], b["event"]) for b in receiver.bodies("/hook")]
    assert told == [
        ("POS-0002", "firing"),
        ("POS-0001", "firing"),
        ("POS-0001", "resolved"),
        ("POS-0002", "resolved"),
    ]
    firing_late = receiver.bodies("/hook")[1]
    assert firing_late["fired_at"] == pytest.approx(now)  # when it fired, not when told


def test_an_alert_that_fires_and_resolves_under_a_silence_tells_no_one(
    sqlite_url: str, receiver: WebhookReceiver
) -> None:
    rules = parse({"webhooks": [{"kind": "json", "url": receiver.url("/hook")}]})
    now = time.time()
    with open_database(sqlite_url) as store:
        add_silence(store, None, "POS-0001", now + 600, "节假日闭店", "ops", now)  # every rule
        round_(store, rules, Verdict(firing=[silent("POS-0001"), FULL]), now)
        resolved = round_(store, rules, Verdict(), now + 60)
    assert [(t.event, t.told) for t in resolved] == [("resolved", False)] * 2
    assert receiver.bodies("/hook") == []


def test_routes_send_each_rule_to_its_webhooks_with_its_mentions(
    sqlite_url: str, receiver: WebhookReceiver
) -> None:
    rules = parse(
        {
            "webhooks": [
                {"kind": "json", "name": "field", "url": receiver.url("/field")},
                {"kind": "json", "name": "noc", "url": receiver.url("/noc")},
            ],
            "routes": [
                {"rules": ["silent_unsent"], "webhooks": ["field"], "mention": ["13800000000"]},
                {"webhooks": ["noc"]},  # every rule
                {"rules": ["journal_full"], "webhooks": ["noc"], "mention": ["all"]},
            ],
        }
    )
    with open_database(sqlite_url) as store:
        round_(store, rules, Verdict(firing=[silent("POS-0001"), FULL]), time.time())
    field = receiver.bodies("/field")
    assert [(b["rule"], b["mention"]) for b in field] == [("silent_unsent", ["13800000000"])]
    noc = {b["rule"]: b.get("mention") for b in receiver.bodies("/noc")}
    assert noc == {"silent_unsent": None, "journal_full": ["all"]}


def test_routes_by_severity_and_each_message_says_its_severity(
    sqlite_url: str, receiver: WebhookReceiver
) -> None:
    """The on-call group gets only what is critical (a silent terminal by default, the
    journal once the file raises it); the daily group the rest; the title says which."""
    rules = parse(
        {
            "rules": {"silent_unsent": {}, "journal_full": {}, "signal_poor": {}},
            "webhooks": [
                {"kind": "json", "name": "oncall", "url": receiver.url("/oncall")},
                {"kind": "wecom", "name": "daily", "url": receiver.url("/daily")},
            ],
            "routes": [
                {"severity": ["critical"], "webhooks": ["oncall"], "mention": ["all"]},
                {"severity": ["warning", "info"], "webhooks": ["daily"]},
            ],
        }
    )
    poor = Alert("signal_poor", "POS-0002", "终端 POS-0002 信号偏弱", "poor signal", {})
    with open_database(sqlite_url) as store:
        round_(store, rules, Verdict(firing=[silent("POS-0001"), FULL, poor]), time.time())
    oncall = receiver.bodies("/oncall")
    assert [(b["rule"], b["severity"]) for b in oncall] == [("silent_unsent", "critical")]
    assert oncall[0]["title"].startswith("【告警·严重】终端失联且有未上传交易 / FIRING (critical)")
    daily = receiver.bodies("/daily")
    assert len(daily) == 1  # the two alerts due together: one digest
    content = daily[0]["markdown"]["content"]
    assert "【告警·警告】终端日志将满" in content and "【告警·提示】信号持续偏弱" in content
    assert "终端失联" not in content
    raised = parse({"rules": {"journal_full": {"severity": "critical"}}})
    assert (raised.severity("journal_full"), raised.severity("silent_unsent")) == (
        "critical",
        "critical",
    )
    assert raised.severity("signal_poor") == "info"


def test_each_bot_mentions_as_it_documents() -> None:
    message = {
        "rule": "silent_unsent",
        "subject": "POS-0001",
        "zh": "终端 POS-0001 已 20 分钟无消息",
        "en": "device POS-0001 silent for 20 min",
        "facts": {},
        "fired_at": 1_796_000_000.0,
        "mention": ["13800000000", "ou_7d8a6e6df7621556ce0d21922b676706", "all"],
    }
    wecom = digest("wecom", [("firing", message)])
    assert wecom["msgtype"] == "text"  # its markdown cannot mention by mobile
    assert wecom["text"]["mentioned_mobile_list"] == ["13800000000", "@all"]
    assert "【告警】终端失联且有未上传交易" in wecom["text"]["content"]
    assert "<font" not in wecom["text"]["content"] and "###" not in wecom["text"]["content"]
    ding = digest("dingtalk", [("firing", message)])
    assert ding["at"] == {"atMobiles": ["13800000000"], "isAtAll": True}
    assert ding["markdown"]["text"].endswith("@13800000000")  # DingTalk wants it in the text
    feishu = digest("feishu", [("firing", message)])["content"]["text"]
    assert feishu.endswith(
        '<at user_id="ou_7d8a6e6df7621556ce0d21922b676706"></at> <at user_id="all">所有人</at>'
    )
    plain = digest("wecom", [("firing", {**message, "mention": []})])
    assert plain["msgtype"] == "markdown"  # no one to mention: as before


@pytest.mark.parametrize(
    ("routes", "said"),
    [
        ([{"webhooks": ["nosuch"]}], "route 1: no webhook named 'nosuch' (known: noc)"),
        ([{"webhooks": ["noc"], "rules": ["silent"]}], "route 1: 'silent' is not a rule"),
        ([{"webhooks": ["noc"], "mention": ["138"]}], "route 1: mention '138': expected"),
        ([{"rules": ["cell_down"]}], "route 1: webhooks is required"),
        ([{"webhooks": ["noc"], "when": "night"}], "route 1: unknown key(s) when"),
        ([{"webhooks": "noc"}], "route 1: webhooks must be a list of text"),
        ([{"webhooks": ["noc"], "severity": ["high"]}], "route 1: severity 'high' is not one"),
    ],
)
def test_a_wrong_route_is_refused_with_where(routes: list[dict[str, object]], said: str) -> None:
    hooks = [{"kind": "json", "name": "noc", "url": "http://127.0.0.1:9/x"}]
    with pytest.raises(InputError) as refused:
        parse({"webhooks": hooks, "routes": routes}, "rules.toml")
    assert str(refused.value).startswith(f"rules.toml: {said}")


def test_silence_commands(
    sqlite_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    open_database(sqlite_url).close()
    base = ["alerts", "silence", "--db", sqlite_url]
    argv = [*base, "--subject", "POS-0001", "--for", "2h", "--reason", "门店装修", "--by", "李工"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert (
        out.startswith("静默 #1:全部告警（POS-0001）,至 ")
        and "silence #1: every alert of POS-0001" in out
    )
    assert (
        main([*base, "--rule", "cell_down", "--until", "2099-01-01 09:00", "--reason", "基站维修"])
        == 0
    )
    capsys.readouterr()
    assert main(["alerts", "silences", "--db", sqlite_url]) == 0
    listed = capsys.readouterr().out
    assert "#1  全部告警（POS-0001） / every alert of POS-0001" in listed
    assert (
        "李工: 门店装修" in listed
        and "#2  同一基站多台终端失联 / many terminals down in one cell" in listed
    )
    assert "→ 2099-01-01 09:00  生效中 / in force" in listed and listed.endswith(
        "静默 2 条 / 2 silence(s)\n"
    )
    with open_database(sqlite_url) as store:
        apply(store, Verdict(firing=[silent("POS-0001")]), time.time(), lambda rule: {})
    assert main(["alerts", "list", "--db", sqlite_url]) == 0
    assert "silent_unsent:POS-0001  [已静默至 " in capsys.readouterr().out
    assert main(["alerts", "unsilence", "--db", sqlite_url, "1"]) == 0
    assert "静默 #1 于 " in capsys.readouterr().out
    assert main(["alerts", "silences", "--db", sqlite_url]) == 0
    assert "#1 " not in capsys.readouterr().out
    assert main(["alerts", "silences", "--db", sqlite_url, "--all"]) == 0
    assert "已结束 / over" in capsys.readouterr().out

    for wrong, said in (
        ([*base, "--for", "2h", "--reason", "x"], "give --rule, --subject or both"),
        (
            [*base, "--rule", "cell_down", "--until", "2020-01-01 09:00", "--reason", "x"],
            "has passed",
        ),
        ([*base, "--rule", "cell_down", "--for", "2h", "--reason", " "], "--reason must say why"),
        ([*base, "--rule", "cell_down", "--for", "2x", "--reason", "x"], "expected a duration"),
        ([*base, "--rule", "cell", "--for", "2h", "--reason", "x"], "invalid choice: 'cell'"),
        (["alerts", "unsilence", "--db", sqlite_url, "9"], "no silence #9"),
    ):
        try:
            status = main(wrong)
        except SystemExit as exc:  # argparse refuses before the command runs
            status = int(exc.code or 0)
        err = capsys.readouterr().err
        assert status == 2 and "daozhang" in err and said in err, (wrong, err)


def test_run_once_says_what_a_silence_kept_quiet(
    sqlite_url: str, tmp_path: Path, receiver: WebhookReceiver, capsys: pytest.CaptureFixture[str]
) -> None:
    rules = a_backlog_two_hours_old(sqlite_url, tmp_path, receiver, time.time())
    argv = ["alerts", "silence", "--db", sqlite_url, "--subject", "POS-0001", "--for", "1h"]
    assert main([*argv, "--reason", "门店停电"]) == 0
    capsys.readouterr()
    assert main(["alerts", "run", "--db", sqlite_url, "--rules", str(rules), "--once"]) == 0
    out = capsys.readouterr().out
    assert "firing    oldest_unsent:POS-0001  (已静默 / silenced)" in out and "sent 0" in out
    assert receiver.bodies("/hook") == []
