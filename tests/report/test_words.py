"""Every code a report can meet has its Chinese and English name in words.py."""

from __future__ import annotations

import re

import pytest
from daozhang import contract, words
from daozhang.correlate.classify import CAUSES, DATA_VALUES, STATUSES
from daozhang.settle.rows import CHECK_FLAGS, PAYOUT_STATES

HAN = re.compile(r"[\u4e00-\u9fff]")


@pytest.mark.parametrize(
    ("table", "codes"),
    [
        (words.STATUS, STATUSES),
        (words.CAUSE, CAUSES),
        (words.DATA, DATA_VALUES),
        (words.STAGE, contract.LINK_STAGES),
        (words.BOOT_CAUSE, contract.BOOT_CAUSES),
        (words.RECEIPT_STATE, contract.RECEIPT_STATES),
        (words.TXN_TYPE, contract.TXN_TYPES),
        (words.SETTLE_FLAG, CHECK_FLAGS),
        (words.PAYOUT_STATE, PAYOUT_STATES),
    ],
    ids=lambda v: "" if isinstance(v, dict) else None,
)
def test_every_code_has_a_chinese_and_an_english_name(
    table: dict[str, tuple[str, str]], codes: tuple[str, ...]
) -> None:
    assert set(codes) <= set(table), set(codes) - set(table)
    for code, (zh, en) in table.items():
        assert HAN.search(zh) and not HAN.search(en), code
        assert "_" not in en, code  # a name, not the code again


def test_a_name_reads_chinese_then_english() -> None:
    assert words.name(words.CAUSE, "network_reversed") == "无应答冲正 reversed, no response"
    assert words.name(words.CAUSE, "") == ""
    assert words.name(words.CAUSE, "brand_new") == "brand_new"  # shown, never hidden


def test_csv_cells_that_look_like_formulas_are_text() -> None:
    from daozhang.report.export import cell

    assert cell('=HYPERLINK("http://x")') == '\'=HYPERLINK("http://x")'
    hostile = ("+1 555", "@SUM(A1)", "-cmd|' /C calc'!A0", "\tx")
    assert [cell(v) for v in hostile] == ["'" + v for v in hostile]
    plain = ("-12.30", "12.30", "P0001", 3, "")
    assert [cell(v) for v in plain] == list(plain)
