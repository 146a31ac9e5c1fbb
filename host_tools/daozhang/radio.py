"""Signal readings as people read them: the radio, the strength in dBm, the registration.

A `signal` diagnostic or a heartbeat's `sig` map (DESIGN §1.2) carries what the board's radio
reports: Wi-Fi RSSI, LTE RSRP/RSRQ/SINR, or a 2G/3G modem's CSQ (0-31, 99 unknown). Fleet
status, correlation's evidence and the reports all describe it the same way, from here.
"""

from __future__ import annotations

from typing import Any

_RATS = {"lte": "LTE", "gsm": "2G", "wifi": "Wi-Fi"}
# 3GPP TS 27.007 +CREG/+CEREG <stat>.
_REGISTRATION = {
    0: "not registered",
    1: "registered",
    2: "searching",
    3: "registration denied",
    4: "registration unknown",
    5: "registered, roaming",
}


def csq_dbm(csq: int) -> int | None:
    """A modem's CSQ (0..31) as dBm: -113 + 2 x CSQ; 99 (or anything else) is unknown."""
    return -113 + 2 * csq if 0 <= csq <= 31 else None


def strength_dbm(signal: dict[str, Any]) -> int | None:
    """The one strength figure a person compares: RSRP on LTE, RSSI, else CSQ in dBm."""
    for key in ("rsrp", "rssi"):
        value = signal.get(key)
        if isinstance(value, int):
            return value
    csq = signal.get("csq")
    return csq_dbm(csq) if isinstance(csq, int) else None


def describe(signal: dict[str, Any] | None) -> str:
    """`LTE, RSRP -101 dBm, SINR 3 dB, registered`; `-` when nothing is known."""
    if not signal:
        return "-"
    parts = [_RATS.get(str(signal.get("rat")), str(signal["rat"]))] if "rat" in signal else []
    for key, label, unit in (
        ("rsrp", "RSRP", "dBm"),
        ("rssi", "RSSI", "dBm"),
        ("rsrq", "RSRQ", "dB"),
        ("sinr", "SINR", "dB"),
    ):
        if isinstance(signal.get(key), int):
            parts.append(f"{label} {signal[key]} {unit}")
    csq = signal.get("csq")
    if isinstance(csq, int) and not any(isinstance(signal.get(k), int) for k in ("rsrp", "rssi")):
        dbm = csq_dbm(csq)
        parts.append(f"CSQ {csq}" + (f" ({dbm} dBm)" if dbm is not None else " (unknown)"))
    reg = signal.get("reg")
    if isinstance(reg, int) and reg in _REGISTRATION:
        parts.append(_REGISTRATION[reg])
    return ", ".join(parts) or "-"
