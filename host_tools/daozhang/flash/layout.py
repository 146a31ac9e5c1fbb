"""What a device must hold after a flash, and the refusals made before anything is written.

The device layout (docs/technician-howto.md): /config.json in the agent's own format, the
credential slots under /secrets, the CA also as DER where the board's TLS adapter reads it.
"""

from __future__ import annotations

import json
import ssl
from pathlib import Path
from typing import Any

from daozhang.errors import UsageError
from daozhang.flash.build import DeviceFile, WrongMicroPython, decode_mpy
from daozhang.flash.link import DeviceError
from daozhang.flash.probe import Probe

# The journal needs this much free flash beyond the firmware (about 300 receipts) for the
# agent to be worth installing; the self-test checks the same figure after the flash.
JOURNAL_MIN_BYTES = 96 * 1024
CONFIG_PATH = "/config.json"
# Credential slots (docs/technician-howto.md): the HMAC key always, TLS material optional.
SECRET_HMAC = "/secrets/hmac.key"
SECRET_SLOTS = {
    "ca": "/secrets/ca.pem",
    "cert": "/secrets/client.crt",
    "key": "/secrets/client.key",
}
# The modules earlier flashes wrote flat into /lib, before the portable core became the
# dzcore package (firmware/dzcore/). A flash also removes what its previous manifest lists
# and this one does not ship; these are named as well for a device whose manifest is gone
# (a first flash cut short, or files copied by hand).
_FLAT_MODULES = (
    "agent", "backoff", "batch", "boardspec", "cbor", "clock", "commands", "config", "dial",
    "heartbeat", "hmac256", "intake", "journal", "journal_frame", "journal_overflow",
    "journal_peek", "journal_recover", "journal_segments", "journal_state", "mqtt",
    "mqtt_codec", "netdiag", "receipt_check", "termlink", "timefloor", "tlscreds", "uart_link",
    "uplink", "uploader",
)  # fmt: skip
# Files earlier flashes wrote that nothing reads any more; a flash removes them where found.
# /ca.der: the CA as DER for the TLS adapters, before the agent read the slot
# (firmware/dzcore/uplink/tlscreds.py).
RETIRED_PATHS = ("/ca.der", *(f"/lib/{name}.mpy" for name in _FLAT_MODULES))
# firmware/dzcore/uplink/timefloor.py's last-known wall time, beside the journal at
# /dz/journal (BoardBase.journal_dir in firmware/dzcore/boardbase.py). Seeded at the first
# flash so that a board without NTP or modem time can check certificate dates, and open TLS,
# before its first ack sets the clock.
TIME_FLOOR_PATH = "/dz/journal.time"
# The floor must never be later than real time (certificates would look expired), so it is
# the laptop's time less a day of skew, and an unset laptop clock (before 2026) seeds nothing.
_FLOOR_MARGIN_S = 86400
_EARLIEST_PLAUSIBLE = 1_767_225_600  # 2026-01-01 00:00 UTC


def time_floor_file(now: float) -> DeviceFile | None:
    """The time floor to seed a device with, or None when the host clock is not believable."""
    if now < _EARLIEST_PLAUSIBLE:
        return None
    return DeviceFile(TIME_FLOOR_PATH, str(int(now) - _FLOOR_MARGIN_S).encode())


def split_broker(url: str) -> tuple[str, str, int]:
    scheme, sep, rest = url.partition("://")
    host, _, port = rest.rstrip("/").rpartition(":")
    if not sep or scheme not in ("mqtt", "mqtts") or not host or not port.isdigit():
        raise UsageError(f"--broker {url!r}: expected mqtt://HOST:PORT or mqtts://HOST:PORT")
    return scheme, host, int(port)


def config_file(
    dev: str,
    broker: str,
    key: bytes,
    old: dict[str, Any] | None,
    settings: dict[str, int] | None = None,
) -> DeviceFile:
    """`/config.json` in the agent's own format (firmware/dzcore/uplink/config.py: flat keys,
    unknown keys refused): device id, broker host/port/tls and the HMAC key in hex, which is how
    the agent reads it today (the same key is also in its credential slot /secrets/hmac.key).
    Every other key already on the device (intervals a technician tuned) is kept, and
    `settings` (checked by flash/settings.py) replace theirs."""
    scheme, host, port = split_broker(broker)
    body = dict(old or {})
    body.update(settings or {})
    body.update({"dev": dev, "host": host, "port": port, "tls": scheme == "mqtts"})
    body["key"] = key.hex()
    return DeviceFile(CONFIG_PATH, json.dumps(body, sort_keys=True).encode() + b"\n")


def tls_files(tls: dict[str, Path]) -> list[DeviceFile]:
    """The TLS credential slots, the CA checked to be a PEM certificate before anything is
    written (the agent would only find out at its first TLS session)."""
    if "ca" in tls:
        pem = tls["ca"].read_text(errors="replace")
        try:
            ssl.PEM_cert_to_DER_cert(pem)
        except ValueError as exc:
            raise UsageError(f"--ca {tls['ca']}: not a PEM certificate ({exc})") from exc
    return [DeviceFile(SECRET_SLOTS[slot], path.read_bytes()) for slot, path in tls.items()]


def broker_of(config: dict[str, Any] | None) -> str | None:
    """The broker URL a device's config names, if it names one."""
    if not config or not isinstance(config.get("host"), str):
        return None
    scheme = "mqtts" if config.get("tls") else "mqtt"
    return f"{scheme}://{config['host']}:{config.get('port', 8883 if config.get('tls') else 1883)}"


def check_override(port: str, device_mpy: int | None, override: int) -> None:
    if device_mpy is None:
        return
    have, want = decode_mpy(device_mpy), decode_mpy(override)
    if have[0] != want[0]:
        raise WrongMicroPython(
            f"{port}: wrong MicroPython version: the device loads .mpy v{have[0]}.{have[1]} "
            f"but .mpy v{want[0]}.{want[1]} was asked for: it would refuse every module"
        )


def check_filesystem(port: str, dev_probe: Probe) -> None:
    if dev_probe.fs in ("VfsLfs2", "VfsLfs1"):
        return
    if dev_probe.fs == "VfsFat":
        raise DeviceError(
            f"{port}: the flash is formatted FAT, not LittleFS: a power cut can corrupt FAT "
            "and lose receipts; reformat it LittleFS (docs/technician-howto.md, 'FAT')"
        )
    raise DeviceError(f"{port}: the root filesystem is {dev_probe.fs}, not LittleFS")


def check_room(port: str, dev_probe: Probe, changed: list[DeviceFile]) -> None:
    # Rewritten files free their old blocks; count whole blocks as LittleFS allocates them.
    block = max(dev_probe.block, 1)
    blocks = sum(-(-len(f.data) // block) + 1 for f in changed)
    need = blocks * block + JOURNAL_MIN_BYTES
    if need > dev_probe.free_bytes:
        raise DeviceError(
            f"{port}: not enough flash: {dev_probe.free_bytes // 1024} KiB free of "
            f"{dev_probe.size_bytes // 1024} KiB, needs {need // 1024} KiB (firmware and config "
            f"{blocks * block // 1024} KiB + journal {JOURNAL_MIN_BYTES // 1024} KiB)"
        )
