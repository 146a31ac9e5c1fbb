"""paho clients that connect as a given identity, for the impostor tests."""

from __future__ import annotations

import ssl
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion


@dataclass
class Peer:
    client: mqtt.Client
    connected: threading.Event = field(default_factory=threading.Event)
    refused: str = ""
    messages: list[tuple[str, bytes]] = field(default_factory=list)
    pubacks: dict[int, int] = field(default_factory=dict)  # mid -> v5 reason code
    dropped: threading.Event = field(default_factory=threading.Event)  # after a CONNACK
    drop_reason: str = ""
    lock: threading.Lock = field(default_factory=threading.Lock)

    def topics(self) -> list[str]:
        with self.lock:
            return [t for t, _ in self.messages]

    def publish(self, topic: str, payload: bytes, qos: int = 1, retain: bool = False) -> int:
        """Publish and wait for the broker's answer; returns the PUBACK reason code
        (0 = accepted, 135 = not authorized) for QoS 1, 0 for QoS 0."""
        info = self.client.publish(topic, payload, qos=qos, retain=retain)
        if qos == 0:
            return 0
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            with self.lock:
                if info.mid in self.pubacks:
                    return self.pubacks[info.mid]
            time.sleep(0.01)
        raise TimeoutError(f"no PUBACK for {topic}")

    def drop(self) -> None:
        """Vanish without DISCONNECT, as a power cut does: the broker publishes the will."""
        self.client.loop_stop()
        sock = self.client.socket()
        if sock is not None:
            sock.close()

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def connect(
    port: int,
    ca: Path,
    cert_dir: Path | None = None,
    username: str | None = None,
    password: str | None = None,
    client_id: str = "",
    will_topic: str | None = None,
    will_payload: bytes = b"forged will",
    timeout: float = 5.0,
) -> Peer:
    """Connect; `peer.connected` is set on CONNACK success, else `peer.refused` says why."""
    client = mqtt.Client(
        CallbackAPIVersion.VERSION2,
        client_id=client_id or f"t{time.monotonic_ns()}",
        protocol=mqtt.MQTTv5,
    )
    peer = Peer(client)
    context = ssl.create_default_context(cafile=str(ca))
    if cert_dir is not None:
        context.load_cert_chain(str(cert_dir / "client.crt"), str(cert_dir / "client.key"))
    client.tls_set_context(context)
    if username is not None:
        client.username_pw_set(username, password)
    if will_topic:
        client.will_set(will_topic, will_payload, qos=1, retain=True)

    def on_connect(c: Any, u: Any, flags: Any, reason: Any, props: Any) -> None:
        if reason.is_failure:
            peer.refused = f"connack: {reason}"
        else:
            peer.connected.set()

    def on_disconnect(c: Any, u: Any, flags: Any, reason: Any, props: Any) -> None:
        if not peer.connected.is_set() and not peer.refused:
            peer.refused = f"disconnected: {reason}"
        elif peer.connected.is_set() and not peer.dropped.is_set():
            peer.drop_reason = str(reason)
            peer.dropped.set()

    def on_publish(c: Any, u: Any, mid: int, reason: Any, props: Any) -> None:
        with peer.lock:
            # 16 "no matching subscribers" is an accepted publish too.
            peer.pubacks[mid] = 0 if int(reason.value) == 16 else int(reason.value)

    def on_message(c: Any, u: Any, msg: Any) -> None:
        with peer.lock:
            peer.messages.append((msg.topic, msg.payload))

    client.on_connect = on_connect
    client.on_disconnect = on_disconnect
    client.on_publish = on_publish
    client.on_message = on_message
    try:
        client.connect("127.0.0.1", port, keepalive=30)
    except (ssl.SSLError, OSError) as exc:
        peer.refused = f"tls: {exc}"
        return peer
    client.loop_start()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not peer.connected.is_set() and not peer.refused:
        time.sleep(0.02)
    if not peer.connected.is_set():
        client.loop_stop()
        peer.refused = peer.refused or "no CONNACK"
    return peer


def subscribe(peer: Peer, *topics: str) -> list[int]:
    """Subscribe and wait for SUBACK; returns the reason codes."""
    done = threading.Event()
    codes: list[int] = []

    def on_subscribe(c: Any, u: Any, mid: int, reasons: Any, props: Any) -> None:
        codes.extend(int(r.value) for r in reasons)
        done.set()

    peer.client.on_subscribe = on_subscribe
    peer.client.subscribe([(t, 1) for t in topics])
    if not done.wait(5):
        raise TimeoutError("no SUBACK")
    return codes
