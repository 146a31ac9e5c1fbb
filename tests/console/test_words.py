"""Every problem `fleet status` can name has Chinese and English words on the console."""

from __future__ import annotations

from daozhang.console.words import PROBLEM, duration, mask_pan, problem_code


def test_every_fleet_status_problem_has_words() -> None:
    # The sentences fleet/status.py builds (its `_level` and `refused_text`).
    sentences = {
        "silent with 3 unsent records": "silent_unsent",
        "offline with 2 unsent records": "offline_unsent",
        "never heard from": "never_heard",
        "silent": "silent",
        "offline": "offline",
        "backlog 5 records, oldest 700 s": "backlog",
        "uploads failing": "uploads_failing",
        "refused 12 (mac 10, record_schema 2)": "refused",
        "ok": "ok",
        "silent; refused 3 (mac 3)": "silent",
    }
    for sentence, code in sentences.items():
        assert problem_code(sentence) == code, sentence
        zh, en = PROBLEM[code]
        assert zh != en and zh and en
    assert problem_code("something new") == "something new"  # shown as it is, not hidden


def test_durations_read_in_both_languages() -> None:
    assert duration(None) == "-"
    assert duration(42) == "42秒 42 s"
    assert duration(600) == "10分钟 10 min"
    assert duration(7200) == "2小时 2 h"


def test_card_numbers_are_masked_whatever_comes_in() -> None:
    assert mask_pan("622848******1234") == "622848******1234"
    assert mask_pan("6228480402564890018") == "622848*********0018"
    assert mask_pan("4111111111111111") == "411111******1111"
    assert mask_pan("12345") == "*****"
    assert mask_pan(None) == mask_pan("") == "-"
