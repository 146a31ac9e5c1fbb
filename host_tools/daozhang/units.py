"""The shared vocabulary of time and money, at the bottom of the package: every layer may
import it and it imports nothing of the project's.

Times are unix seconds and shown in Beijing time (China has one time zone and no daylight
saving); money is integer fen and shown in yuan with two decimals.
"""

from __future__ import annotations

from datetime import timedelta, timezone

BEIJING = timezone(timedelta(hours=8), "Asia/Shanghai")


def fen_to_yuan(fen: int) -> str:
    """12345 fen to `123.45`: exact, no float ever touches money."""
    sign = "-" if fen < 0 else ""
    return f"{sign}{abs(fen) // 100}.{abs(fen) % 100:02d}"
