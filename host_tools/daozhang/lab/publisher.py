"""A device's uploader, played from CPython: for tests, benchmarks and data loading.

It behaves as DESIGN §1.3 asks of a terminal: MQTT 3.1.1, a window of batches in flight
(QoS 1) on `dz/v1/{dev}/up`, the highest `upto` of its own epoch kept from the QoS 0 acks on
`dz/v1/{dev}/ack`, and after an ack timeout or a reconnect everything is resent from
`upto + 1`. Records are pre-encoded bytes with seqs 1..n, resent byte for byte.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import cbor2
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from daozhang.collector.wire import mac_of
from daozhang.lab.devicewire import batch_bytes
from daozhang.security.tlsclient import parse_broker


class DevicePublisher:
    def __init__(
        self,
        broker: str,
        dev: str,
        epoch: int,
        records: list[bytes],
        *,
        per_batch: int = 10,
        window: int = 4,
        ack_timeout_s: float = 1.0,
        key: bytes | None = None,
    ) -> None:
        self.broker = broker
        self.dev = dev
        self.epoch = epoch
        self.records = records
        self.per_batch = per_batch
        self.window = window
        self.ack_timeout_s = ack_timeout_s
        self.key = key
        self.acked = 0  # the highest upto seen for our epoch: what the device may delete
        # The last record the device may send yet: a test paces uploads against its faults.
        self.released = len(records)
        self.acks_seen = 0
        self.batches_sent = 0
        self.resends = 0
        self._next = 1
        self._progress_at = time.monotonic()
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._connected = threading.Event()
        self._client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=dev, protocol=mqtt.MQTTv311
        )
        self._client.on_connect = self._on_connect
        self._client.on_disconnect = self._on_disconnect
        self._client.on_message = self._on_message
        self._attempts = 1
        # paho keeps one will for every reconnect: later sessions' LWTs are stale, and dropped.
        self._client.will_set(f"dz/v1/{dev}/status", self._status("offline"), qos=1, retain=True)
        self._client.max_inflight_messages_set(max(20, window * 2))

    def _status(self, word: str) -> bytes:
        """`online` / `offline`; signed with a counter as the agent does when keyed."""
        if self.key is None:
            return word.encode()
        body = f"{word} {self.epoch}.1.{self._attempts}".encode()
        return body + mac_of(self.key, body)

    def _on_connect(self, client: Any, userdata: Any, flags: Any, reason: Any, props: Any) -> None:
        if reason.is_failure:
            return
        client.subscribe(f"dz/v1/{self.dev}/ack", qos=0)
        client.publish(f"dz/v1/{self.dev}/status", self._status("online"), qos=1, retain=True)
        self._attempts += 1
        with self._lock:
            self._next = self.acked + 1  # a reconnect resends from upto + 1
        self._connected.set()
        self._wake.set()

    def _on_disconnect(
        self, client: Any, userdata: Any, flags: Any, reason: Any, props: Any
    ) -> None:
        self._connected.clear()

    def _on_message(self, client: Any, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        try:
            ack = cbor2.loads(msg.payload)
        except (cbor2.CBORDecodeError, ValueError):
            return
        if not isinstance(ack, dict) or ack.get("epoch") != self.epoch:
            return  # another epoch's ack says nothing about ours
        upto = ack.get("upto")
        with self._lock:
            self.acks_seen += 1
            if isinstance(upto, int) and upto > self.acked:
                self.acked = min(upto, len(self.records))
                self._progress_at = time.monotonic()
                self._next = max(self._next, self.acked + 1)
        self._wake.set()

    def start(self) -> DevicePublisher:
        host, port = parse_broker(self.broker)
        self._client.reconnect_delay_set(1, 2)
        self._client.connect(host, port, keepalive=10)
        self._client.loop_start()
        if not self._connected.wait(10):
            raise ConnectionError(f"{self.dev}: no CONNACK from {self.broker}")
        return self

    def done(self) -> bool:
        return self.acked >= len(self.records)

    def pump(self) -> None:
        """Send what the window allows; resend from upto + 1 after an ack timeout."""
        if not self._connected.is_set():
            return
        with self._lock:
            now = time.monotonic()
            if self.acked < len(self.records) and now - self._progress_at > self.ack_timeout_s:
                self.resends += 1
                self._next = self.acked + 1
                self._progress_at = now
            limit = self.acked + self.window * self.per_batch
            sends = []
            ceiling = min(len(self.records), self.released)
            while self._next <= ceiling and self._next <= limit:
                first = self._next
                last = min(first + self.per_batch - 1, ceiling)
                sends.append(self.records[first - 1 : last])
                self._next = last + 1
        for recs in sends:
            payload = batch_bytes(self.dev, self.epoch, recs, key=self.key)
            self._client.publish(f"dz/v1/{self.dev}/up", payload, qos=1)
            self.batches_sent += 1

    def run(self, timeout_s: float) -> bool:
        """Pump until everything is acked or the time is up; True when all is acked."""
        deadline = time.monotonic() + timeout_s
        while not self.done() and time.monotonic() < deadline:
            self.pump()
            self._wake.wait(0.05)
            self._wake.clear()
        return self.done()

    def publish_raw(
        self, channel: str, payload: bytes, qos: int = 1, dev: str | None = None
    ) -> None:
        """Anything at all on a topic of this device (or another's): for tests of refusal."""
        info = self._client.publish(f"dz/v1/{dev or self.dev}/{channel}", payload, qos=qos)
        info.wait_for_publish(5)

    def stop(self, clean: bool = True) -> None:
        if clean:
            self._client.publish(
                f"dz/v1/{self.dev}/status", self._status("offline"), qos=1, retain=True
            )
            self._client.disconnect()
        else:
            # A dead link: the socket goes away without DISCONNECT, so the broker sends the LWT.
            sock = self._client.socket()
            if sock is not None:
                sock.close()
        self._client.loop_stop()


def run_all(publishers: list[DevicePublisher], timeout_s: float) -> bool:
    threads = [threading.Thread(target=p.run, args=(timeout_s,), daemon=True) for p in publishers]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout_s + 5)
    return all(p.done() for p in publishers)
