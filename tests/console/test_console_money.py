"""The money page, the lookup form and the cells page over HTTP against the real server
(`daozhang console` in its own process) on money_data's store: sums, evidence, masked cards,
who may see money, and each way support staff can look a sale up."""

from __future__ import annotations

import re

import httpx
import pytest

from tests.console import money_data
from tests.console.server import login
from tests.correlate.builder import M1, M2

CARD = re.compile(r"622848\d")  # the test card's first six, then a digit: unmasked


@pytest.fixture(scope="module")
def support(money_url: str) -> httpx.Client:
    c = httpx.Client(base_url=money_url, follow_redirects=False, timeout=60)
    assert login(c, "li").status_code == 303
    return c


def test_money_sums_unpaid_and_short_by_cause_acquirer_and_day(support: httpx.Client) -> None:
    page = support.get("/money")
    assert page.status_code == 200
    html = page.text
    by_cause = html.split('id="by-cause"')[1].split("</table>")[0]
    assert re.search(
        r"收单方问题 acquirer side</a></td><td class=\"num\">3</td>"
        r"<td class=\"num\">¥600.00</td><td class=\"num\">¥0.00",
        by_cause,
    )
    assert "无应答冲正 reversed, no response" in by_cause and "¥123.45" in by_cause
    assert re.search(
        r"风控冻结留存 risk hold</a></td><td class=\"num\">2</td>"
        r"<td class=\"num\">¥0.00</td><td class=\"num\">¥40.00",
        by_cause,
    )
    by_acquirer = html.split('id="by-acquirer"')[1].split("</table>")[0]
    assert re.search(r"ACQ1</a></td><td class=\"num\">4</td><td class=\"num\">¥723.45", by_acquirer)
    assert re.search(
        r"ACQ2</a></td><td class=\"num\">2</td><td class=\"num\">¥0.00</td>"
        r"<td class=\"num\">¥40.00",
        by_acquirer,
    )
    by_day = html.split('id="by-day"')[1].split("</table>")[0]
    assert "2025-01-08" in by_day and "¥723.45" in by_day
    # The evidence is on the page, behind a click: the outage the reversed sale fell in.
    findings = html.split('id="findings"')[1].split("</table>")[0]
    assert findings.count("<details") == 6
    assert "link down 2025-01-07 14:59:00 .. 2025-01-07 15:04:00" in findings
    assert "622848******1234" in findings and not CARD.search(findings)


def test_money_filters_by_cause_acquirer_and_day(support: httpx.Client) -> None:
    def keys(query: str) -> set[str]:
        html = support.get(f"/money?{query}").text.split('id="findings"')[1]
        return set(re.findall(r'data-key="([^"]+)"', html))

    assert len(keys("cause=acquirer_side")) == 3
    assert {k.split("/")[0] for k in keys("acquirer=ACQ2")} == {money_data.M5}
    assert len(keys("day=2025-01-08")) == 6
    assert keys("day=2025-01-09") == set()


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ({"by": "rrn", "rrn": money_data.SETTLED_RRN}, "已到账 paid"),
        (
            {"by": "terminal", "tid": "10000001", "trc": "000001"},
            "无应答冲正 reversed, no response",
        ),
        ({"by": "merchant", "mid": M2, "day": "2025-01-07"}, "收单方问题 acquirer side"),
        (
            {"by": "amount", "amount": "123.45", "around": "2025-01-07 16:30"},
            "无应答冲正 reversed, no response",
        ),
    ],
)
def test_lookup_finds_a_sale_four_ways(
    support: httpx.Client, query: dict[str, str], expected: str
) -> None:
    page = support.get("/money/lookup", params=query)
    assert page.status_code == 200, page.text
    results = page.text.split('id="results"')[1].split("</table>")[0]
    assert len(re.findall(r"<tr data-key=", results)) == 1
    assert expected in results
    assert "<details open" in results  # the evidence shown at once


def test_lookup_by_what_else_the_caller_has(support: httpx.Client) -> None:
    """The fields `daozhang lookup` takes: a QR sale's order number; the trace without its
    zeros and a day; a merchant-day narrowed by amount; the card's last four digits."""

    def found(params: dict[str, str]) -> list[str]:
        page = support.get("/money/lookup", params=params)
        assert page.status_code == 200, page.text
        if 'id="no-match"' in page.text:
            return []
        results = page.text.split('id="results"')[1].split("</table>")[0]
        return re.findall(r'<tr data-key="([^"]+)"', results)

    (qr,) = found({"by": "order", "order": money_data.QR_ORDER})
    assert found({"by": "order", "order": "WX-NO-SUCH"}) == []
    paid = found({"by": "terminal", "tid": "10000001", "trc": "2", "day": "2025-01-07"})
    assert len(paid) == 1 and paid != [qr]
    assert found({"by": "terminal", "tid": "10000001", "trc": "2", "day": "2025-01-08"}) == []
    assert found({"by": "merchant", "mid": M1, "day": "2025-01-07", "amount": "29.90"}) == [qr]
    assert len(found({"by": "merchant", "mid": M1, "day": "2025-01-07"})) == 3
    reversed_sale = {"by": "amount", "amount": "123.45", "around": "2025-01-07 15:00"}
    assert len(found({**reversed_sale, "last4": "1234"})) == 1
    assert found({**reversed_sale, "last4": "9999"}) == []


def test_lookup_outside_the_window_finds_nothing(support: httpx.Client) -> None:
    page = support.get(
        "/money/lookup",
        params={"by": "amount", "amount": "123.45", "around": "2025-01-07 18:00", "window": "2"},
    )
    assert page.status_code == 200 and 'id="no-match"' in page.text


def test_lookup_finds_a_receipt_the_collector_refused(support: httpx.Client) -> None:
    page = support.get("/money/lookup", params={"by": "rrn", "rrn": money_data.REFUSED_RRN})
    refused = page.text.split('id="refused"')[1]
    assert money_data.REFUSED_DEV in refused and "¥88.00" in refused
    assert "凭条仍在终端上" in refused and "still on the terminal" in refused


@pytest.mark.parametrize(
    ("query", "error"),
    [
        ({"by": "rrn", "rrn": "12345"}, "参考号应为12位 RRN: 12 letters or digits"),
        ({"by": "order", "order": "WX 2025"}, "订单号应为1-64个字符、不含空格"),
        ({"by": "terminal", "tid": "10000001", "trc": "1234567"}, "trace: up to 6 digits"),
        (
            {"by": "amount", "amount": "12", "around": "2025-01-07 16:30", "last4": "12a4"},
            "卡号后四位应为4位数字",
        ),
        ({"by": "terminal", "tid": "1000000", "trc": "000001"}, "终端号应为8位"),
        ({"by": "merchant", "mid": M2, "day": "7 Jan"}, "day: YYYY-MM-DD"),
        ({"by": "amount", "amount": "1.234", "around": "2025-01-07 16:30"}, "amount: yuan"),
        ({"by": "amount", "amount": "12", "around": "yesterday"}, "time: YYYY-MM-DD HH:MM"),
        ({"by": "card"}, "unknown lookup"),
    ],
)
def test_a_malformed_lookup_says_what_is_wrong(
    support: httpx.Client, query: dict[str, str], error: str
) -> None:
    page = support.get("/money/lookup", params=query)
    assert page.status_code == 400 and error in page.text


def test_fleet_staff_see_no_money(money_url: str) -> None:
    with httpx.Client(base_url=money_url, follow_redirects=False, timeout=60) as c:
        for path in ("/money", "/money/lookup?by=rrn&rrn=502000000001", "/cells"):
            assert c.get(path).status_code == 303, path  # not logged in: the login form
        assert login(c, "wang").status_code == 303
        assert c.get("/money").status_code == 403
        assert (
            c.get("/money/lookup", params={"by": "rrn", "rrn": "502000000001"}).status_code == 403
        )
        assert "钱款 Money" not in c.get("/fleet").text
        assert c.get("/cells").status_code == 200


def test_cells_tell_a_carrier_cell_from_one_terminals_spot(support: httpx.Client) -> None:
    html = support.get("/cells").text
    rows = dict(re.findall(r'<tr data-cell="([^"]+)" data-verdict="([^"]+)"', html))
    assert rows == {money_data.CELL_DOWN: "cell_down", money_data.CELL_SPOT: "spot", "-": "no_cell"}
    down = html.split(f'data-cell="{money_data.CELL_DOWN}"')[1].split("</tr>")[0]
    assert "基站故障 the carrier&#39;s cell was down" in down
    assert '<td class="num down">4</td><td class="num">5</td>' in down
    assert all(dev in down for dev in money_data.CELL_DOWN_DEVS)
    spot = html.split(f'data-cell="{money_data.CELL_SPOT}"')[1].split("</tr>")[0]
    assert money_data.SPOT_DEV in spot and "本终端位置问题" in spot
    assert support.get("/cells?range=7d").status_code == 200
    assert support.get("/cells?range=1y").status_code == 404
