"""The collector process: a shared MQTT v5 subscription in front of `ingest`, group commit,
PUBACK only after the commit is durable, end-to-end acks to the devices.

Threads: paho's network thread only queues what arrives (`subscription.py`); the committer
thread (the caller of `run()`) owns the database connection. It gathers messages, judging each
upload as it comes (`verify.py`), until `commit_records` records, `commit_ms` milliseconds or a
short idle gap (which under load means the broker's in-flight window is used up: only a commit
frees it); then one transaction writes the group. After the commit returns — SQLite WAL with
synchronous=FULL, or PostgreSQL — it publishes one ack per (dev, epoch) heard from in the group,
duplicates included, then PUBACKs the group.

An upload whose verdict names an inbox run continuing its device's run (`inbox.py`) is written
whole as one `inbox` row in that transaction and acked from there; its records are stored
behind the ack (`inbox.Projector`) when the uploads pause, or after every group once the inbox
holds `max_inbox` records. Every other upload is stored
record by record before its ack, after its device's inbox rows.

The database side (the transaction, retries, isolating a message that breaks a group) is
`committer.py`. A crash at any point loses nothing: un-PUBACKed messages stay in the
persistent session and come back (their records are then duplicates: stored once, acked
again), and devices keep every record until an ack covers it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from daozhang.collector.committer import Committer, ensure_durable
from daozhang.collector.inbox import Projector, ingest_upload, pending_records
from daozhang.collector.ingest import IngestResult, ingest_record_by_record
from daozhang.collector.log import log
from daozhang.collector.metrics import Metrics
from daozhang.collector.subscription import Incoming, Subscription
from daozhang.collector.timeline import ingest_message
from daozhang.collector.verify import Upload, Verdict, verify
from daozhang.collector.wire import upload_device
from daozhang.collector.writer import GroupWriter
from daozhang.store import Store, Transaction, open_store
from daozhang.store.migrate import Component


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
    max_queue_bytes: int = 16 * 2**20  # payload bytes queued before paho's thread waits
    # Records the inbox may hold (acked, not stored yet; inbox.py). Past it, uploads take the
    # full path and a chunk is stored after every group. 0: no inbox at all.
    max_inbox: int = 200_000
    require_key: bool = False
    tls_dir: str | None = None  # PKI identity folder (ca.pem, client.crt, client.key): mqtts
    connect_timeout_s: float | None = None  # how long to wait for the broker at start
    # The components whose tables the collector brings up to date at start (the product's
    # list is daozhang.schema.COMPONENTS; the store, below them all, knows none).
    schema: Sequence[Component] = ()


@dataclass
class Taken:
    """A message taken from the subscription and, for an upload, the verdict on it."""

    message: Incoming
    dev: str | None = None  # the device of an upload (`dz/v1/{dev}/up`)
    verdict: Verdict | None = None
    inbox: bool = False  # the inbox had room when it was judged: it may be acked from there

    @property
    def topic(self) -> str:
        return self.message.topic

    @property
    def payload(self) -> bytes:
        return self.message.payload

    @property
    def received_at(self) -> float:
        return self.message.received_at


_DRAIN_ON_STOP_S = 5.0
# A pause in the uploads long enough to store an inbox chunk in: not the broker refilling its
# window after a PUBACK (well under a millisecond), nor another collector's commit holding
# SQLite's write lock for a few tens of ms (storing then would hold it longer still).
_LULL_S = 0.1


class Collector:
    def __init__(self, config: CollectorConfig, metrics: Metrics | None = None) -> None:
        self.config = config
        self.metrics = metrics or Metrics()
        self.stopping = threading.Event()
        self._projector = Projector(config.name, config.commit_records)
        self._inbox = 0  # records in the inbox, as this collector last knew (others add too)
        # Migrate and check durability now, so that a bad --db fails before any connection;
        # the committer thread opens its own connection in `run()` (SQLite's are per thread).
        with open_store(config.db_url, config.schema) as store:
            ensure_durable(store)
        self._committer: Committer[Taken] | None = None
        self._sub = Subscription(
            broker=config.broker,
            name=config.name,
            group=config.group,
            max_unacked=config.max_unacked,
            session_expiry_s=config.session_expiry_s,
            max_queue_bytes=config.max_queue_bytes,
            tls_dir=config.tls_dir,
            metrics=self.metrics,
            stopping=self.stopping,
        )
        self.subscribed = self._sub.subscribed

    def connect(self) -> None:
        self._sub.connect(self.config.connect_timeout_s)

    def run(self) -> None:
        """Commit groups until `stop()`; then finish the group at hand and disconnect."""
        committer = self._committer = Committer(
            self.config.db_url,
            self.config.name,
            self._ingest,
            self.metrics,
            self.stopping,
            ingest_apart=self._ingest_apart,
        )
        try:
            # What a crash or another collector left.
            self._inbox = pending_records(committer.store.query)
            while not self.stopping.is_set():
                taken = self.run_group(timeout=_LULL_S if self._inbox > 0 else 0.2)
                if taken == 0 or self._inbox > self.config.max_inbox:
                    self.project_some()
            self._drain_inbox(_DRAIN_ON_STOP_S)
        finally:
            self._sub.close()
            committer.close()

    @property
    def committer(self) -> Committer[Taken]:
        if self._committer is None:
            raise RuntimeError("the committer runs in run()")
        return self._committer

    def stop(self) -> None:
        self.stopping.set()

    def project_some(self) -> None:
        """Store one chunk of the inbox (`_inbox` 0 once a chunk finds it empty)."""
        try:
            done = self._projector.chunk(self.committer.store)
        except Exception as exc:  # noqa: BLE001 - only engine errors come out: wait, retry
            self.committer.wait(exc, "storing the inbox again")
            return
        self.committer.recovered()
        # Found rows: maybe more are left (another collector's too); none: the inbox is empty.
        self._inbox = max(1, self._inbox - done.records) if done.records else 0
        for result in done.results:
            self._count(result)

    def _drain_inbox(self, seconds: float) -> None:
        """On stop, store what this collector acked, for a while; the rest waits for the
        next collector to start (or for another one of the group)."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline and self._inbox > 0:
            self.project_some()

    def run_group(self, timeout: float) -> int:
        """Take one group of messages through commit, acks and PUBACKs; how many it held."""
        first = self._sub.take(timeout)
        if first is None:
            return 0
        group = [Taken(first)]
        started = time.monotonic()
        # The group is gathered and its uploads checked before the transaction opens: the
        # write lock is then held for the writes alone, and other collectors can commit
        # meanwhile.
        try:
            self._gather(group)
        except Exception as exc:  # noqa: BLE001 - the key store read failed: the transaction
            log(f"checking uploads before the commit failed: {exc!r}")  # checks them anyway
        results = self.committer.commit(group)
        elapsed = time.monotonic() - started
        self._after_commit(group, results, elapsed)
        return len(group)

    def _gather(self, group: list[Taken]) -> None:
        """Take messages until `commit_records`, `commit_ms` or an idle gap, judging each."""
        cfg = self.config
        deadline = time.monotonic() + cfg.commit_ms / 1000
        records = sum(map(self._judge, group))
        while records < cfg.commit_records and len(group) < cfg.max_unacked:
            wait = min(deadline - time.monotonic(), cfg.idle_ms / 1000)
            if wait <= 0:
                break
            message = self._sub.take(wait)
            if message is None:
                break  # idle: commit now, which also frees the broker's window
            taken = Taken(message)
            group.append(taken)
            records += self._judge(taken)

    def _judge(self, taken: Taken) -> int:
        """Verify an upload without the write lock; how many records it carries."""
        taken.dev = dev = upload_device(taken.topic)
        if dev is None:
            return 0  # not an upload (a bad topic is refused inside the transaction)
        upload = Upload(dev, taken.payload)
        verdict = verify(upload, self.committer.device(dev), require_key=self.config.require_key)
        taken.verdict = verdict
        # Past the bound, acking ahead would only add an inbox row to every stored record.
        taken.inbox = self._inbox < self.config.max_inbox
        run = verdict.inbox if taken.inbox else None
        if run is not None:
            return run.seq_to - run.seq_from + 1
        verdict.records  # noqa: B018 - checked now, outside the transaction's lock
        return verdict.record_count

    def _ingest(self, tx: Transaction, taken: Taken, writer: GroupWriter) -> list[IngestResult]:
        """The message's results: an upload's come after those of the inbox rows it had to
        wait for (`ingest_upload`)."""
        message = taken.message
        if taken.dev is not None:
            return ingest_upload(
                tx,
                writer,
                taken.dev,
                message.payload,
                message.received_at,
                collector=self.config.name,
                require_key=self.config.require_key,
                verdict=taken.verdict,
                inbox=taken.inbox,
            )
        return [
            ingest_message(
                tx,
                message.topic,
                message.payload,
                message.received_at,
                retained=message.retain,
                collector=self.config.name,
                require_key=self.config.require_key,
                writer=writer,
            )
        ]

    def _ingest_apart(self, store: Store, taken: Taken) -> list[IngestResult]:
        """A message that breaks its transaction alone: an upload is stored record by record
        (the record that breaks is quarantined alone); anything else raises again."""
        if taken.dev is None:
            raise ValueError(f"a message on {taken.topic[:80]!r} cannot be taken apart")
        result = ingest_record_by_record(
            store,
            taken.dev,
            taken.payload,
            taken.received_at,
            collector=self.config.name,
            require_key=self.config.require_key,
        )
        return [result]

    def _after_commit(
        self, group: list[Taken], results: list[IngestResult], elapsed: float
    ) -> None:
        now = time.time()
        acks: dict[tuple[str, int], int] = {}
        for result in results:
            self._count(result)
            self._inbox += result.accepted
            for ack in result.acks:
                key = (ack.dev, ack.epoch)
                acks[key] = max(acks.get(key, 0), ack.upto)
        self._sub.send_acks(acks, now)
        self.metrics.observe_commit(elapsed, len(acks))
        self._sub.puback([taken.message for taken in group])

    def _count(self, result: IngestResult) -> None:
        self.metrics.count_message(
            result.channel,
            result.stored,
            result.duplicates,
            result.quarantined,
            accepted=result.accepted,
            projected=result.projected,
        )


def run_collector(
    config: CollectorConfig, on_ready: Callable[[Collector], None] | None = None
) -> None:
    """Run until SIGTERM/SIGINT (the caller installs handlers that call `stop()`)."""
    collector = Collector(config)
    collector.connect()
    if on_ready is not None:
        on_ready(collector)
    collector.run()
