"""A host tool's own MQTT connection to the broker (`daozhang ota`, `daozhang device`):
paho, MQTT 3.1.1, a client id of the tool's kind, TLS with the tool's identity for mqtts://,
and a connect that says why the broker did not take it instead of hanging."""

from __future__ import annotations

import threading
import uuid
from pathlib import Path

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from daozhang.errors import DaozhangError
from daozhang.security.tlsclient import client_context

CONNECT_S = 10.0


def tool_client(broker: str, tls_dir: str | None, kind: str) -> mqtt.Client:
    """A clean-session client `dz-{kind}-…`; mqtts:// needs the tool's identity folder."""
    client = mqtt.Client(
        CallbackAPIVersion.VERSION2,
        client_id=f"dz-{kind}-{uuid.uuid4().hex[:12]}",
        protocol=mqtt.MQTTv311,
        clean_session=True,
    )
    if broker.startswith("mqtts:"):
        if not tls_dir:
            raise DaozhangError("an mqtts:// broker needs --tls-dir (an identity of its own)")
        client.tls_set_context(client_context(Path(tls_dir)))
    return client


class Connected:
    """What the tool's on_connect saw: `accepted` set on the broker's answer, `refused` its
    reason when it said no."""

    def __init__(self) -> None:
        self.accepted = threading.Event()
        self.refused: str | None = None

    def answer(self, reason: object, failed: bool) -> None:
        if failed:
            self.refused = str(reason)
        self.accepted.set()


def connect(client: mqtt.Client, broker: str, host: str, port: int, seen: Connected) -> None:
    """Connect and start paho's thread; wait for the broker's answer, or say why not."""
    try:
        client.connect(host, port, keepalive=30)
    except OSError as exc:
        raise DaozhangError(f"cannot connect to the broker at {broker}: {exc}") from exc
    client.loop_start()
    if not seen.accepted.wait(CONNECT_S) or seen.refused:
        client.loop_stop()
        why = seen.refused or f"no answer within {CONNECT_S:g} s"
        raise DaozhangError(f"the broker at {broker} did not accept this tool: {why}")
