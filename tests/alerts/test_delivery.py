"""Alert state and delivery against a local webhook receiver: one message when an alert
fires and one when it resolves, none in between and none again after a restart; each bot's
documented body and signature; retries with backoff; a stalled webhook costs one timeout."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable, Iterator
from typing import Any

import pytest
from daozhang.alerts.alert import Alert, Verdict
from daozhang.alerts.deliver import backoff_s, deliver
from daozhang.alerts.message import body
from daozhang.alerts.rules import Rules, parse
from daozhang.alerts.runner import run_forever
from daozhang.alerts.state import Destinations, apply, firing_now
from daozhang.collector.timeline import ingest_heartbeat, ingest_status
from daozhang.lab.devicewire import heartbeat_bytes
from daozhang.schema import open_database
from daozhang.store import Store

from tests.fakes.webhook_receiver import WebhookReceiver
from tests.waiting import wait_until

SECRET = "SEC0123456789abcdef"


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    server = WebhookReceiver(secret=SECRET)
    try:
        yield server
    finally:
        server.stop()


def rules_for(receiver: WebhookReceiver, **delivery: Any) -> Rules:
    return parse(
        {
            "webhooks": [
                {"kind": "wecom", "url": receiver.url("/wecom")},
                {"kind": "dingtalk", "url": receiver.url("/dingtalk"), "secret": SECRET},
                {"kind": "feishu", "url": receiver.url("/feishu"), "secret": SECRET},
                {"kind": "json", "url": receiver.url("/hook")},
            ],
            "delivery": {"timeout_s": 1, "attempts": 3, **delivery},
        }
    )


def everywhere(hooks: Iterable[str]) -> Destinations:
    """Every alert to every webhook, mentioning no one (a rules file without [[routes]])."""
    labels = list(hooks)
    return lambda rule: {label: () for label in labels}


SILENT = Alert(
    "silent_unsent",
    "POS-0001",
    "终端 POS-0001 已 20 分钟无消息,设备上有 12 条未上传记录",
    "device POS-0001 silent for 20 min with 12 unsent records",
    {"dev": "POS-0001", "unsent": 12, "unpaid_fen": 123456},
)


def round_(store: Store, rules: Rules, verdict: Verdict, now: float) -> None:
    hooks = {h.label: h for h in rules.webhooks}
    apply(store, verdict, now, everywhere(hooks))
    deliver(store, hooks, now, rules.timeout_s, rules.attempts)


def test_one_message_when_it_fires_and_one_when_it_resolves_across_restarts(
    db_url: str, receiver: WebhookReceiver
) -> None:
    rules = rules_for(receiver)
    now = time.time()
    with open_database(db_url) as store:
        round_(store, rules, Verdict(firing=[SILENT]), now)
        round_(store, rules, Verdict(firing=[SILENT]), now + 60)
        assert [k for k, _, _ in firing_now(store)] == ["silent_unsent:POS-0001"]
    # A restart: a new process, the same store. Still firing: nothing new is sent.
    with open_database(db_url) as store:
        round_(store, rules, Verdict(firing=[SILENT]), now + 120)
    for path in ("/wecom", "/dingtalk", "/feishu", "/hook"):
        assert len(receiver.bodies(path)) == 1, path
    with open_database(db_url) as store:
        round_(store, rules, Verdict(), now + 180)
        round_(store, rules, Verdict(), now + 240)
        assert firing_now(store) == []
    hook = receiver.bodies("/hook")
    assert [b["event"] for b in hook] == ["firing", "resolved"]
    assert hook[1]["subject"] == "POS-0001" and hook[1]["facts"]["unsent"] == 12
    wecom = receiver.bodies("/wecom")[1]["markdown"]["content"]
    assert "【已恢复】终端失联且有未上传交易" in wecom and "持续 3 分钟 / lasted 3 min" in wecom
    # It fires again later: a new message, as a new episode.
    with open_database(db_url) as store:
        round_(store, rules, Verdict(firing=[SILENT]), now + 300)
    assert [b["event"] for b in receiver.bodies("/hook")] == ["firing", "resolved", "firing"]


def test_each_bot_gets_its_documented_body_signed(
    sqlite_url: str, receiver: WebhookReceiver
) -> None:
    rules = rules_for(receiver)
    with open_database(sqlite_url) as store:
        round_(store, rules, Verdict(firing=[SILENT]), time.time())
    (wecom,) = receiver.bodies("/wecom")
    assert wecom["msgtype"] == "markdown"
    content = wecom["markdown"]["content"]
    assert content.startswith('### <font color="warning">【告警】终端失联且有未上传交易')
    assert "FIRING: device silent with unsent receipts" in content
    assert "(北京时间 / Beijing time)" in content and len(content.encode()) <= 4096
    assert "处理 / next: 请联系商户检查终端电源与网络" in content
    (ding,) = receiver.bodies("/dingtalk")  # recorded only when its signature checked out
    assert ding["msgtype"] == "markdown" and ding["markdown"]["title"].startswith("【告警】")
    assert "12 条未上传记录" in ding["markdown"]["text"]
    (feishu,) = receiver.bodies("/feishu")
    assert feishu["msg_type"] == "text" and "sign" in feishu
    text = feishu["content"]["text"]
    assert text.index("终端 POS-0001") < text.index("device POS-0001")  # Chinese first


def test_a_bad_signature_is_a_refusal_that_is_retried(
    sqlite_url: str, receiver: WebhookReceiver
) -> None:
    rules = parse(
        {
            "webhooks": [{"kind": "dingtalk", "url": receiver.url("/dingtalk"), "secret": "x"}],
            "delivery": {"attempts": 2},
        }
    )
    logged: list[str] = []
    now = time.time()
    with open_database(sqlite_url) as store:
        hooks = {h.label: h for h in rules.webhooks}
        apply(store, Verdict(firing=[SILENT]), now, everywhere(hooks))
        first = deliver(store, hooks, now, 1, 2, log=logged.append)
        assert first.failed == 1 and "dingtalk refused it: 310000" in logged[0]
        second = deliver(store, hooks, now + backoff_s(1), 1, 2, log=logged.append)
        assert second.given_up == 1 and "gave up" in logged[1]
        assert deliver(store, hooks, now + 3600, 1, 2).sent == 0
    assert receiver.bodies("/dingtalk") == []


def test_failures_back_off_and_keep_the_order(sqlite_url: str, receiver: WebhookReceiver) -> None:
    rules = parse({"webhooks": [{"kind": "wecom", "url": receiver.url("/wecom")}]})
    hooks = {h.label: h for h in rules.webhooks}
    receiver.fail_next = 2
    now = time.time()
    with open_database(sqlite_url) as store:
        apply(store, Verdict(firing=[SILENT]), now, everywhere(hooks))
        apply(store, Verdict(), now + 1, everywhere(hooks))  # resolved at once: queued behind it
        # Both due: one digest to the bot, which fails; both wait for the retry.
        assert deliver(store, hooks, now + 1, 1, 8, log=lambda _: None).failed == 2
        # Not due yet: nothing is tried.
        assert deliver(store, hooks, now + 2, 1, 8).sent == 0 and receiver.attempts == 1
        assert deliver(store, hooks, now + 1 + backoff_s(1), 1, 8, log=lambda _: None).failed == 2
        sent = deliver(store, hooks, now + 1 + backoff_s(1) + backoff_s(2), 1, 8)
        assert sent.sent == 2 and receiver.attempts == 3
    (content,) = [b["markdown"]["content"] for b in receiver.bodies("/wecom")]
    assert content.startswith("### 【daozhang】1 条告警,1 条恢复 / 1 firing, 1 resolved")
    assert content.index("【告警】") < content.index("【已恢复】")
    assert backoff_s(1) == 5 and backoff_s(2) == 10 and backoff_s(20) == 600


def test_a_stalled_webhook_costs_one_timeout_per_round(
    sqlite_url: str, receiver: WebhookReceiver
) -> None:
    receiver.stall_s = 3
    rules = parse({"webhooks": [{"kind": "json", "url": receiver.url("/hook")}]})
    hooks = {h.label: h for h in rules.webhooks}
    alerts = [Alert("signal_poor", f"D{n}", "信号差", "poor signal") for n in range(5)]
    with open_database(sqlite_url) as store:
        apply(store, Verdict(firing=alerts), time.time(), everywhere(hooks))
        started = time.monotonic()
        done = deliver(store, hooks, time.time(), 0.5, 8, log=lambda _: None)
        assert time.monotonic() - started < 2.5 and done.failed == 1


def test_a_held_alert_stays_firing_and_an_unknown_rule_is_left_alone(sqlite_url: str) -> None:
    pki = Alert("pki_expiry", "CRL:crl.pem", "吊销列表 crl.pem 3 天后过期", "CRL expires in 3 days")
    with open_database(sqlite_url) as store:
        apply(store, Verdict(firing=[SILENT, pki]), 1000.0, everywhere([]))
        apply(
            store,
            Verdict(held={SILENT.key}, unknown={"pki_expiry": "gone"}),
            2000.0,
            everywhere([]),
        )
        assert len(firing_now(store)) == 2


def test_the_json_body_says_money_in_yuan_and_beijing_time() -> None:
    alert = {
        "rule": "unexplained_unpaid",
        "subject": "fleet",
        "zh": "原因不明的未到账 ¥1234.56:3 笔,2 个商户",
        "en": "unexplained unpaid ¥1234.56: 3 transactions, 2 merchants",
        "facts": {"unpaid_fen": 123456},
        "fired_at": 1_796_623_200.0,  # 2026-12-07 14:00 Beijing time
    }
    sent = body("json", "firing", alert)
    assert sent["at_beijing"] == "2026-12-07 14:00" and "¥1234.56" in sent["zh"]
    assert sent["title"] == "【告警】原因不明的未到账 / FIRING: unexplained unpaid money"


def test_many_at_once_go_to_a_bot_as_digests_and_to_json_one_by_one(
    sqlite_url: str, receiver: WebhookReceiver
) -> None:
    rules = rules_for(receiver)
    hooks = {h.label: h for h in rules.webhooks}
    down = [
        Alert("silent_unsent", f"POS-{n:04d}", f"终端 POS-{n:04d} 失联", "silent")
        for n in range(12)
    ]
    with open_database(sqlite_url) as store:
        apply(store, Verdict(firing=down), time.time(), everywhere(hooks))
        done = deliver(store, hooks, time.time(), 1, 3)
    assert done.sent == 4 * 12
    assert len(receiver.bodies("/hook")) == 12
    for path in ("/wecom", "/dingtalk", "/feishu"):
        assert len(receiver.bodies(path)) == 2, path  # 10, then 2
    text = receiver.bodies("/feishu")[1]["content"]["text"]
    assert text.startswith("【daozhang】2 条告警,0 条恢复") and "POS-0011" in text


def test_two_runners_on_one_store_send_each_message_once(
    db_url: str, receiver: WebhookReceiver
) -> None:
    receiver.stall_s = 0.3
    rules = parse({"webhooks": [{"kind": "json", "url": receiver.url("/hook")}]})
    hooks = {h.label: h for h in rules.webhooks}
    alerts = [Alert("signal_poor", f"D{n}", "信号差", "poor signal") for n in range(4)]
    now = time.time()
    with open_database(db_url) as store:
        apply(store, Verdict(firing=alerts), now, everywhere(hooks))
        apply(store, Verdict(firing=alerts), now, everywhere(hooks))  # the second runner's round
    rounds: list[int] = []

    def runner() -> None:
        with open_database(db_url) as store:
            rounds.append(deliver(store, hooks, time.time(), 2, 3).sent)

    threads = [threading.Thread(target=runner) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert sum(rounds) == 4  # between them; each message once
    assert sorted(b["subject"] for b in receiver.bodies("/hook")) == ["D0", "D1", "D2", "D3"]


def test_the_runner_retries_between_rounds_and_keeps_evaluating(
    sqlite_url: str, receiver: WebhookReceiver
) -> None:
    """A webhook down at the first try: the retry goes out after its backoff (5 s), long
    before the next round (60 s); the loop stops when asked."""
    now = time.time()
    with open_database(sqlite_url) as store, store.transaction() as tx:
        ingest_status(tx, "POS-0001", b"online", now - 3600)
        hb = heartbeat_bytes("POS-0001", t=int(now - 60), jrec=4, jold_s=7200, next_seq=5)
        ingest_heartbeat(tx, "POS-0001", hb, now - 60)
    rules = parse(
        {
            "rules": {"oldest_unsent": {"minutes": 60}},
            "webhooks": [{"kind": "feishu", "url": receiver.url("/feishu"), "secret": SECRET}],
        }
    )
    receiver.fail_next = 1
    said: list[str] = []
    stopping = threading.Event()
    loop = threading.Thread(
        target=run_forever,
        args=(lambda: open_database(sqlite_url, migrate=False), rules, 60.0),
        kwargs={"say": said.append, "stop": stopping.is_set},
    )
    loop.start()
    try:
        assert wait_until(lambda: receiver.attempts == 1, timeout=10)
        assert receiver.bodies("/feishu") == []
        assert wait_until(lambda: receiver.bodies("/feishu"), timeout=10)
        retried_after = receiver.received[0].at - now
        assert 5 <= retried_after < 15, retried_after
    finally:
        stopping.set()
        loop.join(timeout=10)
    assert not loop.is_alive()
    assert "alerts: firing oldest_unsent:POS-0001" in said
    assert any("not sent (HTTP 500); retrying" in line for line in said)
