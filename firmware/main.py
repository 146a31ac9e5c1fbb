# The agent's entry point. Nothing runs at import: `main()` builds the objects from the board
# adapter and starts the agent's tasks.
# Today the agent reports its board state on the console; intake, journal and uplink are
# built by later issues (see README, "What does not work yet").
import asyncio

_REPORT_INTERVAL_S = 5


async def _report_state(board, interval_s):
    while True:
        print("daozhang agent:", board.describe())
        await asyncio.sleep(interval_s)


def main(board=None, interval_s=_REPORT_INTERVAL_S):
    if board is None:
        from board import Board

        board = Board()
    asyncio.run(_report_state(board, interval_s))
