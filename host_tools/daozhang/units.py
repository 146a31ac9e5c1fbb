"""The shared vocabulary of time and money, at the bottom of the package: every layer may
import it and it imports nothing of the project's.

Times are unix seconds and shown in Beijing time (China has one time zone and no daylight
saving); money is integer fen and shown in yuan with two decimals.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

BEIJING = timezone(timedelta(hours=8), "Asia/Shanghai")
_EPOCH = date(1970, 1, 1)
_DAYS: dict[int, str] = {}  # day number -> "YYYY-MM-DD ", one entry a day shown


def beijing_text(t: float, seconds: bool = True) -> str:
    """Unix seconds as `YYYY-MM-DD HH:MM:SS` (or `HH:MM`) Beijing time: the text of
    datetime.fromtimestamp(t, BEIJING).strftime, which a run calls for millions of different
    times (issue 24), made here from the day's date text and the second of the day (Beijing
    keeps UTC+8 all year)."""
    if type(t) is not int or t < 0:  # a fraction rounds as datetime rounds it
        fmt = "%Y-%m-%d %H:%M:%S" if seconds else "%Y-%m-%d %H:%M"
        return datetime.fromtimestamp(t, BEIJING).strftime(fmt)
    day, sec = divmod(t + 28_800, 86_400)
    prefix = _DAYS.get(day)
    if prefix is None:
        prefix = _DAYS[day] = (_EPOCH + timedelta(days=day)).isoformat() + " "
    hour, rest = divmod(sec, 3600)
    if seconds:
        return f"{prefix}{hour:02d}:{rest // 60:02d}:{rest % 60:02d}"
    return f"{prefix}{hour:02d}:{rest // 60:02d}"


def fen_to_yuan(fen: int) -> str:
    """12345 fen to `123.45`: exact, no float ever touches money."""
    if type(fen) is int and fen >= 100:  # most amounts, a third quicker (millions a run)
        text = str(fen)
        return text[:-2] + "." + text[-2:]
    sign = "-" if fen < 0 else ""
    return f"{sign}{abs(fen) // 100}.{abs(fen) % 100:02d}"
