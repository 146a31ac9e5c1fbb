"""`sim run`: a whole fleet on one machine, from a scenario (docs/simulation.md).

The run needs parts that other components provide; `missing_parts()` names any that this build
lacks, and `run_scenario` refuses to start without them rather than simulate them.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path

from daozhang.errors import DaozhangError
from daozhang.fleet.scenario import Scenario
from daozhang.paths import FIRMWARE

# (what, how to tell it is present, the component that provides it)
PARTS: list[tuple[str, str, str]] = [
    (
        "the agent's journal and intake (firmware/journal.py, firmware/intake.py)",
        "firmware:journal.py,intake.py",
        "journal",
    ),
    ("the POS simulator library (daozhang.pos)", "module:daozhang.pos", "journal"),
    ("the agent's uploader (firmware/uploader.py)", "firmware:uploader.py", "uplink"),
    ("the fault-injecting proxy (daozhang.faults.proxy)", "module:daozhang.faults.proxy", "uplink"),
    ("the collector (daozhang.collector)", "module:daozhang.collector", "collector"),
    ("the scenario generator's settlement files (daozhang.sim)", "module:daozhang.sim", "settle"),
    ("correlation (daozhang.correlate)", "module:daozhang.correlate", "settle"),
]


def _present(probe: str) -> bool:
    kind, _, what = probe.partition(":")
    if kind == "firmware":
        return all((FIRMWARE / name).is_file() for name in what.split(","))
    try:
        return importlib.util.find_spec(what) is not None
    except ModuleNotFoundError:
        return False


def missing_parts() -> list[str]:
    return [f"{what} [{branch}]" for what, probe, branch in PARTS if not _present(probe)]


@dataclass
class RunResult:
    ok: bool
    out: Path


def run_scenario(scenario: Scenario, out: Path) -> RunResult:
    missing = missing_parts()
    if missing:
        raise DaozhangError(
            "sim run cannot start: this build lacks "
            + "; ".join(missing)
            + ". Nothing is simulated in their place."
        )
    raise DaozhangError("sim run: the end-to-end wiring is not in this build yet")
