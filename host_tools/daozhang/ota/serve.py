"""Offering a bundle to devices and serving its bytes as they ask (DESIGN §1.6).

Each device gets `{op: "offer", id, msize, size, mac}` on `dz/v1/{dev}/ota` (QoS 1, so a device
away gets it when it is back), the MAC made with its own key; it then asks for the manifest and
the files, one chunk at a time, on `dz/v1/{dev}/fetch`, and is answered on its `ota` topic.
What each device says of the update comes back in its heartbeats (`ota`: the offer's id and a
state; `fw`: the running version)."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

import cbor2
import paho.mqtt.client as mqtt

from daozhang.ota.bundle import Bundle, manifest_id, offer_mac
from daozhang.remote.tool_client import Connected, connect, tool_client
from daozhang.security.tlsclient import parse_broker

MAX_CHUNK = 768  # a chunk message must fit the device's 1 KB receive buffer
# Chunks one fetch may ask for (the device's `ota_window`): its memory holds them until used.
MAX_WINDOW = 16
FINAL = ("confirmed", "refused", "rolled")
# A heartbeat this long after an offer that does not name it says the offer was lost.
LOST_AFTER_S = 5.0


@dataclass
class DeviceState:
    """What the server knows of one device's update."""

    dev: str
    state: str = "offered"  # the device's last word on this offer, or "offered"
    fw: str | None = None  # the running version its heartbeats name
    served: int = 0  # the furthest byte served
    heard: bool = False  # a heartbeat about this offer (or a fetch) came
    offered_at: float = 0.0  # time.monotonic() of the last offer made to it

    @property
    def final(self) -> bool:
        return self.state.split(" ", 1)[0] in FINAL


@dataclass
class Server:
    """One MQTT connection: offers, chunks, and heartbeats read back."""

    broker: str
    bundle: Bundle
    tls_dir: str | None = None
    # Tests only: (dev, off, data) -> the bytes to send instead (a tampered chunk).
    alter: Any = None
    # An offer not answered (lost with the device's link, or in a broker restart without
    # persistence) is made again this often.
    reoffer_s: float = 30.0
    devices: dict[str, DeviceState] = field(default_factory=dict)
    keys: dict[str, bytes] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.host, self.port = parse_broker(self.broker)
        self.id = bytes.fromhex(manifest_id(self.bundle.manifest_bytes))
        self.tag = self.id[:4].hex()
        self.stream = self.bundle.data[
            self.bundle.payload_offset - len(self.bundle.manifest_bytes) :
        ]
        self.lock = threading.Lock()
        self._seen = Connected()
        self.client = tool_client(self.broker, self.tls_dir, "ota")
        # Back within 2 s of a broker restart: paho's default backoff doubles up to 2 minutes,
        # and every device waiting for a chunk waits that long with it.
        self.client.reconnect_delay_set(min_delay=1, max_delay=2)
        self.client.on_connect = self._on_connect
        self.client.on_message = self._on_message

    def __enter__(self) -> Server:
        connect(self.client, self.broker, self.host, self.port, self._seen)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.client.disconnect()
        self.client.loop_stop()

    def _on_connect(self, client: Any, userdata: Any, flags: Any, reason: Any, props: Any) -> None:
        if not reason.is_failure:
            client.subscribe([("dz/v1/+/fetch", 0), ("dz/v1/+/hb", 0)])
        self._seen.answer(reason, reason.is_failure)

    def offer(self, dev: str, key: bytes) -> None:
        body = {
            "op": "offer",
            "id": self.id,
            "msize": len(self.bundle.manifest_bytes),
            "size": self.bundle.manifest.total_bytes,
            "mac": offer_mac(key, self.bundle.manifest_bytes),
        }
        with self.lock:
            self.devices.setdefault(dev, DeviceState(dev)).offered_at = time.monotonic()
            self.keys[dev] = key
        self.client.publish(f"dz/v1/{dev}/ota", cbor2.dumps(body), qos=1)

    # -- paho's thread ---------------------------------------------------------------------
    def _on_message(self, client: Any, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        parts = msg.topic.split("/")
        if len(parts) != 4:
            return
        dev, leaf = parts[2], parts[3]
        with self.lock:
            state = self.devices.get(dev)
        if state is None:
            return
        try:
            body = cbor2.loads(msg.payload)
        except (cbor2.CBORDecodeError, ValueError, RecursionError):
            return
        if not isinstance(body, dict):
            return
        if leaf == "fetch":
            self._serve(dev, state, body)
        elif leaf == "hb":
            self._heard(state, body)

    def _serve(self, dev: str, state: DeviceState, body: dict[str, Any]) -> None:
        """`{id, off, n, k}`: k chunks of n bytes from off, each its own message (a device
        that sends no `k` asks for one)."""
        off, n, k = body.get("off"), body.get("n"), body.get("k", 1)
        if body.get("id") != self.id[:8] or type(off) is not int or type(n) is not int:
            return
        if type(k) is not int or not 1 <= k <= MAX_WINDOW:
            return
        if not (0 <= off < len(self.stream) and 0 < n <= MAX_CHUNK):
            return
        for at in range(off, min(off + k * n, len(self.stream)), n):
            data = self.stream[at : at + n]
            if self.alter is not None:
                data = self.alter(dev, at, data)
            with self.lock:
                state.served = max(state.served, at + len(data))
                state.heard = True
            chunk = {"op": "chunk", "id": self.id[:8], "off": at, "d": data}
            self.client.publish(f"dz/v1/{dev}/ota", cbor2.dumps(chunk), qos=0)

    def _heard(self, state: DeviceState, body: dict[str, Any]) -> None:
        text = body.get("ota")
        fw = body.get("fw")
        with self.lock:
            if isinstance(fw, str):
                state.fw = fw
            if isinstance(text, str) and text.startswith(self.tag + " "):
                state.state = text[len(self.tag) + 1 :]
                state.heard = True
            # Connected, and it does not name this offer: the offer was lost (with its link,
            # or in a broker restart). Made again now, not at the next `reoffer_s`.
            again = not state.heard and time.monotonic() - state.offered_at >= LOST_AFTER_S
        if again:
            self.offer(state.dev, self.keys[state.dev])

    # -- the caller's side -------------------------------------------------------------------
    def wait(self, wait_s: float) -> dict[str, DeviceState]:
        """Until every device has a final word (or `wait_s`); offers again to a device not
        heard from `reoffer_s` after its last offer (it may have been away, or not subscribed
        yet). That time is each device's own, kept across calls: a caller that waits in short
        slices still re-offers."""
        deadline = time.monotonic() + wait_s
        while time.monotonic() < deadline:
            now = time.monotonic()
            with self.lock:
                if all(s.final for s in self.devices.values()):
                    break
                silent = [
                    d
                    for d, s in self.devices.items()
                    if not s.heard and now - s.offered_at >= self.reoffer_s
                ]
            for dev in silent:
                self.offer(dev, self.keys[dev])
            time.sleep(0.2)
        with self.lock:
            return {dev: DeviceState(**vars(s)) for dev, s in self.devices.items()}
