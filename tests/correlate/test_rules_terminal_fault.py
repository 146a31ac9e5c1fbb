"""Terminal trouble (DESIGN §2.3 `terminal_fault`): restarts (the `boot` diagnostic with its
cause, or a heartbeat whose boot counter moved on), watchdog resets, brownouts and firmware
changes near a sale are cited; a restart right after a sale, with the link up, is what broke
it; a sale the acquirer has and the terminal lost in a restart says so.
"""

from __future__ import annotations

from daozhang.correlate.render import explain

from tests.correlate.builder import Shop, facts


def test_a_sale_reversed_for_a_terminal_fault_is_terminal_fault(any_shop: Shop) -> None:
    s = any_shop.sale("2025-01-07 15:00", amt=123_450, st="reversed", rv="96")
    f = any_shop.run("2025-01-09 12:00").of(s)
    assert (f.status, f.cause, f.data) == ("gap", "terminal_fault", "complete")
    assert f.confidence == 0.9
    text = explain(f)
    assert text["zh"].startswith("2025-01-07 15:00:00的¥1234.50交易：终端自身故障")
    assert "下一步：请先向收单机构确认持卡人是否被扣款" in text["zh"]
    assert text["en"].startswith("The ¥1234.50 sale at 2025-01-07 15:00:00: The terminal itself")
    assert "Next: Ask the acquirer whether the cardholder was charged" in text["en"]


def test_a_watchdog_reset_right_after_a_sale_with_the_link_up_broke_it(any_shop: Shop) -> None:
    any_shop.heartbeat("2025-01-07 14:55")
    s = any_shop.sale("2025-01-07 15:00", amt=8_800, st="no_response")
    any_shop.boot("2025-01-07 15:00:40", "watchdog")
    any_shop.heartbeat("2025-01-07 15:10", boot=2, cause="watchdog")
    f = any_shop.run("2025-01-09 12:00").of(s)
    assert (f.status, f.cause, f.also) == ("gap", "terminal_fault", ["reversal_pending"])
    assert f.confidence == 0.9
    # The boot record gives the time; the heartbeat's moved counter adds no second restart.
    assert [x for x in facts(f, "diag_event") if "restarted" in x] == [
        "the terminal restarted (watchdog) at 2025-01-07 15:00:40: 40 s after the sale"
    ]
    text = explain(f)
    assert "终端在2025-01-07 15:00:40重启（看门狗复位）" in text["zh"] and "¥88.00" in text["zh"]
    assert "the terminal restarted at 2025-01-07 15:00:40 (watchdog reset)" in text["en"]


def test_a_restart_inside_an_outage_leaves_the_network_cause(shop: Shop) -> None:
    shop.outage("2025-01-07 14:58", "2025-01-07 15:20")
    s = shop.sale("2025-01-07 15:00", st="reversed", rv="98")
    shop.boot("2025-01-07 15:01", "brownout")
    f = shop.run("2025-01-09 12:00").of(s)
    assert (f.cause, f.also) == ("network_reversed", None)
    assert "the terminal restarted (brownout) at 2025-01-07 15:01:00: 1 min 0 s after the sale" in (
        facts(f, "diag_event")
    )


def test_a_restart_long_after_the_sale_is_cited_but_not_the_cause(shop: Shop) -> None:
    s = shop.sale("2025-01-07 15:00", st="no_response")
    shop.boot("2025-01-07 15:12", "brownout")
    f = shop.run("2025-01-09 12:00").of(s)
    assert f.cause == "reversal_pending" and f.reboot is None
    assert (
        "the terminal restarted (brownout) at 2025-01-07 15:12:00: 12 min 0 s after the sale"
        in (facts(f, "diag_event"))
    )


def test_a_firmware_change_and_a_restart_seen_only_in_heartbeats(shop: Shop) -> None:
    shop.heartbeat("2025-01-07 14:50", fw="1.0", boot=1)
    s = shop.sale("2025-01-07 15:00", st="no_response")
    shop.heartbeat("2025-01-07 15:04", fw="1.1", boot=2, cause="soft")
    f = shop.run("2025-01-09 12:00").of(s)
    assert f.cause == "terminal_fault"
    assert (
        "firmware changed from 1.0 to 1.1 between 2025-01-07 14:50:00 and 2025-01-07 15:04:00"
        in facts(f, "heartbeat")
    )
    assert (
        "the terminal restarted (soft) by the heartbeat at 2025-01-07 15:04:00:"
        " 4 min 0 s after the sale" in facts(f, "diag_event")
    )
    assert "软件重启" in explain(f)["zh"] and "software restart" in explain(f)["en"]


def test_a_sale_the_terminal_lost_in_a_restart_says_so(any_shop: Shop) -> None:
    any_shop.sale("2025-01-07 14:00")  # the device reports this terminal
    row = any_shop.cleared(on="2025-01-08", at="2025-01-07 15:00", amt=5_000)
    any_shop.boot("2025-01-07 15:00:20", "brownout")
    any_shop.payout("2025-01-08")
    any_shop.heartbeat("2025-01-07 18:00", boot=2, cause="brownout")
    f = any_shop.run("2025-01-09 12:00").of(row)
    assert (f.status, f.cause, f.data, f.also) == ("settled", "", "no_receipt", ["terminal_fault"])
    assert facts(f, "diag_event") == [
        "the terminal restarted (brownout) at 2025-01-07 15:00:20: 20 s after the sale",
        "the sale's record was lost in the restart",
    ]
    text = explain(f)
    assert "终端在2025-01-07 15:00:20重启（供电不足复位），这笔交易的记录在重启中丢失" in text["zh"]
    assert "¥50.00" in text["zh"] and "下一步：" in text["zh"]
    assert "restarted at 2025-01-07 15:00:20 (brownout) and lost the sale's record" in text["en"]


def test_a_paid_sale_near_a_restart_cites_nothing(shop: Shop) -> None:
    s = shop.sale("2025-01-07 15:00")
    shop.boot("2025-01-07 15:00:20", "watchdog")
    shop.cleared(s, on="2025-01-08")
    shop.payout("2025-01-08")
    f = shop.run("2025-01-09 12:00").of(s)
    assert (f.status, f.cause, f.reboot) == ("settled", "", None)
