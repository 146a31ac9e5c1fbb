"""The collector's MQTT side: one paho v5 client on the shared subscription, its bounded queue,
and the acks and PUBACKs the committer sends back through it (service.py is the other side).

paho's network thread only queues what arrives, blocking when the queue is full, which pushes
back on the broker through TCP. QoS 1 messages are bounded by the Receive Maximum announced at
CONNECT; the queue's margin is for QoS 0 heartbeats, which no window bounds. Memory is bounded
in bytes too: CONNECT announces a Maximum Packet Size (the broker drops anything larger
instead of sending it), and the queue holds at most `max_queue_bytes` of payloads.
"""

from __future__ import annotations

import ssl
import threading
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.subscribeoptions import SubscribeOptions

from daozhang.collector.log import log
from daozhang.collector.metrics import Metrics
from daozhang.collector.wire import encode_ack
from daozhang.errors import DaozhangError, UsageError
from daozhang.security.tlsclient import parse_broker

# The largest packet the broker may send us: a batch is at most 8 KB and a heartbeat 2 KB,
# but an oversized upload up to what quarantine keeps (64 KB) still arrives, to be refused
# with its bytes as evidence; past that, the broker drops it unseen.
MAX_PACKET_BYTES = 65536 + 1024
_SHORT_SESSION_S = 10.0
_SHORT_SESSIONS_BEFORE_HINT = 3


class ByteBoundedQueue:
    """A FIFO of messages bounded in count and in payload bytes; `put` waits while it is full
    (one message always fits, however large) and gives up only when `stopping` is set: the
    message is then not PUBACKed, and the broker sends it again."""

    def __init__(self, max_messages: int, max_bytes: int, stopping: threading.Event) -> None:
        self.max_messages, self.max_bytes = max_messages, max_bytes
        self.bytes = 0
        self._items: deque[Incoming] = deque()
        self._changed = threading.Condition()
        self._stopping = stopping

    def put(self, item: Incoming) -> bool:
        with self._changed:
            while self._items and (
                len(self._items) >= self.max_messages
                or self.bytes + len(item.payload) > self.max_bytes
            ):
                if self._stopping.is_set():
                    return False
                self._changed.wait(0.5)
            self._items.append(item)
            self.bytes += len(item.payload)
            self._changed.notify_all()
            return True

    def get(self, timeout: float) -> Incoming | None:
        deadline = time.monotonic() + timeout
        with self._changed:
            while not self._items:
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                self._changed.wait(left)
            item = self._items.popleft()
            self.bytes -= len(item.payload)
            self._changed.notify_all()
            return item


@dataclass(frozen=True)
class Incoming:
    """One message as MQTT delivered it; what it means is decided by `verify.py`."""

    topic: str
    payload: bytes
    mid: int
    qos: int
    retain: bool
    received_at: float
    generation: int  # which connection it came on: a PUBACK is only valid on that one
    properties: Properties | None = None  # MQTT v5 PUBLISH properties, as sent


class Subscription:
    def __init__(
        self,
        *,
        broker: str,
        name: str,
        group: str,
        max_unacked: int,
        session_expiry_s: int,
        max_queue_bytes: int = 16 * 2**20,
        tls_dir: str | None,
        metrics: Metrics,
        stopping: threading.Event,
    ) -> None:
        self.broker, self.name, self.group = broker, name, group
        self.max_unacked = max_unacked
        self.session_expiry_s = session_expiry_s
        self.metrics = metrics
        self.stopping = stopping
        self.subscribed = threading.Event()
        self._queue = ByteBoundedQueue(max_unacked + 1000, max_queue_bytes, stopping)
        self._generation = 0
        self._connected_at = 0.0
        self.identity = name  # the client id the broker knows this collector by
        self._short_sessions = 0  # sessions in a row the broker ended soon after CONNACK
        self._client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=name, protocol=mqtt.MQTTv5, manual_ack=True
        )
        if broker.startswith("mqtts:"):
            if not tls_dir:
                raise UsageError("an mqtts:// broker needs --tls-dir (see `daozhang pki issue`)")
            from daozhang.security.tlsclient import certificate_identity, client_context

            self._client.tls_set_context(client_context(Path(tls_dir)))
            # The broker replaces the client id by the certificate's identity: say that one.
            self.identity = certificate_identity(Path(tls_dir))
        self._client.on_connect = self._on_connect
        self._client.on_disconnect = self._on_disconnect
        self._client.on_subscribe = self._on_subscribe
        self._client.on_message = self._on_message
        self._client.reconnect_delay_set(1, 5)

    # -- the committer's side ----------------------------------------------------------------

    def connect(self, timeout_s: float | None) -> None:
        """Connect and start paho's thread; wait for a broker that is down (up to `timeout_s`).

        A collector often starts before its broker (boot order, a broker restart): it waits
        and says so, as long as it takes when `timeout_s` is None, like a service.
        """
        host, port = parse_broker(self.broker)
        props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        props.SessionExpiryInterval = self.session_expiry_s
        props.ReceiveMaximum = min(self.max_unacked, 65535)
        props.MaximumPacketSize = MAX_PACKET_BYTES
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        delay = 0.5
        while not self.stopping.is_set():
            try:
                self._client.connect(host, port, keepalive=30, clean_start=False, properties=props)
                break
            except ssl.SSLCertVerificationError as exc:  # waiting would not change the certs
                raise DaozhangError(
                    f"the broker at {self.broker} failed TLS verification: {exc}"
                ) from exc
            except OSError as exc:
                if deadline is not None and time.monotonic() + delay > deadline:
                    waited = f" (gave up after {timeout_s:g} s)" if timeout_s else ""
                    raise DaozhangError(
                        f"cannot connect to the broker at {self.broker}: {exc}{waited}"
                    ) from exc
                log(f"broker at {self.broker} unreachable ({exc}); retry in {delay:g} s")
                self.stopping.wait(delay)
                delay = min(delay * 2, 5.0)
        self._client.loop_start()

    def take(self, timeout: float) -> Incoming | None:
        return self._queue.get(timeout)

    def send_acks(self, acks: dict[tuple[str, int], int], now: float) -> None:
        """`ack {epoch, upto, now}` (QoS 0) to each device heard from in a committed group."""
        for (dev, epoch), upto in acks.items():
            self._client.publish(f"dz/v1/{dev}/ack", encode_ack(epoch, upto, now), qos=0)

    def puback(self, group: list[Incoming]) -> None:
        pubacked = 0
        for message in group:
            # After a reconnect the broker resends what was not PUBACKed, under packet ids
            # that may now name other messages: an old id is never acked on a new connection.
            if message.qos and message.generation == self._generation:
                self._client.ack(message.mid, message.qos)
            if message.qos:
                pubacked += 1
        self.metrics.add_unacked(-pubacked)

    def close(self) -> None:
        self._client.disconnect()
        self._client.loop_stop()

    # -- paho's thread -------------------------------------------------------------------

    def _on_connect(self, client: Any, userdata: Any, flags: Any, reason: Any, props: Any) -> None:
        if reason.is_failure:
            log(f"broker refused the connection: {reason}")
            return
        self._generation += 1
        self._connected_at = time.monotonic()
        log(f"connected as {self.identity!r} (session present: {flags.session_present})")
        share = f"$share/{self.group}/dz/v1/+"
        client.subscribe(
            [
                (f"{share}/up", SubscribeOptions(qos=1)),
                (f"{share}/status", SubscribeOptions(qos=1)),
                (f"{share}/hb", SubscribeOptions(qos=0)),
            ]
        )

    def _on_subscribe(self, client: Any, userdata: Any, mid: int, codes: Any, props: Any) -> None:
        failed = [c for c in codes if c.is_failure]
        if failed:
            log(f"subscription refused: {failed}")
            return
        log(f"subscribed to $share/{self.group}/dz/v1/+/{{up,status,hb}}")
        self.subscribed.set()

    def _on_disconnect(
        self, client: Any, userdata: Any, flags: Any, reason: Any, props: Any
    ) -> None:
        if self.stopping.is_set():
            return
        log(f"disconnected ({reason}); reconnecting")
        lasted = time.monotonic() - self._connected_at
        self._short_sessions = self._short_sessions + 1 if lasted < _SHORT_SESSION_S else 0
        if self._short_sessions == _SHORT_SESSIONS_BEFORE_HINT:
            # The broker gives each identity one session (broker/config.py): two processes
            # with one certificate take it from each other, over and over.
            log(
                f"the broker ended {self._short_sessions} sessions in a row within "
                f"{_SHORT_SESSION_S:g} s: is another collector using the same identity "
                "(--tls-dir)? Each collector process needs its own: "
                "`daozhang pki issue NAME --collector`"
            )

    def _on_message(self, client: Any, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        try:
            topic = msg.topic
        except UnicodeDecodeError:
            topic = "(topic not UTF-8) " + bytes(msg._topic).hex()[:200]
        incoming = Incoming(
            topic,
            bytes(msg.payload),
            msg.mid,
            msg.qos,
            bool(msg.retain),
            time.time(),
            self._generation,
            msg.properties,
        )
        # Blocks when full: TCP backpressure to the broker.
        if self._queue.put(incoming) and msg.qos:
            self.metrics.add_unacked(1)
