"""Flash one device: probe, compile, plan, write, verify, reboot, self-test, register.

Nothing is written before every refusal has had its chance (no device, busy port, wrong
MicroPython, FAT, not enough flash, no broker): a refused device keeps what it had.
Files are written only when their SHA-256 on the device differs, `/fw.json` (the manifest)
last; then every file is read back by hash. The device's reboot is its board backend's job.
"""

from __future__ import annotations

import json
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from daozhang import __version__
from daozhang.errors import DaozhangError, UsageError
from daozhang.flash import registry
from daozhang.flash.build import Build, Compiler, DeviceFile, build, choose_compiler, compilers
from daozhang.flash.layout import (
    CONFIG_PATH,
    JOURNAL_MIN_BYTES,
    RETIRED_PATHS,
    SECRET_HMAC,
    SECRET_SLOTS,
    TIME_FLOOR_PATH,
    broker_of,
    check_filesystem,
    check_override,
    check_room,
    config_file,
    split_broker,
    time_floor_file,
    tls_files,
)
from daozhang.flash.link import DeviceError, Port
from daozhang.flash.nudge import ReportNudger
from daozhang.flash.probe import probe, read_hashes
from daozhang.flash.reboot import restart_agent
from daozhang.remote.send import prepare
from daozhang.store import Store

HEARTBEAT_WAIT_S = 90.0
_NUDGE_EVERY_S = 3.0

_T = TypeVar("_T")
Progress = Callable[[str, float], None]  # (step description, fraction done 0..1)


@dataclass
class FlashOptions:
    board: str
    broker: str | None
    operator: str
    dry_run: bool = False
    tls: dict[str, Path] = field(default_factory=dict)  # slot name -> local file
    mpy_override: int | None = None
    heartbeat_wait_s: float = HEARTBEAT_WAIT_S
    check_heartbeat: bool = False
    settings: dict[str, int] = field(default_factory=dict)  # `--set`: agent timers and sizes


@dataclass
class FlashResult:
    port: str
    dev: str
    ok: bool = False
    error: str | None = None
    written: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    unchanged: int = 0
    selftest: list[list[str]] = field(default_factory=list)
    fw_hash: str = ""
    mpy: str = ""

    @property
    def verdict(self) -> str:
        if self.error is not None:
            return "fail"
        statuses = {row[1] for row in self.selftest}
        if "fail" in statuses:
            return "fail"
        if "n/a" in statuses:
            return "incomplete"  # a part is missing: never reported as a pass
        return "pass"


class _BuildCache:
    """One compile per compiler for all devices flashed in parallel."""

    def __init__(self, board: str) -> None:
        self.board = board
        self._lock = threading.Lock()
        self._compilers: list[Compiler] | None = None
        self._builds: dict[str, Build] = {}

    def for_device(self, device_mpy: int | None) -> Build:
        with self._lock:
            if self._compilers is None:
                self._compilers = compilers()
            compiler = choose_compiler(device_mpy, self._compilers)
            if compiler.label not in self._builds:
                self._builds[compiler.label] = build(self.board, compiler)
            return self._builds[compiler.label]


class Flasher:
    """Flashes devices of one board type; safe to use from several threads at once."""

    def __init__(self, options: FlashOptions, store: Callable[[], Store] | None) -> None:
        self.options = options
        self.open_store = store
        self.builds = _BuildCache(options.board)

    def flash(self, port_name: str, dev: str, progress: Progress) -> FlashResult:
        result = FlashResult(port_name, dev)
        try:
            self._flash(Port(port_name), dev, result, progress)
        except DaozhangError as exc:
            result.error = str(exc)
        return result

    def _flash(self, port: Port, dev: str, result: FlashResult, progress: Progress) -> None:
        opts = self.options
        progress("probing", 0.02)
        port.check_present()
        wanted_paths = [
            CONFIG_PATH,
            SECRET_HMAC,
            TIME_FLOOR_PATH,
            *SECRET_SLOTS.values(),
            *RETIRED_PATHS,
        ]
        dev_probe = probe(port, ["/fw.json", *wanted_paths, *_planned_paths(opts.board)])
        device_mpy = dev_probe.mpy
        if opts.mpy_override is not None:
            check_override(port.port, device_mpy, opts.mpy_override)
            device_mpy = opts.mpy_override
        progress("compiling", 0.08)
        fw = self.builds.for_device(device_mpy)
        result.fw_hash, result.mpy = fw.fw_hash, fw.compiler.label
        check_filesystem(port.port, dev_probe)
        broker = opts.broker or broker_of(dev_probe.config)
        if broker is None:
            raise UsageError(f"{port.port}: --broker is required (the device has no broker yet)")
        split_broker(broker)

        key = self._key(dev)
        files = [f for f in fw.files]
        files.append(config_file(dev, broker, key or b"", dev_probe.config, opts.settings))
        files.extend(tls_files(opts.tls))
        if key is not None:
            files.append(DeviceFile(SECRET_HMAC, key))
        floor = time_floor_file(time.time())
        if dev_probe.hashes.get(TIME_FLOOR_PATH) is None and floor is not None:
            files.append(floor)  # only when it has none: a floor the device keeps is its own
        manifest = fw.manifest()
        files.append(manifest)  # last: the manifest says the flash completed
        changed = [f for f in files if dev_probe.hashes.get(f.remote) != f.sha256]
        keep = {f.remote for f in files}
        stale = [p for p in dev_probe.old_files if p not in keep and p.startswith("/lib/")]
        stale += [p for p in RETIRED_PATHS if dev_probe.hashes.get(p) is not None]
        removed = list(dict.fromkeys(stale))  # a retired path may be in the old manifest too
        result.written = [f.remote for f in changed]
        if key is None:  # dry run, no key registered yet: the flash will make one
            result.written.insert(-1 if changed else 0, SECRET_HMAC)
        result.removed = removed
        result.unchanged = len(files) - len(changed)
        check_room(port.port, dev_probe, changed)
        if opts.dry_run:
            result.ok = True
            return
        _write(port, changed, removed, progress)
        progress("verifying", 0.6)
        _verify(port, files)
        progress("rebooting", 0.65)
        restart_agent(port)
        progress("self-test", 0.7)
        result.selftest = _selftest(port, dev, fw)
        progress("restarting agent", 0.8)
        started = time.time()
        restart_agent(port)
        result.selftest.append(self._heartbeat_row(dev, broker, started, progress))
        result.ok = result.verdict == "pass"
        self._with_store(
            lambda store: registry.record_flash(
                store,
                registry.FlashRecord(
                    dev=dev,
                    board=opts.board,
                    port=port.port,
                    fw_version=__version__,
                    fw_hash=fw.fw_hash,
                    mpy=fw.compiler.label,
                    operator=opts.operator,
                    files_written=len(changed),
                    files_removed=len(removed),
                    result=result.verdict,
                    selftest=result.selftest,
                ),
            )
        )
        progress("done", 1.0)

    def _with_store(self, action: Callable[[Store], _T]) -> _T:
        if self.open_store is None:
            raise UsageError("a database is needed to register the HMAC key (--db)")
        store = self.open_store()
        try:
            return action(store)
        finally:
            store.close()

    def _key(self, dev: str) -> bytes | None:
        """The HMAC key to install; in a dry run only one already registered (None if none:
        then the key is listed as a change)."""
        if not self.options.dry_run:
            return self._with_store(lambda store: registry.key_for(store, dev))
        if self.open_store is None:
            return None
        try:
            return self._with_store(lambda store: registry.registered_key(store, dev))
        except DaozhangError:
            return None

    def _heartbeat_row(self, dev: str, broker: str, since: float, progress: Progress) -> list[str]:
        if not self.options.check_heartbeat:
            return ["heartbeat", "skip", "not checked: give --db with the collector's database"]
        progress("waiting for heartbeat", 0.85)
        scheme, host, port = split_broker(broker)
        try:
            ca = self.options.tls.get("ca")
            with ReportNudger(host, port, scheme == "mqtts", ca) as nudger:
                return self._wait_heartbeat(dev, since, nudger, "asked with cmd report")
        except DaozhangError as exc:
            # Cannot ask from here: wait for the agent's own heartbeat interval.
            return self._wait_heartbeat(dev, since, None, f"not asked: {exc}")

    def _wait_heartbeat(
        self, dev: str, since: float, nudger: ReportNudger | None, how: str
    ) -> list[str]:
        wait_s = self.options.heartbeat_wait_s
        deadline = time.monotonic() + wait_s
        next_nudge = 0.0
        while True:
            if nudger is not None and time.monotonic() >= next_nudge:
                signed = self._with_store(lambda store: prepare(store, [dev], "report", {}))
                nudger.report(dev, signed[0].payload)  # repeated: it may not be subscribed yet
                next_nudge = time.monotonic() + _NUDGE_EVERY_S
            try:
                seen = self._with_store(lambda store: registry.latest_heartbeat(store, dev, since))
            except DaozhangError as exc:
                return ["heartbeat", "fail", f"not available: {exc}"]
            if seen is not None:
                detail = f"the collector stored one {seen - since:.1f} s after restart ({how})"
                return ["heartbeat", "pass", detail]
            if time.monotonic() > deadline:
                detail = f"the collector stored no heartbeat from {dev} within {wait_s:.0f} s"
                return ["heartbeat", "fail", f"{detail} ({how})"]
            time.sleep(0.5)


def _planned_paths(board: str) -> list[str]:
    """Device paths of the firmware files, known before the compiler is chosen."""
    from daozhang.flash.build import device_paths

    return device_paths(board)


def _write(port: Port, changed: list[DeviceFile], removed: list[str], progress: Progress) -> None:
    dirs = sorted({f.remote.rsplit("/", 1)[0] for f in changed if f.remote.count("/") > 1})
    all_dirs: list[str] = []
    for d in dirs:  # parents first: /lib before /lib/pkg
        parts = d.strip("/").split("/")
        for i in range(1, len(parts) + 1):
            path = "/" + "/".join(parts[:i])
            if path not in all_dirs:
                all_dirs.append(path)
    with tempfile.TemporaryDirectory(prefix="daozhang-flash-") as tmp:
        pairs: list[tuple[Path, str]] = []
        for index, f in enumerate(changed):
            local = Path(tmp) / f"{index:03d}"
            local.write_bytes(f.data)
            pairs.append((local, f.remote))
        # A few files per mpremote session, so the progress bar moves on a slow link.
        step = 8
        for start in range(0, max(len(pairs), 1), step):
            progress(
                f"writing {min(start + step, len(pairs))}/{len(pairs)}",
                0.15 + 0.45 * start / max(len(pairs), 1),
            )
            port.copy(pairs[start : start + step], all_dirs if start == 0 else [])
    port.remove(removed)


def _verify(port: Port, files: list[DeviceFile]) -> None:
    on_device = read_hashes(port, [f.remote for f in files])
    bad = [f.remote for f in files if on_device.get(f.remote) != f.sha256]
    if bad:
        raise DeviceError(
            f"{port.port}: verify failed: {len(bad)} file(s) read back different "
            f"({', '.join(bad[:3])}): the flash may be worn; flash again"
        )


def _selftest(port: Port, dev: str, fw: Build) -> list[list[str]]:
    args = f"{json.dumps(dev)}, {json.dumps(fw.modules)}, {JOURNAL_MIN_BYTES}"
    code = f"import selftest\nselftest.main({args})"
    rows = port.exec_json(code, "DZ-SELFTEST", timeout_s=120)
    return [[str(c) for c in row] for row in rows]
