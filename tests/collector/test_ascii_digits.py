"""Issue 29: full-width and Arabic-Indic digits pass `\\d`. Trace, batch and other numeric fields
take ASCII digits only, and a card number written in other digits is still a card number:
refused, and never kept unmasked (on the inbox path and the full path alike)."""

from __future__ import annotations

import pytest
from daozhang.lab.devicewire import receipt_body, record_bytes
from daozhang.schema import open_database

from tests.collector.test_inbox import NOW, via_inbox
from tests.collector.test_ingest import batch, q, receipts
from tests.collector.test_unstorable import _project_all

FULL_WIDTH = str.maketrans("0123456789", "０１２３４５６７８９")
ARABIC_INDIC = str.maketrans("0123456789", "٠١٢٣٤٥٦٧٨٩")
FULL_PAN = "6228480402564890018"  # passes the Luhn check


@pytest.mark.parametrize("digits", [FULL_WIDTH, ARABIC_INDIC], ids=["full-width", "arabic"])
@pytest.mark.parametrize("field", ["trc", "bat", "ent", "otrc"])
def test_numeric_fields_take_ascii_digits_only(
    db_url: str, digits: dict[int, str], field: str
) -> None:
    bad = record_bytes(
        2,
        "r",
        receipt_body(2, **{field: "000002"[: 6 if field != "ent" else 3].translate(digits)}),
        t=5,
    )
    with open_database(db_url) as store:
        via_inbox(store, batch([*receipts(1, 1), bad, *receipts(3, 3)]), NOW)
        _project_all(store)
        assert q(store, "SELECT seq, reason FROM quarantine") == [(2, "record_schema")]
        assert q(store, "SELECT seq FROM records ORDER BY seq") == [(1,), (3,)]


@pytest.mark.parametrize("digits", [FULL_WIDTH, ARABIC_INDIC], ids=["full-width", "arabic"])
def test_a_card_number_in_other_digits_is_refused_and_never_kept(
    db_url: str, digits: dict[int, str]
) -> None:
    written = FULL_PAN.translate(digits)
    bad = record_bytes(2, "d", {"ev": "link_down", "stage": "tcp", "why": f"card {written}"}, t=5)
    with open_database(db_url) as store:
        via_inbox(store, batch([*receipts(1, 1), bad, *receipts(3, 3)]), NOW)
        assert q(store, "SELECT COUNT(*) FROM inbox") == [(0,)]  # never kept as it came
        assert q(store, "SELECT seq, reason FROM quarantine") == [(2, "pan_unmasked")]
        ((raw,),) = q(store, "SELECT raw FROM quarantine")
        assert written.encode() not in bytes(raw) and len(bytes(raw)) == len(bad)
        kept = b"".join(bytes(r) for (r,) in q(store, "SELECT raw FROM records"))
        assert written.encode() not in kept


@pytest.mark.parametrize("digits", [None, FULL_WIDTH], ids=["ascii", "full-width"])
def test_a_card_number_nested_in_a_body_is_refused_too(
    db_url: str, digits: dict[int, str] | None
) -> None:
    written = FULL_PAN.translate(digits) if digits else FULL_PAN
    body = {"ev": "probe", "rtt_ms": 7, "x": {"notes": [f"card {written}"]}}
    bad = record_bytes(2, "d", body, t=5)
    with open_database(db_url) as store:
        via_inbox(store, batch([*receipts(1, 1), bad, *receipts(3, 3)]), NOW)
        _project_all(store)
        assert q(store, "SELECT seq, reason FROM quarantine") == [(2, "pan_unmasked")]
        kept = b"".join(bytes(r) for (r,) in q(store, "SELECT raw FROM records"))
        kept += b"".join(bytes(r) for (r,) in q(store, "SELECT raw FROM quarantine"))
        assert written.encode() not in kept
