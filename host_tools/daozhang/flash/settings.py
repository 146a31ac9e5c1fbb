"""The agent settings a technician may tune at flashing time (`daozhang flash --set KEY=VALUE`).

They are the integer timers and sizes of firmware/dzcore/uplink/config.py, which refuses unknown
keys and negative numbers on the device; the flash tool refuses them first, before anything is
written, with the limits the agent would apply. Identity, broker and key are set by their own
options.
"""

from __future__ import annotations

from daozhang.contract import AGENT_TUNABLE
from daozhang.errors import UsageError

# key -> (lowest, highest): the agent config's checks (firmware/dzcore/uplink/config.py), and
# bounds no field device needs past; declared in the contract, which remote `set` commands and
# the agent's own copy of the live ones share.
TUNABLE: dict[str, tuple[int, int]] = AGENT_TUNABLE


def parse_settings(pairs: list[str]) -> dict[str, int]:
    """`["hb_s=120", ...]` (the `--set` options) as a checked dict; the last of a key wins."""
    settings: dict[str, int] = {}
    for pair in pairs:
        where = f"--set {pair!r}"
        key, sep, text = (part.strip() for part in pair.partition("="))
        if not sep or not key:
            raise UsageError(f"{where}: expected KEY=VALUE, e.g. --set hb_s=120")
        if key not in TUNABLE:
            raise UsageError(
                f"{where}: unknown agent setting {key!r}; tunable: {', '.join(TUNABLE)}"
            )
        try:
            value = int(text, 10)
        except ValueError:
            raise UsageError(f"{where}: {text!r} is not an integer") from None
        low, high = TUNABLE[key]
        if not low <= value <= high:
            raise UsageError(f"{where}: {key} must be an integer in {low}..{high}, not {value}")
        settings[key] = value
    if settings.get("backoff_base_ms", 0) > settings.get("backoff_cap_ms", 86_400_000):
        raise UsageError("--set: backoff_base_ms must not exceed backoff_cap_ms")
    return settings
