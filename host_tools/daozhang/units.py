"""The shared vocabulary of time and money, at the bottom of the package: every layer may
import it and it imports nothing of the project's.

Times are unix seconds and shown in Beijing time (China has one time zone and no daylight
saving); money is integer fen and shown in yuan with two decimals.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

BEIJING = timezone(timedelta(hours=8), "Asia/Shanghai")
_EPOCH = date(1970, 1, 1)
_MINUTES: dict[int, str] = {}  # minute number -> "YYYY-MM-DD HH:MM:", one entry a minute shown
_SECONDS = [f"{s:02d}" for s in range(60)]


def beijing_text(t: float, seconds: bool = True) -> str:
    """Unix seconds as `YYYY-MM-DD HH:MM:SS` (or `HH:MM`) Beijing time: the text of
    datetime.fromtimestamp(t, BEIJING).strftime, which a run calls for millions of different
    times (issue 24), made here from the minute's text and the second (Beijing keeps UTC+8
    all year, and whole minutes in UTC are whole minutes there)."""
    if type(t) is not int or t < 0:  # a fraction rounds as datetime rounds it
        fmt = "%Y-%m-%d %H:%M:%S" if seconds else "%Y-%m-%d %H:%M"
        return datetime.fromtimestamp(t, BEIJING).strftime(fmt)
    minute, second = divmod(t, 60)
    head = _MINUTES.get(minute)
    if head is None:
        if len(_MINUTES) >= 100_000:  # ~70 days of minutes, ~10 MB
            _MINUTES.clear()
        day, rest = divmod(minute * 60 + 28_800, 86_400)
        hour, mins = divmod(rest // 60, 60)
        head = _MINUTES[minute] = f"{_EPOCH + timedelta(days=day)} {hour:02d}:{mins:02d}:"
    return head + _SECONDS[second] if seconds else head[:-1]


def fen_to_yuan(fen: int) -> str:
    """12345 fen to `123.45`: exact, no float ever touches money."""
    if type(fen) is int and fen >= 100:  # most amounts, a third quicker (millions a run)
        text = str(fen)
        return text[:-2] + "." + text[-2:]
    sign = "-" if fen < 0 else ""
    return f"{sign}{abs(fen) // 100}.{abs(fen) % 100:02d}"
