"""Ask a freshly flashed agent for a heartbeat now (`dz/v1/{dev}/cmd` `{op: "report"}`).

The agent's heartbeat interval is minutes; the flash self-test should not wait that long to
see the first one reach the collector. The command is QoS 1 to a device that may not have
subscribed yet, so it is repeated until the heartbeat shows up in the collector's store. Like
every command it is signed with the device's key and counted (daozhang.remote, DESIGN §1.5):
the caller hands in the signed bytes, a fresh counter for each repetition.
"""

from __future__ import annotations

import threading
import uuid
from pathlib import Path
from types import TracebackType

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from daozhang.errors import DaozhangError


class ReportNudger:
    """One MQTT connection to the device's broker; `report(dev)` publishes the command."""

    def __init__(self, host: str, port: int, tls: bool, ca: Path | None = None) -> None:
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=f"dz-flash-{uuid.uuid4().hex[:12]}",
            protocol=mqtt.MQTTv311,
        )
        if tls:
            self.client.tls_set(ca_certs=str(ca) if ca else None)
        self._connected = threading.Event()
        self.client.on_connect = lambda *args: self._connected.set()
        self.host, self.port = host, port

    def __enter__(self) -> ReportNudger:
        try:
            self.client.connect(self.host, self.port, keepalive=30)
        except OSError as exc:
            raise DaozhangError(
                f"broker {self.host}:{self.port} unreachable from here: {exc}"
            ) from exc
        self.client.loop_start()
        if not self._connected.wait(10):
            self.client.loop_stop()
            raise DaozhangError(f"broker {self.host}:{self.port} did not accept this tool")
        return self

    def report(self, dev: str, signed: bytes) -> None:
        self.client.publish(f"dz/v1/{dev}/cmd", signed, qos=1)

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.client.disconnect()
        self.client.loop_stop()
