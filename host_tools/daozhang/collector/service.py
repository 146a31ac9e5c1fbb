"""The collector process: a shared MQTT v5 subscription in front of `ingest`, group commit,
PUBACK only after the commit is durable, end-to-end acks to the devices.

Threads: paho's network thread only queues what arrives (blocking when the bounded queue is
full, which pushes back on the broker through TCP); the committer thread (the caller of
`run()`) owns the database connection. It opens a transaction, ingests messages as they come,
and commits after `commit_records` new records, `commit_ms` milliseconds, or a short idle gap
(which under load means the broker's in-flight window is used up: only a commit frees it).
After the commit returns — SQLite WAL with synchronous=FULL, or PostgreSQL — it publishes one
ack per (dev, epoch) heard from in the group, duplicates included, then PUBACKs the group.

A crash at any point loses nothing: un-PUBACKed messages stay in the persistent session and
come back (their records are then duplicates: stored once, acked again), and devices keep
every record until an ack covers it.
"""

from __future__ import annotations

import queue
import sqlite3
import ssl
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.subscribeoptions import SubscribeOptions

from daozhang.collector.ingest import IngestResult
from daozhang.collector.metrics import Metrics
from daozhang.collector.prepare import DeviceInfo, Prepared, prepare_batch
from daozhang.collector.quarantine import quarantine
from daozhang.collector.timeline import ingest_message
from daozhang.collector.wire import WireError, encode_ack, parse_topic
from daozhang.collector.writer import GroupWriter, read_device
from daozhang.errors import DaozhangError, StoreError, UsageError
from daozhang.store import Store, Transaction, open_store
from daozhang.store.engine import SqliteStore


@dataclass
class CollectorConfig:
    broker: str
    db_url: str
    group: str = "daozhang"
    name: str = "collector"  # the MQTT client id: stable, so a restart resumes the session
    session_expiry_s: int = 3600
    commit_records: int = 2000
    commit_ms: int = 50
    idle_ms: float = 3.0
    max_unacked: int = 1000
    require_key: bool = False
    tls_dir: str | None = None  # PKI identity folder (ca.pem, client.crt, client.key): mqtts
    connect_timeout_s: float | None = None  # how long to wait for the broker at start


@dataclass
class _Incoming:
    topic: str
    payload: bytes
    mid: int
    qos: int
    retain: bool
    received_at: float
    generation: int  # which connection it came on: a PUBACK is only valid on that one
    prepared: Prepared | None = None  # an upload's checks, done before the transaction


def parse_broker(url: str) -> tuple[str, int]:
    parsed = urlparse(url)
    if parsed.scheme not in ("mqtt", "mqtts") or not parsed.hostname:
        raise UsageError(f"bad broker URL {url!r}: expected mqtt://HOST:PORT or mqtts://...")
    return parsed.hostname, parsed.port or (8883 if parsed.scheme == "mqtts" else 1883)


def ensure_durable(store: Store) -> None:
    """Refuse to ack from a database that could lose a commit on power loss."""
    if isinstance(store, SqliteStore):
        mode, sync = store.durability()
        if mode != "wal" or sync < 2:
            raise StoreError(
                f"SQLite at {store.path} runs journal_mode={mode}, synchronous={sync}:"
                " acks need WAL with synchronous=FULL (2) or EXTRA (3)"
            )


def _transient(exc: BaseException) -> bool:
    """A database error worth retrying the whole group for (lock, deadlock, lost link)."""
    if isinstance(exc, sqlite3.OperationalError):
        text = str(exc).lower()
        return "locked" in text or "busy" in text or "i/o" in text
    try:
        import psycopg
    except ImportError:  # pragma: no cover - psycopg is a dependency
        return False
    return isinstance(exc, psycopg.OperationalError | psycopg.errors.UniqueViolation)


def _log(message: str) -> None:
    sys.stderr.write(f"daozhang collect: {message}\n")
    sys.stderr.flush()


class Collector:
    def __init__(self, config: CollectorConfig, metrics: Metrics | None = None) -> None:
        self.config = config
        self.metrics = metrics or Metrics()
        self.stopping = threading.Event()
        self.subscribed = threading.Event()
        # QoS 1 messages are bounded by the Receive Maximum we announce; the margin is for
        # QoS 0 heartbeats, which no window bounds.
        self._queue: queue.Queue[_Incoming] = queue.Queue(maxsize=config.max_unacked + 1000)
        self._generation = 0
        # Migrate and check durability now, so that a bad --db fails before any connection;
        # the committer thread opens its own connection in `run()` (SQLite's are per thread).
        with open_store(config.db_url) as store:
            ensure_durable(store)
        self._store: Store = store
        self._client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=config.name,
            protocol=mqtt.MQTTv5,
            manual_ack=True,
        )
        if config.broker.startswith("mqtts:"):
            if not config.tls_dir:
                raise UsageError("an mqtts:// broker needs --tls-dir (see `daozhang pki issue`)")
            from daozhang.security.tlsclient import client_context

            self._client.tls_set_context(client_context(Path(config.tls_dir)))
        self._client.on_connect = self._on_connect
        self._client.on_disconnect = self._on_disconnect
        self._client.on_subscribe = self._on_subscribe
        self._client.on_message = self._on_message
        self._client.reconnect_delay_set(1, 5)

    # -- paho's thread -------------------------------------------------------------------

    def _on_connect(self, client: Any, userdata: Any, flags: Any, reason: Any, props: Any) -> None:
        if reason.is_failure:
            _log(f"broker refused the connection: {reason}")
            return
        self._generation += 1
        _log(f"connected as {self.config.name!r} (session present: {flags.session_present})")
        share = f"$share/{self.config.group}/dz/v1/+"
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
            _log(f"subscription refused: {failed}")
            return
        _log(f"subscribed to $share/{self.config.group}/dz/v1/+/{{up,status,hb}}")
        self.subscribed.set()

    def _on_disconnect(
        self, client: Any, userdata: Any, flags: Any, reason: Any, props: Any
    ) -> None:
        if not self.stopping.is_set():
            _log(f"disconnected ({reason}); reconnecting")

    def _on_message(self, client: Any, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        try:
            topic = msg.topic
        except UnicodeDecodeError:
            topic = "(topic not UTF-8) " + bytes(msg._topic).hex()[:200]
        incoming = _Incoming(
            topic,
            bytes(msg.payload),
            msg.mid,
            msg.qos,
            bool(msg.retain),
            time.time(),
            self._generation,
        )
        if msg.qos:
            self.metrics.add_unacked(1)
        self._queue.put(incoming)  # blocks when full: TCP backpressure to the broker

    # -- the committer -----------------------------------------------------------------------

    def connect(self) -> None:
        host, port = parse_broker(self.config.broker)
        props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        props.SessionExpiryInterval = self.config.session_expiry_s
        props.ReceiveMaximum = min(self.config.max_unacked, 65535)
        # A collector often starts before its broker (boot order, a broker restart): it waits
        # and says so, up to `connect_timeout_s` (None: as long as it takes, like a service).
        limit = self.config.connect_timeout_s
        deadline = None if limit is None else time.monotonic() + limit
        delay = 0.5
        while not self.stopping.is_set():
            try:
                self._client.connect(host, port, keepalive=30, clean_start=False, properties=props)
                break
            except ssl.SSLCertVerificationError as exc:  # waiting would not change the certs
                raise DaozhangError(
                    f"the broker at {self.config.broker} failed TLS verification: {exc}"
                ) from exc
            except OSError as exc:
                if deadline is not None and time.monotonic() + delay > deadline:
                    waited = f" (gave up after {limit:g} s)" if limit else ""
                    raise DaozhangError(
                        f"cannot connect to the broker at {self.config.broker}: {exc}{waited}"
                    ) from exc
                _log(f"broker at {self.config.broker} unreachable ({exc}); retry in {delay:g} s")
                self.stopping.wait(delay)
                delay = min(delay * 2, 5.0)
        self._client.loop_start()

    def run(self) -> None:
        """Commit groups until `stop()`; then finish the group at hand and disconnect."""
        self._store = open_store(self.config.db_url, migrate=False)
        ensure_durable(self._store)
        try:
            while not self.stopping.is_set():
                self.run_group(timeout=0.2)
        finally:
            self._client.disconnect()
            self._client.loop_stop()
            self._store.close()

    def stop(self) -> None:
        self.stopping.set()

    def run_group(self, timeout: float) -> int:
        """Take one group of messages through commit, acks and PUBACKs; how many it held."""
        try:
            first = self._queue.get(timeout=timeout)
        except queue.Empty:
            return 0
        group = [first]
        started = time.monotonic()
        try:
            results = self._ingest_group(group, take_more=True)
        except Exception as exc:  # noqa: BLE001 - any failure: retry or isolate, never stall
            results = self._recover(group, exc)
        elapsed = time.monotonic() - started
        self._after_commit(group, results, elapsed)
        return len(group)

    def _ingest_group(self, group: list[_Incoming], take_more: bool) -> list[IngestResult]:
        """One transaction over `group`, first grown from the queue when `take_more`.

        The group is gathered and its uploads checked before the transaction opens: the
        write lock is then held for the writes alone, and other collectors can commit
        meanwhile.
        """
        if take_more:
            self._gather(group)
        results: list[IngestResult] = []
        writer = GroupWriter()
        with self._store.transaction() as tx:
            for message in group:
                results.append(self._ingest(tx, message, writer))
            writer.flush(tx)
        return results

    def _gather(self, group: list[_Incoming]) -> None:
        """Take messages until `commit_records`, `commit_ms` or an idle gap, checking each."""
        cfg = self.config
        deadline = time.monotonic() + cfg.commit_ms / 1000
        devices: dict[str, DeviceInfo] = {}
        records = sum(self._prepare(message, devices) for message in group)
        while records < cfg.commit_records and len(group) < cfg.max_unacked:
            wait = min(deadline - time.monotonic(), cfg.idle_ms / 1000)
            if wait <= 0:
                break
            try:
                message = self._queue.get(timeout=wait)
            except queue.Empty:
                break  # idle: commit now, which also frees the broker's window
            group.append(message)
            records += self._prepare(message, devices)

    def _prepare(self, message: _Incoming, devices: dict[str, DeviceInfo]) -> int:
        """Check an upload without the write lock; how many records it carries."""
        try:
            dev, channel = parse_topic(message.topic)
        except WireError:
            return 0  # refused inside the transaction, with its quarantine row
        if channel != "up":
            return 0
        device = devices.get(dev)
        if device is None:
            device = devices[dev] = read_device(self._store.query, dev)
        message.prepared = prepare_batch(device, dev, message.payload, self.config.require_key)
        verdict = message.prepared.verdict
        return 0 if isinstance(verdict, WireError) else len(verdict[0].recs)

    def _ingest(
        self, tx: Transaction, message: _Incoming, writer: GroupWriter | None = None
    ) -> IngestResult:
        return ingest_message(
            tx,
            message.topic,
            message.payload,
            message.received_at,
            retained=message.retain,
            collector=self.config.name,
            require_key=self.config.require_key,
            writer=writer,
            prepared=message.prepared,
        )

    def _recover(self, group: list[_Incoming], exc: Exception) -> list[IngestResult]:
        """The group's transaction failed: retry it, or isolate the message that breaks it."""
        while _transient(exc):
            self.metrics.commit_retries += 1  # only this thread writes it
            _log(f"database error, retrying {len(group)} messages: {exc}")
            time.sleep(0.2)
            self._reopen_store()
            # Sorted by device: two collectors then lock ack rows in the same order.
            group.sort(key=lambda m: m.topic)
            try:
                return self._ingest_group(group, take_more=False)
            except Exception as again:  # noqa: BLE001 - as above
                exc = again
        _log(f"a message broke the group commit ({exc!r}); committing one by one")
        return [self._ingest_alone(message) for message in group]

    def _ingest_alone(self, message: _Incoming) -> IngestResult:
        while True:
            try:
                with self._store.transaction() as tx:
                    return self._ingest(tx, message)
            except Exception as exc:  # noqa: BLE001 - a poison message goes to quarantine
                if _transient(exc):
                    time.sleep(0.2)
                    self._reopen_store()
                    continue
                return self._quarantine_internal(message, exc)

    def _quarantine_internal(self, message: _Incoming, exc: Exception) -> IngestResult:
        """A message that makes ingest fail is a bug to fix, never a reason to stall."""
        _log(f"quarantined a message on {message.topic[:80]} after an internal error: {exc!r}")
        with self._store.transaction() as tx:
            quarantine(
                tx,
                dev=None,
                topic=message.topic[:200],
                reason="internal",
                detail=repr(exc),
                raw=message.payload,
                received_at=message.received_at,
                collector=self.config.name,
            )
        return IngestResult(channel="?", dev=None, quarantined=["internal"])

    def _reopen_store(self) -> None:
        try:
            self._store.close()
        except Exception as exc:  # noqa: BLE001 - it may be gone already; a new one is opened
            _log(f"closing the broken database connection: {exc!r}")
        while not self.stopping.is_set():
            try:
                self._store = open_store(self.config.db_url, migrate=False)
                return
            except StoreError as exc:
                _log(f"database unavailable, retrying: {exc}")
                time.sleep(1.0)
        raise StoreError("stopping while the database is unavailable")

    def _after_commit(
        self, group: list[_Incoming], results: list[IngestResult], elapsed: float
    ) -> None:
        now = time.time()
        acks: dict[tuple[str, int], int] = {}
        for result in results:
            self.metrics.count_message(
                result.channel, result.stored, result.duplicates, result.quarantined
            )
            for ack in result.acks:
                key = (ack.dev, ack.epoch)
                acks[key] = max(acks.get(key, 0), ack.upto)
        for (dev, epoch), upto in acks.items():
            self._client.publish(f"dz/v1/{dev}/ack", encode_ack(epoch, upto, now), qos=0)
        self.metrics.observe_commit(elapsed, len(acks))
        pubacked = 0
        for message in group:
            # After a reconnect the broker resends what was not PUBACKed, under packet ids
            # that may now name other messages: an old id is never acked on a new connection.
            if message.qos and message.generation == self._generation:
                self._client.ack(message.mid, message.qos)
            if message.qos:
                pubacked += 1
        self.metrics.add_unacked(-pubacked)


def run_collector(
    config: CollectorConfig, on_ready: Callable[[Collector], None] | None = None
) -> None:
    """Run until SIGTERM/SIGINT (the caller installs handlers that call `stop()`)."""
    collector = Collector(config)
    collector.connect()
    if on_ready is not None:
        on_ready(collector)
    collector.run()
