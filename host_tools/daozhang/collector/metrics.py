"""Prometheus text exposition for the collector (`--metrics-port`), standard library only.

Counters and the commit-latency histogram are this process's own; the fleet gauges (devices
online; backlog: what heartbeats reported unacked, less what has been stored since) are read
from the store at scrape time, so every
collector of a shared subscription reports the same fleet-wide truth. So are the gauges the
alert rules need (`alert_gauges.py`; deploy/prometheus/daozhang.rules.yml), in fixed steps,
never a series per device.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from daozhang.collector.accounting import still_unsent
from daozhang.collector.alert_gauges import Gauge, fleet_alert_gauges, money_gauges
from daozhang.collector.inbox import pending_records
from daozhang.collector.log import log
from daozhang.collector.pki_gauges import pki_gauges
from daozhang.store import Store, open_store

_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


class Metrics:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.messages: dict[str, int] = {}
        self.records = 0
        self.accepted = 0
        self.duplicates = 0
        self.quarantined: dict[str, int] = {}
        self.acks_sent = 0
        self.commits = 0
        self.commit_retries = 0
        self.store_errors: dict[str, int] = {}
        self.store_waiting_s = 0.0
        self.unacked = 0
        self._bucket_counts = [0] * len(_BUCKETS)
        self._latency_sum = 0.0
        self._latency_count = 0

    def count_message(
        self,
        channel: str,
        stored: int,
        duplicates: int,
        reasons: list[str],
        accepted: int = 0,
        projected: bool = False,
    ) -> None:
        """One message handled; `projected`: an inbox row stored, its message counted already."""
        with self._lock:
            if not projected:
                self.messages[channel] = self.messages.get(channel, 0) + 1
            self.accepted += accepted
            self.records += stored
            self.duplicates += duplicates
            for reason in reasons:
                self.quarantined[reason] = self.quarantined.get(reason, 0) + 1

    def store_trouble(self, exc: Exception | None, waited_s: float) -> None:
        """An engine error the collector waits out (None: the database is writable again)."""
        with self._lock:
            self.store_waiting_s = waited_s
            if exc is not None:
                kind = trouble_kind(exc)
                self.store_errors[kind] = self.store_errors.get(kind, 0) + 1

    def add_unacked(self, n: int) -> None:
        with self._lock:
            self.unacked += n

    def observe_commit(self, seconds: float, acks: int) -> None:
        with self._lock:
            self.commits += 1
            self.acks_sent += acks
            self._latency_sum += seconds
            self._latency_count += 1
            for i, bound in enumerate(_BUCKETS):
                if seconds <= bound:
                    self._bucket_counts[i] += 1

    def render(
        self,
        fleet: Callable[[], tuple[int, int, int, int]] | None = None,
        gauges: Callable[[], list[Gauge]] | None = None,
    ) -> str:
        lines: list[str] = []

        def metric(name: str, kind: str, help_text: str, samples: list[tuple[str, float]]) -> None:
            lines.append(f"# HELP {name} {help_text}")
            lines.append(f"# TYPE {name} {kind}")
            lines.extend(f"{name}{labels} {value:g}" for labels, value in samples)

        with self._lock:
            metric(
                "dz_collector_messages_total",
                "counter",
                "MQTT messages handled, by channel (up, hb, status)",
                [(f'{{channel="{c}"}}', n) for c, n in sorted(self.messages.items())],
            )
            metric(
                "dz_collector_records_total",
                "counter",
                "records stored (new)",
                [("", self.records)],
            )
            metric(
                "dz_collector_inbox_accepted_total",
                "counter",
                "records acked from the inbox (the fast ack path), stored when projected",
                [("", self.accepted)],
            )
            metric(
                "dz_collector_duplicates_total",
                "counter",
                "records or refused messages seen again with identical bytes",
                [("", self.duplicates)],
            )
            metric(
                "dz_collector_quarantined_total",
                "counter",
                "messages or records quarantined, by reason",
                [(f'{{reason="{r}"}}', n) for r, n in sorted(self.quarantined.items())],
            )
            metric("dz_collector_acks_total", "counter", "acks published", [("", self.acks_sent)])
            metric(
                "dz_collector_commit_retries_total",
                "counter",
                "group commits retried after a transient database error",
                [("", self.commit_retries)],
            )
            metric(
                "dz_collector_store_errors_total",
                "counter",
                "database errors waited out and retried (nothing is given up), by kind",
                [(f'{{kind="{k}"}}', n) for k, n in sorted(self.store_errors.items())],
            )
            metric(
                "dz_collector_store_waiting_seconds",
                "gauge",
                "how long the collector has been waiting for a writable database (0: it is)",
                [("", self.store_waiting_s)],
            )
            metric(
                "dz_collector_unacked_messages",
                "gauge",
                "QoS 1 messages received and not yet PUBACKed",
                [("", self.unacked)],
            )
            cumulative = [
                (f'{{le="{b:g}"}}', c) for b, c in zip(_BUCKETS, self._bucket_counts, strict=True)
            ]
            metric(
                "dz_collector_commit_seconds",
                "histogram",
                "durable group commit latency",
                [],
            )
            name = "dz_collector_commit_seconds"
            lines.extend(f"{name}_bucket{labels} {count}" for labels, count in cumulative)
            lines.append(f'{name}_bucket{{le="+Inf"}} {self._latency_count}')
            lines.append(f"{name}_sum {self._latency_sum:g}")
            lines.append(f"{name}_count {self._latency_count}")
        if fleet is not None:
            devices, online, backlog, inbox = fleet()
            metric("dz_devices", "gauge", "devices known to the store", [("", devices)])
            metric(
                "dz_devices_online", "gauge", "devices whose last status is online", [("", online)]
            )
            metric(
                "dz_devices_backlog_records",
                "gauge",
                "records each device's latest heartbeat held unacked that are not stored yet",
                [("", backlog)],
            )
            metric(
                "dz_inbox_records",
                "gauge",
                "records acked but not stored yet (the inbox, every collector's)",
                [("", inbox)],
            )
        for gauge in gauges() if gauges is not None else []:
            metric(gauge.name, "gauge", gauge.help, gauge.samples)
        return "\n".join(lines) + "\n"


def trouble_kind(exc: Exception) -> str:
    """A short label for an engine error: what an operator would look at first."""
    text = str(exc).lower()
    for words, kind in (
        (("full", "no space"), "disk_full"),
        (("i/o",), "io"),
        (("locked", "busy", "deadlock", "lock"), "lock"),
        (("connect", "closed", "terminat"), "connection"),
    ):
        if any(w in text for w in words):
            return kind
    return type(exc).__name__


def fleet_gauges(store: Store) -> tuple[int, int, int, int]:
    """Read outside any write transaction: a scrape must never take SQLite's write lock from
    the committer (each figure is its own read; gauges need no common snapshot)."""
    ((devices, online),) = store.query("SELECT COUNT(*), COALESCE(SUM(online), 0) FROM devices")
    # Driven by devices (every heartbeat's device is there): one index probe per device for
    # its latest heartbeat, not a subquery per heartbeat row, which made the scrape quadratic
    # in the heartbeats kept.
    latest = store.query(
        "SELECT h.jrec, h.next_seq, a.upto FROM devices d JOIN heartbeats h"
        " ON h.id = (SELECT MAX(id) FROM heartbeats WHERE dev = d.dev)"
        " LEFT JOIN ack_state a ON a.dev = h.dev AND a.epoch = h.epoch"
    )
    inbox = pending_records(store.query)
    backlog = sum(still_unsent(jrec, next_seq, upto) or 0 for jrec, next_seq, upto in latest)
    return int(devices), int(online), backlog, inbox


class _MetricsServer(ThreadingHTTPServer):
    def handle_error(self, request: Any, client_address: Any) -> None:
        """A scraper that hangs up or stalls is its own business: no traceback for it."""
        exc = sys.exc_info()[1]
        if not isinstance(exc, OSError):
            log(f"/metrics request from {client_address[0]} failed: {exc!r}")


def serve(
    metrics: Metrics,
    port: int,
    db_url: str,
    host: str = "127.0.0.1",
    timeout_s: float = 10.0,
    pki_dir: Path | None = None,
) -> ThreadingHTTPServer:
    """Serve /metrics on host:port in a daemon thread; returns the server to shut down.

    Each connection gets `timeout_s` to send its request and take the answer: a client that
    connects and says nothing does not keep a thread for ever. `pki_dir`: the fleet's PKI
    folder, whose deadlines are served too (pki_gauges.py)."""

    def fleet() -> tuple[int, int, int, int]:
        # One short-lived connection per scrape: the committer's connection is its own.
        with open_store(db_url) as store:
            return fleet_gauges(store)

    def gauges() -> list[Gauge]:
        # The alert rules' gauges (alert_gauges.py), read as the fleet's are.
        with open_store(db_url) as store:
            now = time.time()
            found = fleet_alert_gauges(store, now) + money_gauges(store, now)
        return found + ([] if pki_dir is None else pki_gauges(pki_dir, now))

    class Handler(BaseHTTPRequestHandler):
        timeout = timeout_s

        def do_GET(self) -> None:
            if self.path.split("?")[0] not in ("/metrics", "/"):
                self.send_error(404)
                return
            body = metrics.render(fleet, gauges).encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            return  # scrapes every few seconds would drown the collector's own log

    server = _MetricsServer((host, port), Handler)
    threading.Thread(target=server.serve_forever, name="metrics", daemon=True).start()
    return server
