"""Collector ingest rate vs a subscriber that only decodes, on the same messages, same run.

For 1, 10 and 50 records per message: batches from 20 devices are published (QoS 1) into
two persistent sessions on a real Mosquitto while no subscriber is connected; then each
subscriber drains its copy and is timed from connect to its last message:
- baseline: a paho MQTT v5 subscriber that decodes each payload with cbor2 and does nothing
  else (auto PUBACK);
- daozhang: `daozhang collect` processes, 1 and then 2 of them on one shared subscription
  (validation, exactly-once storage, durable group commit with SQLite WAL +
  synchronous=FULL or PostgreSQL, acks published, PUBACK after commit), timed from the first
  CONNACK until every record is acked (the sum of `ack_state.upto`: each ack is sent after the
  commit that made its records durable, in `records` or whole in the inbox) and until every
  record is stored in `records` (the inbox projected).
The figures are records/s and their ratio to the baseline. The 100,000 records of a run fit the
default `--max-inbox` (200,000): the acked figure is the burst rate, the stored one what the
collectors sustain; `--max-inbox 0` gives the path without the inbox.

    .venv/bin/python bench/collector_ingest.py [--db sqlite|postgresql|both] [--records N]
        [--collectors 1 2] [--per-message 1 10 50] [--max-inbox N]
"""

from __future__ import annotations

import argparse
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

import cbor2
import paho.mqtt.client as mqtt
from daozhang.broker.mosquitto import Mosquitto
from daozhang.collector.ingest import _RECEIPT_KEY_LIST as RECEIPT_FIELDS
from daozhang.lab.devicewire import batch_bytes, receipt_body, record_bytes
from daozhang.lab.postgres import TempPostgres
from daozhang.schema import open_database
from daozhang.store import Store
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.subscribeoptions import SubscribeOptions

DEVICES = 20


def _qr_sale(n: int, d: int) -> dict[str, object]:
    """A QR sale: no card fields, so that 50 records fit the contract's 8 KB batch."""
    body = receipt_body(n, mid=f"8983100481{d:05d}", ch="qr")
    for key in ("pan", "ck", "ent", "auth", "cur"):
        del body[key]
    return body


def messages(per_message: int, total_records: int) -> list[tuple[str, bytes]]:
    per_device = total_records // DEVICES
    out: list[tuple[str, bytes]] = []
    for d in range(DEVICES):
        dev = f"BENCH{d:03d}"
        recs = [
            record_bytes(s, "r", _qr_sale(s, d), t=1_780_000_000 + s)
            for s in range(1, per_device + 1)
        ]
        for i in range(0, per_device, per_message):
            payload = batch_bytes(dev, 1000 + d, recs[i : i + per_message])
            if len(payload) > 8192:
                raise SystemExit(f"a batch of {per_message} records is {len(payload)} bytes > 8 KB")
            out.append((dev, payload))
    # Interleave devices as a fleet would.
    out.sort(key=lambda m: (cbor2.loads(m[1])["recs"][0]["seq"], m[0]))
    return out


def _session(broker: Mosquitto, client_id: str, group: str) -> None:
    """Create a persistent shared-subscription session, then leave it offline."""
    done = threading.Event()
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
    client.on_subscribe = lambda *a: done.set()
    client.on_connect = lambda c, *a: c.subscribe(
        f"$share/{group}/dz/v1/+/up", options=SubscribeOptions(qos=1)
    )
    props = Properties(PacketTypes.CONNECT)
    props.SessionExpiryInterval = 3600
    client.connect("127.0.0.1", broker.port, clean_start=True, properties=props)
    client.loop_start()
    done.wait(10)
    client.disconnect()
    client.loop_stop()


def publish_all(broker: Mosquitto, msgs: list[tuple[str, bytes]]) -> None:
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="bench-pub", protocol=mqtt.MQTTv311)
    client.max_inflight_messages_set(1000)
    client.max_queued_messages_set(0)
    client.connect("127.0.0.1", broker.port)
    client.loop_start()
    infos = [client.publish(f"dz/v1/{dev}/up", payload, qos=1) for dev, payload in msgs]
    for info in infos:
        info.wait_for_publish(60)
    client.disconnect()
    client.loop_stop()


def drain(
    broker: Mosquitto, client_id: str, expected: int, take: Callable[[bytes], object]
) -> float:
    """Seconds for a paho v5 subscriber to pass `expected` messages of its persistent session
    to `take` (on paho's thread, PUBACK on receipt), timed from before its CONNECT."""
    count = [0]
    done = threading.Event()
    failed: list[BaseException] = []

    def on_message(client: mqtt.Client, userdata: object, msg: mqtt.MQTTMessage) -> None:
        try:
            take(msg.payload)
        except BaseException as exc:  # paho's thread would die silently: report it instead
            failed.append(exc)
            done.set()
            return
        count[0] += 1
        if count[0] >= expected:
            done.set()

    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
    client.on_message = on_message
    props = Properties(PacketTypes.CONNECT)
    props.SessionExpiryInterval = 3600
    props.ReceiveMaximum = 1000
    start = time.perf_counter()
    client.connect("127.0.0.1", broker.port, clean_start=False, properties=props)
    client.loop_start()
    try:
        if not done.wait(600) or failed:
            cause = failed[0] if failed else None
            raise RuntimeError(f"{client_id} got {count[0]} of {expected}") from cause
        return time.perf_counter() - start
    finally:
        client.disconnect()
        client.loop_stop()


def baseline(broker: Mosquitto, expected: int) -> float:
    """Seconds for a decode-only subscriber to drain `expected` messages."""
    return drain(broker, "bench-base", expected, cbor2.loads)


# The receipt fields the collector stores, but the two it defaults (added after them).
_FLOOR_RECEIPT_KEYS = [k for k in RECEIPT_FIELDS if k not in ("ch", "cur")]
_FLOOR_RECEIPTS = (
    f"INSERT INTO receipts ({', '.join(_FLOOR_RECEIPT_KEYS)}, ch, cur, dev, epoch, seq, t,"
    f" received_at) VALUES ({', '.join('?' * (len(_FLOOR_RECEIPT_KEYS) + 7))})"
)
_FLOOR_RECORDS = (
    "INSERT INTO records (dev, epoch, seq, kind, t, boot, up, raw, received_at)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
)


def store_floor(broker: Mosquitto, db_url: str, expected: int) -> float:
    """Seconds for the least a storing subscriber does to drain `expected` messages.

    It decodes each payload with cbor2 and writes the rows the collector writes for a new
    receipt (`records`, with each record's bytes re-encoded, and `receipts`, a plain INSERT)
    in one durable commit per 5,000 records or 100 ms, as the collector's defaults in this
    bench. It checks nothing (no MAC, no schema, no resend or order handling, no acks, PUBACK
    on receipt): no collector can store faster on this store, so its ratio to the decode-only
    subscriber bounds the stored ratio any collector can reach here.
    """
    taken = [0]
    records: list[tuple[object, ...]] = []
    receipts: list[tuple[object, ...]] = []
    last_commit = [time.perf_counter()]
    stores: list[Store] = []  # opened by paho's thread, which alone writes (SQLite's rule)

    def commit() -> None:
        if not stores:
            stores.append(open_database(db_url, migrate=False))
        with stores[0].transaction() as tx:
            tx.executemany(_FLOOR_RECORDS, records)
            tx.executemany(_FLOOR_RECEIPTS, receipts)
        records.clear()
        receipts.clear()
        last_commit[0] = time.perf_counter()

    def take(payload: bytes) -> None:
        batch = cbor2.loads(payload)
        dev, epoch, now = batch["dev"], batch["epoch"], time.time()
        for r in batch["recs"]:
            seq, t, body = r["seq"], r["t"], r["b"]
            records.append((dev, epoch, seq, r["k"], t, r["boot"], r["up"], cbor2.dumps(r), now))
            receipts.append(
                (
                    *map(body.get, _FLOOR_RECEIPT_KEYS),
                    body.get("ch") or "card",  # DESIGN §1.2's defaults, as the collector
                    body.get("cur") or "CNY",
                    *(dev, epoch, seq, t, now),
                )
            )
        taken[0] += 1
        last = taken[0] >= expected
        if last or len(records) >= 5000 or time.perf_counter() - last_commit[0] > 0.1:
            commit()
        if last:
            stores[0].close()

    return drain(broker, "bench-floor", expected, take)


def collectors(
    broker: Mosquitto, db_url: str, expected_records: int, n: int, max_inbox: int | None
) -> tuple[float, float]:
    """Seconds for `n` `daozhang collect` processes (one shared group) to ack every record
    (durably: stored or kept whole in the inbox), and to store every record in `records`.

    Timed from the first collector's CONNACK (its queued messages start flowing then) to the
    moment the store says so, polled with a separate read connection: acked is the sum of
    `ack_state.upto` (what the acks sent say), stored the rows of `records`.
    """
    procs = [
        subprocess.Popen(
            [
                str(Path(sys.executable).with_name("daozhang")),
                "collect",
                "--broker",
                broker.url,
                "--db",
                db_url,
                "--group",
                "bench-col",
                "--name",
                f"bench-col-{i}",
                "--commit-records",
                "5000",
                "--commit-ms",
                "100",
                *(["--max-inbox", str(max_inbox)] if max_inbox is not None else []),
            ],
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(n)
    ]
    connected: list[float] = []

    def watch(proc: subprocess.Popen[str]) -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            if "connected as" in line:
                connected.append(time.perf_counter())

    watchers = [threading.Thread(target=watch, args=(p,), daemon=True) for p in procs]
    for w in watchers:
        w.start()
    try:
        deadline = time.monotonic() + 600
        acked_at = None
        with open_database(db_url, migrate=False) as store:
            while time.monotonic() < deadline:
                with store.transaction() as tx:
                    stored, quarantined, acked = tx.execute(
                        "SELECT (SELECT COUNT(*) FROM records), (SELECT COUNT(*) FROM quarantine),"
                        " (SELECT COALESCE(SUM(upto), 0) FROM ack_state)"
                    )[0]
                if quarantined:
                    raise RuntimeError(f"collectors quarantined {quarantined} messages")
                if acked_at is None and acked >= expected_records:
                    acked_at = time.perf_counter()
                if stored >= expected_records:
                    break
                time.sleep(0.01)
        end = time.perf_counter()
        if stored != expected_records or acked_at is None:
            raise RuntimeError(f"collectors stored {stored} of {expected_records}")
        if not connected:
            raise RuntimeError("no collector reported its connection")
        return acked_at - min(connected), end - min(connected)
    finally:
        for proc in procs:
            proc.send_signal(signal.SIGTERM)
        for proc in procs:
            proc.wait(30)


def run_one(
    per_message: int,
    total: int,
    db: str,
    n_collectors: int,
    work: Path,
    pg: TempPostgres | None,
    max_inbox: int | None,
) -> str:
    name = f"{db}-{per_message}-{n_collectors}"
    broker = Mosquitto(
        workdir=work / f"mq-{name}",
        persistence=False,
        extra_config=["max_inflight_messages 1000", "max_queued_messages 1000000"],
    ).start()
    try:
        if db == "sqlite":
            db_url = f"sqlite:///{work}/bench-{name}.db"
            floor_url = f"sqlite:///{work}/bench-{name}-floor.db"
        else:
            assert pg is not None
            db_url = pg.create_database(f"bench_{name.replace('-', '_')}")
            floor_url = pg.create_database(f"bench_{name.replace('-', '_')}_floor")
        for url in (db_url, floor_url):
            open_database(url).close()  # migrated before the clock starts, as in production
        msgs = messages(per_message, total)
        records = sum(len(cbor2.loads(p)["recs"]) for _, p in msgs)
        _session(broker, "bench-base", "bench-base")
        _session(broker, "bench-floor", "bench-floor")
        for i in range(n_collectors):
            _session(broker, f"bench-col-{i}", "bench-col")
        publish_all(broker, msgs)
        base_s = baseline(broker, len(msgs))
        floor_s = store_floor(broker, floor_url, len(msgs))
        acked_s, stored_s = collectors(broker, db_url, records, n_collectors, max_inbox)
    finally:
        broker.stop()
    base_rate, acked_rate, stored_rate = records / base_s, records / acked_s, records / stored_s
    floor_rate = records / floor_s
    return (
        f"| {db} | {n_collectors} | {per_message} | {records} | {base_rate:,.0f} |"
        f" {floor_rate:,.0f} ({floor_rate / base_rate:.2f}x) |"
        f" {acked_rate:,.0f} ({acked_rate / base_rate:.2f}x) |"
        f" {stored_rate:,.0f} ({stored_rate / base_rate:.2f}x) |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--records", type=int, default=100_000, help="records per run")
    parser.add_argument(
        "--collectors",
        type=int,
        nargs="+",
        default=[1, 2],
        help="collector processes sharing the subscription (one row each)",
    )
    parser.add_argument(
        "--per-message",
        type=int,
        nargs="+",
        default=[1, 10, 50],
        help="records per message (one row each)",
    )
    parser.add_argument(
        "--max-inbox",
        type=int,
        help="passed to the collectors (0: no inbox, every record stored before its ack)",
    )
    args = parser.parse_args()
    # On the real disk (not tmpfs), so that fsync costs what it costs.
    work = Path(tempfile.mkdtemp(prefix="dz-bench-", dir="/var/tmp"))
    pg = None
    try:
        engines = ["sqlite", "postgresql"] if args.db == "both" else [args.db]
        if "postgresql" in engines:
            pg = TempPostgres(workdir=Path(tempfile.mkdtemp(prefix="dz-bench-pg-"))).start()
        print(
            "| engine | collectors | records/msg | records | decode-only rec/s"
            " | store floor rec/s (ratio) | acked rec/s (ratio) | stored rec/s (ratio) |"
        )
        print("|---|---|---|---|---|---|---|---|")
        for db in engines:
            for n in args.collectors:
                for per_message in args.per_message:
                    total = args.records // 5 if per_message == 1 else args.records
                    row = run_one(per_message, total, db, n, work, pg, args.max_inbox)
                    print(row, flush=True)
    finally:
        if pg is not None:
            pg.stop()
            shutil.rmtree(pg.workdir, ignore_errors=True)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
