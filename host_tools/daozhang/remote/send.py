"""Send signed commands to devices over the broker and gather their answers (DESIGN §1.5).

`prepare` takes a counter per device from the store and signs each command with the device's
key; `Exchange` subscribes to the devices' reply topics *before* it publishes (an answer may
come back within milliseconds), publishes at QoS 1 and waits for one trusted answer per device.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from types import TracebackType
from typing import Any

import paho.mqtt.client as mqtt

from daozhang.errors import DaozhangError
from daozhang.remote.counters import device_keys, reserve
from daozhang.remote.tool_client import CONNECT_S, Connected, connect, tool_client
from daozhang.remote.wire import Answer, decode_answer, encode_command
from daozhang.security.tlsclient import parse_broker
from daozhang.store import Store


@dataclass(frozen=True)
class Prepared:
    dev: str
    n: int
    key: bytes
    payload: bytes


def signing_keys(store: Store, devs: list[str]) -> dict[str, bytes]:
    """Each device's key; a device unknown or without a key cannot be sent a command."""
    keys = device_keys(store, devs)
    missing = [dev for dev, key in keys.items() if key is None]
    if missing:
        raise DaozhangError(
            f"no key for {', '.join(missing)}: a device verifies commands with its key"
            " (`daozhang flash` installs one)"
        )
    return {dev: key for dev, key in keys.items() if key is not None}


def prepare(store: Store, devs: list[str], op: str, settings: dict[str, int]) -> list[Prepared]:
    """One signed command per device, each with a counter of its own."""
    keys = signing_keys(store, devs)
    counters = reserve(store, devs)
    out = []
    for dev in devs:
        key = keys[dev]
        n = counters[dev]
        out.append(Prepared(dev, n, key, encode_command(key, dev, n, op, settings)))
    return out


@dataclass(frozen=True)
class Outcome:
    """What became of one device's command: `applied`, `refused` (`why`), `unverified` (an
    answer came whose MAC does not check with the store's key) or `none` (no answer)."""

    dev: str
    n: int
    state: str
    why: str | None = None
    seen: int | None = None


class Exchange:
    """One MQTT connection for sending commands and reading answers."""

    def __init__(self, broker: str, tls_dir: str | None = None) -> None:
        self.host, self.port = parse_broker(broker)
        self.broker = broker
        self.client = tool_client(broker, tls_dir, "cmd")
        self._seen = Connected()
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._subacks: set[int] = set()
        self._inbox: list[tuple[str, bytes]] = []
        self.client.on_connect = self._on_connect
        self.client.on_subscribe = self._on_subscribe
        self.client.on_message = self._on_message

    def __enter__(self) -> Exchange:
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

    # -- paho's thread --------------------------------------------------------------------
    def _on_connect(self, client: Any, userdata: Any, flags: Any, reason: Any, props: Any) -> None:
        self._seen.answer(reason, reason.is_failure)

    def _on_subscribe(self, client: Any, userdata: Any, mid: int, codes: Any, props: Any) -> None:
        with self._changed:
            self._subacks.add(mid)
            self._changed.notify_all()

    def _on_message(self, client: Any, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        if msg.retain:
            return  # an old answer kept by the broker: never one to this command
        with self._changed:
            self._inbox.append((msg.topic, bytes(msg.payload)))
            self._changed.notify_all()

    # -- the caller's side -------------------------------------------------------------------
    def send(self, commands: list[Prepared]) -> None:
        """Subscribe to the answers, then publish every command (QoS 1)."""
        result, mid = self.client.subscribe([(f"dz/v1/{c.dev}/reply", 0) for c in commands])
        if result != mqtt.MQTT_ERR_SUCCESS:
            raise DaozhangError(f"cannot subscribe at the broker at {self.broker}")
        with self._changed:
            if not self._changed.wait_for(lambda: mid in self._subacks, CONNECT_S):
                raise DaozhangError(f"the broker at {self.broker} did not confirm a subscription")
        for command in commands:
            self.client.publish(f"dz/v1/{command.dev}/cmd", command.payload, qos=1)

    def answers(self, commands: list[Prepared], wait_s: float) -> dict[str, Outcome]:
        """Each device's outcome, waiting up to `wait_s` for the devices still silent."""
        by_dev = {c.dev: c for c in commands}
        trusted: dict[str, Outcome] = {}
        doubtful: dict[str, Outcome] = {}
        deadline = time.monotonic() + wait_s
        while True:
            with self._changed:
                inbox, self._inbox = self._inbox, []
                if not inbox and len(trusted) < len(by_dev):
                    left = deadline - time.monotonic()
                    if left > 0:
                        self._changed.wait(min(left, 0.5))
                    inbox, self._inbox = self._inbox, []
            for topic, payload in inbox:
                dev = topic.split("/")[2] if topic.count("/") == 3 else ""
                command = by_dev.get(dev)
                if command is None or dev in trusted:
                    continue
                answer = decode_answer(dev, command.key, payload)
                if answer is None:
                    continue
                if answer.verified and answer.n == command.n:
                    trusted[dev] = _outcome(command, answer)
                elif not answer.verified:
                    doubtful[dev] = Outcome(dev, command.n, "unverified", answer.why)
            if len(trusted) == len(by_dev) or time.monotonic() >= deadline:
                break
        return {
            dev: trusted.get(dev) or doubtful.get(dev) or Outcome(dev, c.n, "none")
            for dev, c in by_dev.items()
        }


def _outcome(command: Prepared, answer: Answer) -> Outcome:
    state = "applied" if answer.ok else "refused"
    return Outcome(command.dev, command.n, state, answer.why, answer.seen)
