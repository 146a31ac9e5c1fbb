# The agent's entry point. Nothing runs at import: `main()` builds the objects from the board
# adapter and starts the agent's tasks:
#   journal   (dzcore/journal/) mounted (recovered) first, on the board's flash, within
#             board.json's budget;
#   intake    (dzcore/intake/) serves the terminal link from the POS main board into the journal;
#   uplink    (dzcore/uplink/agent.py: uploader, MQTT session, netdiag, heartbeat, commands),
#             configured by /config.json on the flash (dzcore/uplink/config.py); it also commits
#             diagnostics every few minutes. Without a readable config the agent still journals
#             receipts.
import asyncio
import os
import time

from micropython import const

# The agent reads Ctrl-C from the console a board hands it (board.console_interrupts()): the
# virtual board's power-on (boards/virtual/vboot.py) keeps SIGINT off from the start for a main
# that says so, and a Ctrl-C during start-up then waits for the agent to read it.
READS_CONSOLE_INTERRUPTS = True

_CTRL_C = const(3)
_DEFAULT_BUDGET_PCT = const(75)
_REPORT_INTERVAL_S = const(60)
_COMMIT_INTERVAL_S = const(180)  # unsynced diagnostics reach flash at least this often


class BootClock:
    # Wall time and a 64-bit uptime for records. The uplink's clock (NTP/modem/ack time)
    # replaces this one when it is wired in; until then t is the board's RTC if it has one.
    def __init__(self, wall_clock):
        self._wall = wall_clock
        self._last = time.ticks_ms()
        self._up = 0

    def up_ms(self):
        now = time.ticks_ms()
        self._up += time.ticks_diff(now, self._last)
        self._last = now
        return self._up

    def now(self):
        return int(time.time()) if self._wall else 0


def journal_budget(board, root):
    # board.json's share of the file system the journal lives on.
    pct = board.spec().get("journal_budget_pct", _DEFAULT_BUDGET_PCT)
    stat = os.statvfs(root)
    return stat[0] * stat[2] * pct // 100


def open_journal(board, rng=None):
    from dzcore.journal.journal import Journal
    from dzcore.journal.segments import makedirs

    root = board.journal_dir()
    makedirs(root)  # statvfs of the file system the journal is on wants a path that exists
    journal = Journal(root, journal_budget(board, root), rng=rng)
    journal.mount()
    return journal


async def _serve_terminal(link, intake):
    if link is None:
        print("daozhang agent: no terminal link configured")
        return
    await link.serve(intake.serve)


async def _watch_console(console):
    # Ctrl-C on a console the board handed over (board.console_interrupts()) stops the agent
    # between tasks: asyncio lets KeyboardInterrupt through run(), as the board's REPL expects.
    reader = asyncio.StreamReader(console)
    while True:
        byte = await reader.read(1)
        if not byte:
            return  # the console closed (a board run without one): nothing more to read
        if byte[0] == _CTRL_C:
            raise KeyboardInterrupt


async def _commit_diagnostics(journal, interval_s):
    # DESIGN §1.1: diagnostics are committed with the next receipt or every few minutes.
    while True:
        await asyncio.sleep(interval_s)
        journal.commit()


async def _report_state(board, journal, intake, interval_s):
    while True:
        stats = journal.stats()
        print(
            "daozhang agent: link=%s next_seq=%d acked=%d unacked=%d stored=%d repeats=%d"
            % (
                board.describe()["link"],
                stats["next_seq"],
                stats["acked"],
                stats["records"],
                intake.stored,
                intake.repeats,
            )
        )
        await asyncio.sleep(interval_s)


def _rand32():
    return int.from_bytes(os.urandom(4), "big")


def _uplink_agent(board, config_path, ota):
    # -> the uplink Agent, or None without a usable config (said on the console). Built
    # before the journal: its 8 KB batch buffer wants the heap while it is in one piece.
    from dzcore.uplink import config
    from dzcore.uplink.agent import Agent

    try:
        cfg = config.load(config_path)
    except config.ConfigError as exc:
        print("daozhang agent: no uplink: %s" % exc)
        return None
    print("daozhang agent: %s -> %s:%d" % (cfg["dev"], cfg["host"], cfg["port"]))
    return Agent(board, cfg, time.ticks_ms, time.ticks_diff, _rand32, ota)


async def _run(board, interval_s, config_path, ota):
    from dzcore.intake.intake import Intake

    agent = _uplink_agent(board, config_path, ota)
    features = board.spec().get("features", [])
    clock = agent.clock if agent else BootClock("wall_clock" in features)
    journal = open_journal(board)
    if agent:
        agent.attach(journal)
        agent.sync_clock()
    journal.append("d", {"ev": "boot", "cause": board.reset_cause()}, t=clock.now(), up=0)
    journal.commit()
    intake = Intake(journal, clock)
    intake.load()
    tasks = [
        asyncio.create_task(_serve_terminal(board.terminal_link(), intake)),
        asyncio.create_task(_commit_diagnostics(journal, _COMMIT_INTERVAL_S)),
        asyncio.create_task(_report_state(board, journal, intake, interval_s)),
    ]
    console = board.console_interrupts()
    if console is not None:
        tasks.append(asyncio.create_task(_watch_console(console)))
    if agent:
        tasks.extend(
            asyncio.create_task(c) for c in agent.tasks(record_boot=False, commit_diag=False)
        )
    try:
        await asyncio.gather(*tasks)
    finally:
        # Ending (an update switched to, a version given up or failing: dzcore/ota/boot.py
        # starts the next one in this power-on, on a fresh event loop where these tasks never
        # run again): every task is cancelled and waited for, so that its own cleanup has run
        # (the terminal link's port, the MQTT session), then the journal is closed.
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        journal.close()


def main(board=None, interval_s=_REPORT_INTERVAL_S, config_path="/config.json", ota_root="/ota"):
    # The version the boot pointer chooses runs (dzcore/ota/boot.py): this one, or an update's.
    from dzcore.ota.boot import start

    return start(ota_root, run_chosen, board, interval_s, config_path)


def run_chosen(slot, slots, board=None, interval_s=_REPORT_INTERVAL_S, config_path="/config.json"):
    # Runs this version of the agent; `slot`/`slots`: which one it is, for its trial.
    if board is None:
        from board import Board

        board = Board()
    try:
        asyncio.new_event_loop()  # nothing left over from a version that ran before
        asyncio.run(_run(board, interval_s, config_path, (slot, slots)))
    except MemoryError as exc:
        # Said on stderr (the board's log), not only on a console nobody may be reading:
        # the usual cause is compiling the agent from source in a small heap.
        import sys

        sys.stderr.write(
            "daozhang agent stopped: out of memory (%s); deploy .mpy files or give a larger heap\n"
            % exc
        )
        raise


# A board runs /main.py at power-on as the script `__main__`: that starts the agent. Importing
# it (the virtual board's vboot.py, tests) starts nothing.
if __name__ == "__main__":
    main()
