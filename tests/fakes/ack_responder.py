"""A minimal host-side stand-in for the collector (CPython): stores batches, acks them.

Subscribes to dz/v1/+/up on a real broker, checks the MAC when the device has a key, stores
each record by (dev, epoch, seq) — a resend with identical bytes is counted, different bytes are
a conflict — accounts declared gaps, and publishes {v, epoch, upto, now} on dz/v1/{dev}/ack with
upto = the highest contiguous accounted seq. The real collector is host_tools' business.
"""

from __future__ import annotations

import hashlib
import hmac
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import cbor2
import paho.mqtt.client as paho


@dataclass
class DeviceLog:
    records: dict[tuple[int, int], bytes] = field(default_factory=dict)
    gaps: set[tuple[int, int, int]] = field(default_factory=set)
    contig: dict[int, int] = field(default_factory=dict)  # epoch -> upto
    accounted: dict[int, set[int]] = field(default_factory=dict)
    resends: int = 0
    conflicts: int = 0
    batches: int = 0
    bad_mac: int = 0


class AckResponder:
    def __init__(
        self,
        port: int,
        keys: dict[str, bytes] | None = None,
        time_scale: float = 1.0,
        ack: bool = True,
    ) -> None:
        self.port = port
        self.keys = keys or {}
        self.time_scale = time_scale
        self.t0 = time.time()
        self.ack_enabled = ack
        self.devices: dict[str, DeviceLog] = {}
        self.heartbeats: list[dict[str, Any]] = []
        self.status: list[tuple[str, bytes]] = []
        self.lock = threading.Lock()
        self.client = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id="ack-responder")
        self.client.on_message = self._on_message
        self.client.on_connect = self._on_connect
        self.client.reconnect_delay_set(0.2, 1)

    def start(self) -> AckResponder:
        self.client.connect("127.0.0.1", self.port, keepalive=10)
        self.client.loop_start()
        return self

    def stop(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()

    def now(self) -> int:
        return int(self.t0 + (time.time() - self.t0) * self.time_scale)

    def _on_connect(self, client: paho.Client, *_: Any) -> None:
        client.subscribe([("dz/v1/+/up", 1), ("dz/v1/+/hb", 0), ("dz/v1/+/status", 1)])

    def _on_message(self, client: paho.Client, _u: Any, msg: paho.MQTTMessage) -> None:
        dev, leaf = msg.topic.split("/")[2:4]
        if leaf == "hb":
            with self.lock:
                self.heartbeats.append(cbor2.loads(msg.payload))
            return
        if leaf == "status":
            with self.lock:
                self.status.append((dev, msg.payload))
            return
        with self.lock:
            ack = self._store(dev, msg.payload)
        if ack is not None and self.ack_enabled:
            client.publish(f"dz/v1/{dev}/ack", cbor2.dumps(ack), qos=0)

    def _store(self, dev: str, payload: bytes) -> dict[str, int] | None:
        log = self.devices.setdefault(dev, DeviceLog())
        key = self.keys.get(dev)
        if key is not None:
            body, tag = payload[:-32], payload[-32:]
            if not hmac.compare_digest(hmac.new(key, body, hashlib.sha256).digest(), tag):
                log.bad_mac += 1
                return None  # a forged batch never moves the ack
            payload = body
        batch = cbor2.loads(payload)
        if batch.get("dev") != dev:
            return None
        log.batches += 1
        epoch = batch["epoch"]
        accounted = log.accounted.setdefault(epoch, set())
        for rec in batch["recs"]:
            raw = cbor2.dumps(rec)
            seq = rec["seq"]
            old = log.records.get((epoch, seq))
            if old is None:
                log.records[(epoch, seq)] = raw
            elif old == raw:
                log.resends += 1
            else:
                log.conflicts += 1
            accounted.add(seq)
        for first, last in batch.get("gaps", []):
            log.gaps.add((epoch, first, last))
            accounted.update(range(first, last + 1))
        upto = log.contig.get(epoch, 0)
        while upto + 1 in accounted:
            upto += 1
            accounted.discard(upto)
        log.contig[epoch] = upto
        return {"v": 1, "epoch": epoch, "upto": upto, "now": self.now()}
