"""Every copy of the wire contract agrees with the one declaration (`daozhang.contract`).

The firmware keeps compact copies of its tables (it cannot import the host's module); the
collector's checks and the settlement rows are written from the contract; the design document
describes it. A copy changed alone fails here.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from daozhang import contract
from daozhang.collector import validate
from daozhang.lab.mp.run import run_micropython
from daozhang.settle import rows

REPO = Path(__file__).resolve().parent.parent

# Prints the firmware's receipt tables as JSON, under the real MicroPython.
_DUMP_RECEIPT_CHECK = """
import json
from dzcore.intake import receipt_check as rc
fixed = {}
for key, spec in rc._FIXED.items():
    fixed[key] = list(spec)
print(json.dumps({
    "types": list(rc._TYPES), "states": list(rc._STATES),
    "choices": {k: list(v) for k, v in rc._CHOICES.items()},
    "fixed": fixed, "ints": list(rc._INTS), "required": list(rc._REQUIRED),
    "ids": rc._IDS,
}))
"""


@pytest.fixture(scope="module")
def firmware_receipt_tables() -> dict[str, Any]:
    result = run_micropython(["-c", _DUMP_RECEIPT_CHECK])
    assert result.returncode == 0, result.stderr.decode()
    tables: dict[str, Any] = json.loads(result.stdout)
    return tables


def test_the_firmware_checks_receipts_by_the_contract(
    firmware_receipt_tables: dict[str, Any],
) -> None:
    fw = firmware_receipt_tables
    assert tuple(fw["types"]) == contract.TXN_TYPES
    assert tuple(fw["states"]) == contract.RECEIPT_STATES
    assert {k: tuple(v) for k, v in fw["choices"].items()} == contract.RECEIPT_ENUMS
    assert tuple(fw["required"]) == contract.RECEIPT_REQUIRED
    assert set(fw["ints"]) == set(contract.RECEIPT_INTS)
    assert fw["ids"] == contract.RECEIPT_IDS
    # The firmware checks length and digits; the collector checks the full character class.
    assert fw["fixed"] == {
        key: [length, cls in contract.DIGIT_CLASSES]
        for key, (length, cls) in contract.RECEIPT_TEXT.items()
    }


def test_the_firmware_applies_remote_settings_with_the_flash_bounds() -> None:
    """A remote `set` is held to `flash --set`'s limits, on the host and on the device."""
    result = run_micropython(
        [
            "-c",
            "import json\nfrom dzcore.uplink import commands as c\n"
            "print(json.dumps({k: list(v) for k, v in c.BOUNDS.items()}))",
        ]
    )
    assert result.returncode == 0, result.stderr.decode()
    bounds = {k: tuple(v) for k, v in json.loads(result.stdout).items()}
    assert bounds == {k: contract.AGENT_TUNABLE[k] for k in contract.REMOTE_SETTABLE}


def test_the_collector_checks_records_by_the_contract() -> None:
    assert {k: set(v) for k, v in contract.RECEIPT_ENUMS.items()} == {
        k: set(v) for k, v in validate.RECEIPT_ENUM.items()
    }
    assert set(validate.RECEIPT_TEXT) == set(contract.RECEIPT_TEXT) | {contract.MASKED_PAN_KEY}
    for key, (length, _) in contract.RECEIPT_TEXT.items():
        example = "1" * length if key != "cur" else "156"
        if key == "sd":
            example = "1231"
        assert validate.RECEIPT_TEXT[key].fullmatch(example), key
        assert not validate.RECEIPT_TEXT[key].fullmatch(example + "1"), key
    assert validate.RECEIPT_INT == contract.RECEIPT_INTS
    assert set(validate.RECEIPT_ID) == set(contract.RECEIPT_IDS)
    for key, longest in contract.RECEIPT_IDS.items():
        assert validate.RECEIPT_ID[key].fullmatch("A-9_" * (longest // 4)), key
        assert not validate.RECEIPT_ID[key].fullmatch("x" * (longest + 1)), key
        assert not validate.RECEIPT_ID[key].fullmatch("a b"), key
        assert not validate.RECEIPT_ID[key].fullmatch("\uff11"), key
    for key, (length, cls) in contract.RECEIPT_TEXT.items():  # ASCII digits only
        if cls in contract.DIGIT_CLASSES:
            assert not validate.RECEIPT_TEXT[key].fullmatch("\uff11" * length), key
    assert validate.RECEIPT_REQUIRED == contract.RECEIPT_REQUIRED
    assert validate.MAX_RECORD_BYTES == contract.MAX_RECORD_BYTES
    diag_enums = {k: set(v) for k, v in contract.DIAG_ENUMS.items()}
    assert {k: set(v) for k, v in validate._DIAG_ENUM.items()} == diag_enums
    assert set(validate._HB_INT) == set(contract.HEARTBEAT_INTS)


def test_settlement_rows_use_the_receipt_vocabulary() -> None:
    assert rows.TXN_TYPES is contract.TXN_TYPES
    assert rows.SETTLE_TYPES is contract.SETTLE_MODES


def test_the_design_document_names_every_value() -> None:
    design = (REPO / "docs" / "design.md").read_text()
    receipts = design[design.index('Receipt body (`k = "r"`)') : design.index("Diagnostic body")]
    for key, values in contract.RECEIPT_ENUMS.items():
        table = [line for line in receipts.splitlines() if line.startswith("|")]
        row = next(line for line in table if f"`{key}`" in line.split("|")[1])
        assert all(f"`{v}`" in row for v in values), key
    diags = design[design.index("Diagnostic body") : design.index("### 1.3")]
    for ev, keys in contract.DIAG_EVENTS.items():
        row = next(line for line in diags.splitlines() if line.startswith(f"| `{ev}`"))
        assert all(f"`{k}`" in row for k in keys), ev
    for enum_key, values in contract.DIAG_ENUMS.items():
        row = next(line for line in diags.splitlines() if f"`{enum_key}`" in line)
        assert all(f"`{v}`" in row for v in values), enum_key
    heartbeat = re.search(r"Heartbeat map: `([^`]+)`", design)
    assert heartbeat is not None
    assert tuple(heartbeat.group(1).split()) == contract.HEARTBEAT_KEYS


def test_every_design_reference_resolves() -> None:
    """Code and docs cite the design as "DESIGN §n": each such section exists."""
    design = (REPO / "docs" / "design.md").read_text()
    sections = set(re.findall(r"^#{2,3} (\d+(?:\.\d+)*)[. ]", design, re.M))
    cited: dict[str, list[str]] = {}
    for folder in ("host_tools", "firmware", "boards", "tests", "bench", "docs", "tools"):
        for path in (REPO / folder).rglob("*"):
            if path.suffix in (".py", ".md") and path.is_file():
                for ref in re.findall(r"DESIGN §(\d+(?:\.\d+)*)", path.read_text()):
                    cited.setdefault(ref, []).append(str(path.relative_to(REPO)))
    assert cited, "the code cites the design"
    assert {ref: where for ref, where in cited.items() if ref not in sections} == {}
