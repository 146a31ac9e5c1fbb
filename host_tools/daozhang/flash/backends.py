"""Kinds of device port that flashing knows beyond plain mpremote, found by registration.

A backend says which ports it claims, how to reboot the device on one, and, when the port
died in the middle of a session, what happened to the device. Backends register under the
entry point group `daozhang.device_backends` (pyproject.toml), so that flashing finds them
without importing them: the test lab's virtual board is one. A port no backend claims gets
the generic treatment (`machine.reset()` over mpremote, in `reboot.py`).
"""

from __future__ import annotations

import functools
from importlib.metadata import entry_points
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from daozhang.flash.link import Port

ENTRY_POINT_GROUP = "daozhang.device_backends"


class DeviceBackend(Protocol):
    @property
    def name(self) -> str: ...

    def claims(self, port: str) -> bool:
        """True if this backend handles the device on `port`."""
        ...

    def restart(self, port: Port) -> None:
        """Reboot the device so the agent starts from its flash (may update `port.port`)."""
        ...

    def how_it_ended(self, port: str) -> str | None:
        """After the port died mid-session: what happened to the device, if known."""
        ...


@functools.cache
def registered() -> tuple[DeviceBackend, ...]:
    return tuple(entry.load() for entry in entry_points(group=ENTRY_POINT_GROUP))


def claiming(port: str) -> DeviceBackend | None:
    return next((backend for backend in registered() if backend.claims(port)), None)


def how_it_ended(port: str) -> str | None:
    """What a registered backend knows of how the device on a dead port ended."""
    return next(
        (story for backend in registered() if (story := backend.how_it_ended(port)) is not None),
        None,
    )
