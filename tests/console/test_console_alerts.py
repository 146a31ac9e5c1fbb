"""The alerts page over HTTP against the real console process: what `alerts run` has firing,
critical first, with its severity and words; silencing from the page is `alerts silence`
(rule or subject, a reason, CSRF), ending one is `alerts unsilence`; wrong forms are refused
with a message and change nothing."""

from __future__ import annotations

import re
import time

import httpx
import pytest
from daozhang.alerts.alert import Alert, Verdict
from daozhang.alerts.rules import parse
from daozhang.alerts.silence import list_silences
from daozhang.alerts.state import apply
from daozhang.schema import open_database

from tests.console.server import csrf_of, login

RULES = parse({"rules": {"silent_unsent": {}, "signal_poor": {}}})
SILENT = Alert("silent_unsent", "DEVB0002", "终端 DEVB0002 已 40 分钟无消息,有 5 条未上传记录",
               "device DEVB0002 silent for 40 min with 5 unsent records", {})  # fmt: skip
POOR = Alert("signal_poor", "DEVA0001", "终端 DEVA0001 信号偏弱 35 分钟",
             "device DEVA0001 poor signal for 35 min", {})  # fmt: skip


@pytest.fixture(scope="module")
def fleet(base_url: str, db_url: str) -> httpx.Client:
    now = time.time()
    with open_database(db_url) as store:
        apply(store, Verdict(firing=[POOR, SILENT]), now - 600, RULES.destinations, RULES.severity)
    c = httpx.Client(base_url=base_url, follow_redirects=False, timeout=60)
    assert login(c, "wang").status_code == 303
    return c


def _firing(html: str) -> list[tuple[str, str]]:
    table = html.split('id="firing"')[1].split("</table>", maxsplit=1)[0]
    return re.findall(r'data-key="([^"]+)" class="severity-(\w+)"', table)


def test_firing_alerts_critical_first_in_chinese_and_english(fleet: httpx.Client) -> None:
    page = fleet.get("/alerts")
    assert page.status_code == 200
    assert _firing(page.text) == [
        ("silent_unsent:DEVB0002", "critical"),
        ("signal_poor:DEVA0001", "info"),
    ]
    table = page.text.split('id="firing"')[1].split("</table>")[0]
    assert "严重 critical" in table and "提示 info" in table
    assert "终端失联且有未上传交易 device silent with unsent receipts" in table
    assert "有 5 条未上传记录" in table and "5 unsent records" in table
    assert "10分钟 10 min" in table  # fired 600 s ago


def test_a_silence_from_the_page_is_kept_as_alerts_silence_keeps_it(
    fleet: httpx.Client, db_url: str
) -> None:
    token = csrf_of(fleet.get("/alerts").text)
    form = {"csrf": token, "rule": "signal_poor", "subject": "DEVA0001", "hours": "4",
            "reason": "更换天线 antenna being replaced"}  # fmt: skip
    done = fleet.post("/alerts/silence", data=form)
    assert (done.status_code, done.headers["location"]) == (303, "/alerts")
    with open_database(db_url, create=False) as store:
        (kept,) = list_silences(store, time.time())
    assert (kept.rule, kept.subject, kept.created_by) == ("signal_poor", "DEVA0001", "wang")
    assert kept.reason == "更换天线 antenna being replaced"
    assert 4 * 3600 - 120 < kept.ends_at - time.time() <= 4 * 3600
    html = fleet.get("/alerts").text
    row = html.split('data-key="signal_poor:DEVA0001"')[1].split("</tr>")[0]
    assert f"（#{kept.id}）" in row and "至 until" in row
    assert "更换天线 antenna being replaced" in html.split('id="silences"')[1]
    ended = fleet.post("/alerts/unsilence", data={"csrf": token, "id": str(kept.id)})
    assert ended.status_code == 303
    with open_database(db_url, create=False) as store:
        assert list_silences(store, time.time()) == []


@pytest.mark.parametrize(
    ("form", "said"),
    [
        ({"rule": "", "subject": "", "hours": "4", "reason": "x"}, "choose a rule, a subject"),
        ({"rule": "signal_poor", "subject": "", "hours": "4", "reason": " "}, "say why"),
        ({"rule": "signal_poor", "subject": "", "hours": "5", "reason": "x"}, "hours must be"),
        ({"rule": "nosuch", "subject": "", "hours": "4", "reason": "x"}, "no rule 'nosuch'"),
    ],
)
def test_a_wrong_silence_is_refused_with_why_and_nothing_kept(
    fleet: httpx.Client, db_url: str, form: dict[str, str], said: str
) -> None:
    token = csrf_of(fleet.get("/alerts").text)
    refused = fleet.post("/alerts/silence", data={"csrf": token, **form})
    assert refused.status_code == 400 and said in refused.text.replace("&#39;", "'")
    with open_database(db_url, create=False) as store:
        assert list_silences(store, time.time()) == []


def test_a_silence_without_the_csrf_token_or_by_nobody_is_refused(
    fleet: httpx.Client, base_url: str
) -> None:
    form = {"rule": "signal_poor", "hours": "4", "reason": "x"}
    assert fleet.post("/alerts/silence", data=form).status_code == 403
    stranger = httpx.Client(base_url=base_url, follow_redirects=False, timeout=60)
    assert stranger.get("/alerts").status_code == 303  # to the login form
    assert stranger.post("/alerts/silence", data=form).status_code == 303
