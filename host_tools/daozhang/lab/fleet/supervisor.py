"""Start every process of a run, and stop every one of them, whatever happens.

A simulation starts dozens of processes: virtual boards, their proxies, a broker, collectors.
The supervisor owns them all. Leaving its `with` block — normally, on an exception, on Ctrl-C,
or on SIGTERM/SIGHUP (turned into KeyboardInterrupt so that the same path runs) — stops them
in reverse order of starting: SIGTERM to each child's process group, SIGKILL after a grace
period. Each child runs in its own process group so that a Ctrl-C at the terminal reaches only
the supervisor, which then stops the children in order, and so that stopping a child also
stops whatever it started. Children also get SIGKILL from the kernel if the supervisor dies
without cleaning up (Linux parent-death signal, set by util-linux `setpriv`), and with
`reap_orphans` the supervisor becomes a subreaper: a grandchild that escaped its group is
reparented to it and killed at the end.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType, TracebackType

from daozhang.errors import DaozhangError

_PR_SET_CHILD_SUBREAPER = 36


def _prctl(option: int, value: int) -> bool:
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return bool(libc.prctl(option, value, 0, 0, 0) == 0)
    except (OSError, AttributeError):
        return False


def _with_parent_death(argv: Sequence[str]) -> list[str]:
    """`argv` behind util-linux `setpriv --pdeathsig KILL` (it execs: the pid stays the same).

    The kernel sends the signal when the forking *thread* ends, so only children forked by the
    main thread (which lives as long as the run) get it; a wrapper instead of `preexec_fn`
    because code between fork and exec is unsafe in a threaded process.
    """
    setpriv = shutil.which("setpriv")
    if setpriv is None or threading.current_thread() is not threading.main_thread():
        return list(argv)
    return [setpriv, "--pdeathsig", "KILL", "--", *argv]


@dataclass
class Child:
    """One process the supervisor started."""

    name: str
    argv: Sequence[str]
    process: subprocess.Popen[bytes]
    log: Path

    @property
    def pid(self) -> int:
        return self.process.pid

    def alive(self) -> bool:
        return self.process.poll() is None

    def signal_group(self, signum: int) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.process.pid, signum)

    def stop(self, grace_s: float = 5.0, kill: bool = False) -> int | None:
        """SIGTERM (or SIGKILL with `kill`) to the group; SIGKILL after `grace_s`."""
        self.signal_group(signal.SIGKILL if kill else signal.SIGTERM)
        try:
            self.process.wait(timeout=grace_s)
        except subprocess.TimeoutExpired:
            self.signal_group(signal.SIGKILL)
            self.process.wait()
        # The leader is gone; make sure nothing else of its group survives it.
        self.signal_group(signal.SIGKILL)
        return self.process.returncode


@dataclass
class _Adopted:
    name: str
    stop: Callable[[], object]


@dataclass
class Supervisor:
    logdir: Path
    grace_s: float = 5.0
    reap_orphans: bool = False
    handle_signals: bool = True
    _owned: list[Child | _Adopted] = field(default_factory=list)
    _old_handlers: dict[int, object] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    # Children this process had before the run (a test's database server, say): never ours to end.
    _spared: set[int] = field(default_factory=set)

    def __enter__(self) -> Supervisor:
        self.logdir.mkdir(parents=True, exist_ok=True)
        if self.reap_orphans:
            self._spared = set(_children_of(os.getpid()))
            _prctl(_PR_SET_CHILD_SUBREAPER, 1)
        if self.handle_signals and threading.current_thread() is threading.main_thread():
            for signum in (signal.SIGTERM, signal.SIGHUP):
                self._old_handlers[signum] = signal.signal(signum, _interrupt)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop_all()

    def spawn(
        self,
        name: str,
        argv: Sequence[str],
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
    ) -> Child:
        """Start `argv` in its own process group, output to `<logdir>/<name>.log`."""
        log = self.logdir / f"{name}.log"
        with log.open("ab") as out:
            try:
                process = subprocess.Popen(
                    _with_parent_death(argv),
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    env=dict(env) if env is not None else None,
                    cwd=cwd,
                    start_new_session=True,
                )
            except OSError as exc:
                raise DaozhangError(f"cannot start {name} ({argv[0]}): {exc.strerror}") from None
        child = Child(name, list(argv), process, log)
        with self._lock:
            self._owned.append(child)
        return child

    def adopt(self, name: str, stop: Callable[[], object]) -> None:
        """Register something started elsewhere (a virtual board, a broker) to stop at the end."""
        with self._lock:
            self._owned.append(_Adopted(name, stop))

    def forget(self, child: Child) -> None:
        """Stop tracking a child that has been stopped on purpose and will be replaced."""
        with self._lock:
            if child in self._owned:
                self._owned.remove(child)

    def children(self) -> list[Child]:
        with self._lock:
            return [c for c in self._owned if isinstance(c, Child)]

    def stop_all(self) -> list[str]:
        """Stop everything, newest first; returns what failed to stop cleanly (for the log)."""
        problems: list[str] = []
        # A second Ctrl-C must not abandon the cleanup half way; every step below is bounded.
        previous = _ignore_interrupts()
        try:
            with self._lock:
                owned, self._owned = list(reversed(self._owned)), []
            for item in owned:
                try:
                    if isinstance(item, Child):
                        item.stop(self.grace_s)
                    else:
                        item.stop()
                except (OSError, RuntimeError, ValueError, subprocess.SubprocessError) as exc:
                    # keep stopping the others; report this one
                    problems.append(f"{item.name}: {exc}")
            if self.reap_orphans:
                _kill_reparented_orphans(self._spared)
        finally:
            _restore(previous)
            for signum, handler in self._old_handlers.items():
                signal.signal(signum, handler)  # type: ignore[arg-type]
            self._old_handlers.clear()
        return problems


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signal.Signals(signum).name}")


def _ignore_interrupts() -> dict[int, object]:
    if threading.current_thread() is not threading.main_thread():
        return {}
    return {
        s: signal.signal(s, signal.SIG_IGN) for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
    }


def _restore(previous: dict[int, object]) -> None:
    for signum, handler in previous.items():
        signal.signal(signum, handler)  # type: ignore[arg-type]


def _kill_reparented_orphans(spared: set[int]) -> None:
    """As a subreaper, our direct children now include escaped grandchildren: end them.

    Children that existed before the run are spared: when the supervisor runs inside a
    longer-lived process (a test session), those belong to someone else.
    """
    me = os.getpid()
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        strays = [pid for pid in _children_of(me) if pid not in spared]
        orphans = [pid for pid in strays if not _is_zombie(pid)]
        for pid in orphans:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
        _reap(strays)
        if not orphans:
            return
        time.sleep(0.05)


def _children_of(pid: int) -> list[int]:
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*/children"):
        with contextlib.suppress(OSError):
            found.extend(int(p) for p in task.read_text().split())
    return found


def _is_zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except (OSError, IndexError):
        return True


def _reap(pids: list[int]) -> None:
    # Only the strays: waitpid(-1) would also collect other owners' children behind their back.
    for pid in pids:
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)
