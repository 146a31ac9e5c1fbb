"""Every status, cause and data value explains itself as support reads it out: the amount in
yuan, the sale's time, the date that matters, the outage when the network caused it, and what
to do next, in Chinese and in English (issue 24)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from daozhang.correlate.engine import analyse
from daozhang.correlate.finding import CAUSES, DATA_VALUES, NETWORK_CAUSES
from daozhang.correlate.render import explain, yuan
from daozhang.lab.sim.load import load
from daozhang.lab.sim.scenario import generate
from daozhang.schema import open_database
from daozhang.units import BEIJING


def test_every_cause_and_data_value_reads_aloud_with_its_facts_and_next_step(
    tmp_path: Path,
) -> None:
    sc = generate(1006, cases=8)
    with open_database(f"sqlite:///{tmp_path / 'x.db'}") as store:
        load(store, sc, tmp_path / "files")
        findings = [f for f in analyse(store, sc.as_of).findings if f.kind == "transaction"]
    causes = {f.cause for f in findings if f.cause}
    data = {f.data for f in findings}
    assert set(CAUSES) <= causes and set(DATA_VALUES) <= data, (causes, data)
    for f in findings:
        text = explain(f)
        zh, en = text["zh"], text["en"]
        assert yuan(f.amount_fen) in zh and yuan(f.amount_fen) in en, text
        assert "下一步：" in zh and " Next: " in en, text
        if f.lt:
            when = datetime.fromtimestamp(f.lt, BEIJING).strftime("%Y-%m-%d %H:%M:%S")
            assert when in zh and when in en
        if f.cause in ("timing", "late_upload", "file_missing") and f.expected_date:
            assert f.expected_date.isoformat() in zh and f.expected_date.isoformat() in en
        if f.cause in NETWORK_CAUSES and f.outage is not None:
            assert "断网" in zh and "lost its link" in en, text
        if f.payout is not None and f.status != "settled":
            assert f.payout.payout_id in zh and f.payout.payout_id in en
            if f.payout.fail_reason:
                assert f.payout.fail_reason in zh
