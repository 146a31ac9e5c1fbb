"""Flashing a fleet's boards with the real tool, as a technician would, and waiting until
every agent serves its terminal link (the POS simulators start only then)."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path
from typing import Any

from daozhang.errors import DaozhangError
from daozhang.lab.fleet.linkpath import ProxyPath
from daozhang.lab.fleet.target import BoardSlot
from daozhang.schema import open_database
from daozhang.security.pki import Pki

FLASH_HEAP = "256K"
FLASH_PARALLEL = 4  # mpremote sessions at once: the machine has 2 cores


def _last_words(slot: BoardSlot) -> str:
    """The end of a board's console errors and how its last process ended, for a failure."""

    def tail(name: str, size: int) -> str:
        try:
            return (slot.board.root / name).read_text(errors="replace")[-size:].strip()
        except OSError:
            return ""

    ended = tail("relay.log", 200).rpartition("\n")[2]
    return f"board log ends {tail('board.log', 300)!r}; relay: {ended or 'no exit logged'}"


def _accepts(slot: BoardSlot) -> bool:
    port = slot.board.terminal_port
    if port is None:
        return False
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


def provision_fleet(
    slots: list[BoardSlot],
    paths: list[ProxyPath],
    db_url: str,
    pki: Pki | None,
    agent_settings: dict[str, Any],
    say: Callable[[str], None],
) -> None:
    """Flash every board through its own proxy path (TLS credentials from `pki` when the
    broker uses TLS), power-cycle it into the agent, and wait until each agent answers."""
    from daozhang.flash.deploy import Flasher, FlashOptions, FlashResult

    shared = Flasher(FlashOptions("virtual", None, "daozhang sim"), None)

    def flash(slot: BoardSlot, path: ProxyPath) -> FlashResult:
        # The flash tool's on-board probe and self-test need more than a 64K heap today;
        # the agent then runs with the scenario's heap (power cycle below).
        slot.board.start(slot.image, slot.flash_size, heapsize=FLASH_HEAP, dev=False)
        scheme = "mqtt" if pki is None else "mqtts"
        broker = f"{scheme}://127.0.0.1:{path.port}"  # through the board's own proxy
        tls: dict[str, Path] = {}
        if pki is not None:
            creds = pki.device_dir(slot.device.dev)
            tls = {
                "ca": creds / "ca.pem",
                "cert": creds / "client.crt",
                "key": creds / "client.key",
            }
        flasher = Flasher(
            FlashOptions("virtual", broker, "daozhang sim", tls=tls, settings=agent_settings),
            lambda: open_database(db_url),
        )
        flasher.builds = shared.builds  # one compile for the whole fleet
        result = flasher.flash(str(slot.board.tty), slot.device.dev, lambda *a: None)
        if result.verdict != "fail":
            slot.power_cut()
            slot.power_on()
        return result

    def one(i: int) -> str | None:
        slot, path = slots[i], paths[i]
        # In netem mode the whole flash (its reboots too) happens in the board's namespace.
        result = slot.inside(lambda: flash(slot, path))
        if result.verdict == "fail":
            # What a technician does after a failed flash (a USB hiccup, mpremote timing
            # out on a loaded machine): power-cycle and flash again, once.
            slot.power_cut()
            result = slot.inside(lambda: flash(slot, path))
        if result.verdict == "fail":
            why = result.error or result.selftest
            return f"{slot.device.dev}: flash failed: {why} ({_last_words(slot)})"
        return None

    with ThreadPoolExecutor(FLASH_PARALLEL) as pool:
        problems = [p for p in pool.map(one, range(len(slots))) if p]
    if problems:
        raise DaozhangError("; ".join(problems))
    say(f"flashed {len(slots)} boards (firmware .mpy, config, per-device HMAC key)")
    wait_agents(slots)


def wait_agents(slots: list[BoardSlot], timeout_s: float = 30) -> None:
    """Every agent must answer on its terminal link before the POS starts selling."""
    deadline = time.monotonic() + timeout_s
    waiting = list(slots)
    while waiting and time.monotonic() < deadline:
        waiting = [s for s in waiting if not s.inside(partial(_accepts, s))]
        time.sleep(0.2)
    if waiting:
        tails = [f"{s.device.dev} ({_last_words(s)})" for s in waiting]
        raise DaozhangError(
            f"the agent does not serve its terminal link on {len(waiting)} board(s) after "
            f"{timeout_s:g} s: " + "; ".join(tails)
        )
