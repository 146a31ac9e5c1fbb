"""netem mode: each board in its own network namespace, shaped by `tc` (root only).

Each board gets a namespace joined to the host by a veth pair on its own /30 subnet
(`10.<net>.<i*4>.0/30`: host end .1, board end .2). Nothing is routed: a board can reach only
the host end of its own veth (where its proxy listens) and its own loopback. Shaping uses
`tc` on both veth ends (so both directions): `netem` for delay, jitter and loss, `tbf` for a
bandwidth cap when that is all a profile asks for. Some kernels have no `sch_netem` (this
project's 2-core sandbox is one: `tc` answers "Specified qdisc kind is unknown"); `preflight`
finds that out before anything starts and says so.

Processes join a namespace by forking from a thread that entered it with setns(2): the network
namespace is per thread, so the rest of the program stays on the host's network.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import shutil
import subprocess
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from daozhang.errors import DaozhangError

_CLONE_NEWNET = 0x40000000
T = TypeVar("T")


class NetemUnavailable(DaozhangError):
    """netem mode cannot run here: not root, no `ip`/`tc`, or a kernel without the qdisc."""


def _run(argv: list[str], check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(argv, capture_output=True, text=True, check=False)
    if check and result.returncode != 0:
        raise DaozhangError(f"{' '.join(argv)}: {result.stderr.strip() or result.returncode}")
    return result


def preflight(need_netem: bool) -> None:
    """Raise NetemUnavailable naming what is missing; `need_netem`: delay, jitter or loss used."""
    if os.geteuid() != 0:
        raise NetemUnavailable(
            f"netem mode needs root (ip netns, veth, tc); running as uid {os.geteuid()}: "
            'use mode = "proxy" or run as root'
        )
    for tool in ("ip", "tc"):
        if shutil.which(tool) is None:
            raise NetemUnavailable(f"netem mode needs `{tool}` (Debian package iproute2)")
    if not need_netem:
        return
    probe = f"dzprobe{os.getpid() % 100000}"
    _run(["ip", "netns", "add", probe])
    try:
        result = _run(
            [
                "ip",
                "netns",
                "exec",
                probe,
                "tc",
                "qdisc",
                "add",
                "dev",
                "lo",
                "root",
                "netem",
                "delay",
                "1ms",
            ],
            check=False,
        )
    finally:
        _run(["ip", "netns", "del", probe], check=False)
    if result.returncode != 0:
        raise NetemUnavailable(
            "this kernel has no netem qdisc (sch_netem): tc says "
            f"{result.stderr.strip()!r}; delay, jitter and loss need it (a bandwidth cap alone "
            'uses tbf and works), or use mode = "proxy"'
        )


@dataclass
class Namespace:
    """One board's namespace and veth pair; `create()` then `delete()` (idempotent)."""

    name: str
    index: int  # 0..16383: picks the /30
    net: int = 201  # second octet of the 10.x.0.0/16 the run uses

    @classmethod
    def for_board(cls, run_tag: str, index: int, net: int = 201) -> Namespace:
        return cls(f"dz{run_tag}n{index}", index, net)

    @property
    def host_veth(self) -> str:
        return f"{self.name}h"  # interface names are at most 15 bytes: create() checks

    @property
    def board_veth(self) -> str:
        return f"{self.name}b"

    def _ip(self, last: int) -> str:
        base = self.index * 4
        return f"10.{self.net}.{base // 256}.{base % 256 + last}"

    @property
    def host_ip(self) -> str:
        return self._ip(1)

    @property
    def board_ip(self) -> str:
        return self._ip(2)

    def create(self) -> Namespace:
        if not 0 <= self.index < 16384:
            raise DaozhangError(f"namespace index {self.index} out of range 0..16383")
        if len(self.name) > 14:
            raise DaozhangError(f"namespace name {self.name!r}: at most 14 characters")
        self.delete()  # a leftover of a killed run with the same name
        _run(["ip", "netns", "add", self.name])
        try:
            _run(
                [
                    "ip",
                    "link",
                    "add",
                    self.host_veth,
                    "type",
                    "veth",
                    "peer",
                    "name",
                    self.board_veth,
                    "netns",
                    self.name,
                ]
            )
            _run(["ip", "addr", "add", f"{self.host_ip}/30", "dev", self.host_veth])
            _run(["ip", "link", "set", self.host_veth, "up"])
            inside = ["ip", "netns", "exec", self.name]
            _run([*inside, "ip", "addr", "add", f"{self.board_ip}/30", "dev", self.board_veth])
            _run([*inside, "ip", "link", "set", self.board_veth, "up"])
            _run([*inside, "ip", "link", "set", "lo", "up"])
        except DaozhangError:
            self.delete()
            raise
        return self

    def delete(self) -> None:
        # Deleting the namespace destroys its veth end, which takes the host end with it.
        _run(["ip", "link", "del", self.host_veth], check=False)
        _run(["ip", "netns", "del", self.name], check=False)

    def exists(self) -> bool:
        return Path(f"/run/netns/{self.name}").exists()

    def shape(
        self, delay_ms: int = 0, jitter_ms: int = 0, loss_pct: float = 0.0, kbps: int = 0
    ) -> None:
        """Replace the shaping on both ends; all zero clears it."""
        for argv in (["tc"], ["ip", "netns", "exec", self.name, "tc"]):
            dev = self.host_veth if len(argv) == 1 else self.board_veth
            _run([*argv, "qdisc", "del", "dev", dev, "root"], check=False)
            if delay_ms or jitter_ms or loss_pct:
                spec = ["netem", "delay", f"{delay_ms}ms"]
                if jitter_ms:
                    spec += [f"{jitter_ms}ms"]
                if loss_pct:
                    spec += ["loss", f"{loss_pct}%"]
                if kbps:
                    spec += ["rate", f"{kbps}kbit"]
            elif kbps:
                # burst: at least one full frame; latency bounds the queue (bufferbloat of 2G).
                spec = ["tbf", "rate", f"{kbps}kbit", "burst", "1600", "latency", "2s"]
            else:
                continue
            _run([*argv, "qdisc", "add", "dev", dev, "root", *spec])

    def qdiscs(self) -> str:
        return _run(
            ["ip", "netns", "exec", self.name, "tc", "qdisc", "show", "dev", self.board_veth]
        ).stdout

    def enter(self) -> None:
        """Move the calling thread into the namespace (for a thread that lives there)."""
        _setns(Path(f"/run/netns/{self.name}"))

    def call(self, fn: Callable[[], T]) -> T:
        """Run `fn` in a thread inside the namespace (processes it forks stay in it)."""
        box: dict[str, T] = {}
        errors: list[BaseException] = []

        def inside() -> None:
            try:
                _setns(Path(f"/run/netns/{self.name}"))
                box["value"] = fn()
            except BaseException as exc:  # noqa: BLE001 -- re-raised in the caller's thread
                errors.append(exc)

        thread = threading.Thread(target=inside, name=f"netns-{self.name}")
        thread.start()
        thread.join()
        if errors:
            raise errors[0]
        return box["value"]


def _setns(path: Path) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    fd = os.open(path, os.O_RDONLY)
    try:
        if libc.setns(fd, _CLONE_NEWNET) != 0:
            err = ctypes.get_errno()
            raise DaozhangError(f"setns {path}: {os.strerror(err)}")
    finally:
        with contextlib.suppress(OSError):
            os.close(fd)
