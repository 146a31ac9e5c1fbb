"""Delivery: take the queued messages (state.py) to their webhooks, in order, with retries.

Each request has a timeout; a failure (no answer, an HTTP error, or the bot's own error
code: WeCom and DingTalk `errcode`, Feishu `code`) puts the message back with an exponential
backoff (5 s, 10 s, ... capped at 10 minutes), and after the rules file's `attempts` it is
given up and logged. A webhook that fails is left alone for the rest of the round, so the
messages behind it keep their order and evaluation is never held up for longer than one
timeout per webhook.
"""

from __future__ import annotations

import json
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from daozhang.alerts.message import DIGEST_MAX, digest, dingtalk_url, feishu_sign
from daozhang.alerts.rules import Webhook
from daozhang.store import Store

BACKOFF_BASE_S = 5.0
BACKOFF_CAP_S = 600.0
BATCH = 50
CLAIM_SLACK_S = 5.0  # a claim outlives the request's timeout by this much


class DeliveryError(Exception):
    """The webhook did not take the message."""


@dataclass
class Round:
    sent: int = 0
    failed: int = 0
    given_up: int = 0


def backoff_s(attempts: int) -> float:
    return float(min(BACKOFF_CAP_S, BACKOFF_BASE_S * 2.0 ** max(0, attempts - 1)))


def post(hook: Webhook, items: list[tuple[str, dict[str, Any]]], timeout_s: float) -> None:
    """Send one message (of one or several transitions); raise DeliveryError unless the
    webhook says it took it."""
    payload = digest(hook.kind, items)
    url = hook.url
    if hook.kind == "dingtalk":
        url = dingtalk_url(url, hook.secret, int(time.time() * 1000))
    elif hook.kind == "feishu" and hook.secret:
        now_s = int(time.time())
        payload = {"timestamp": str(now_s), "sign": feishu_sign(hook.secret, now_s), **payload}
    data = json.dumps(payload, ensure_ascii=False).encode()
    request = urllib.request.Request(
        url, data=data, headers={"Content-Type": "application/json; charset=utf-8"}
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:
            answer = response.read(65536)
    except urllib.error.HTTPError as exc:
        raise DeliveryError(f"HTTP {exc.code}") from None
    except (urllib.error.URLError, OSError, ValueError) as exc:
        raise DeliveryError(str(getattr(exc, "reason", exc))) from None
    if hook.kind == "json":
        return
    try:
        reply = json.loads(answer or b"{}")
    except ValueError:
        raise DeliveryError(f"not a JSON answer: {answer[:80]!r}") from None
    code = reply.get("errcode", reply.get("code", 0)) if isinstance(reply, dict) else 0
    if code not in (0, None):
        text = reply.get("errmsg") or reply.get("msg") or ""
        raise DeliveryError(f"{hook.kind} refused it: {code} {text}".strip())


Poster = Callable[[Webhook, list[tuple[str, dict[str, Any]]], float], None]


def deliver(
    store: Store,
    webhooks: dict[str, Webhook],
    now: float,
    timeout_s: float,
    attempts: int,
    poster: Poster = post,
    log: Callable[[str], object] = lambda line: sys.stderr.write(line + "\n"),
) -> Round:
    """Send what is due now; returns what happened this round."""
    done = Round()
    rows = store.query(
        "SELECT id, akey, event, webhook, message_json, attempts, next_at, claimed_until"
        " FROM alert_outbox WHERE sent_at IS NULL AND gave_up_at IS NULL ORDER BY id LIMIT ?",
        (BATCH,),
    )
    # Per webhook, the messages due now, in order, up to the first one still waiting for its
    # retry: that one holds those behind it.
    due: dict[str, list[tuple[int, str, str, dict[str, Any], int]]] = {}
    blocked: set[str] = set()
    for row_id, key, event, hook_label, message_json, tried_before, next_at, claimed in rows:
        label = str(hook_label)
        # Waiting for its retry, or being sent by another runner: it holds those behind it.
        if label in blocked or float(next_at) > now or (claimed is not None and claimed > now):
            blocked.add(label)
            continue
        item = (int(row_id), str(key), str(event), json.loads(message_json), int(tried_before))
        due.setdefault(label, []).append(item)
    for label, items in due.items():
        hook = webhooks.get(label)
        size = 1 if hook is None or hook.kind == "json" else DIGEST_MAX
        for start in range(0, len(items), size):
            group = items[start : start + size]
            if not _send(store, hook, label, group, now, timeout_s, attempts, poster, log, done):
                break  # the rest wait behind the one that failed
    return done


def _send(
    store: Store,
    hook: Webhook | None,
    label: str,
    group: list[tuple[int, str, str, dict[str, Any], int]],
    now: float,
    timeout_s: float,
    attempts: int,
    poster: Poster,
    log: Callable[[str], object],
    done: Round,
) -> bool:
    """One message of `group`; its rows marked sent, to be retried, or given up."""
    tried = max(t for *_, t in group) + 1
    ids = [row_id for row_id, *_ in group]
    what = ", ".join(f"{event} {key}" for _, key, event, _, _ in group)
    if not _claim(store, ids, now, now + timeout_s + CLAIM_SLACK_S):
        return False  # another runner took them first: it sends them
    try:
        if hook is None:
            raise DeliveryError(f"no webhook named {label!r} in the rules file any more")
        poster(hook, [(event, message) for _, _, event, message, _ in group], timeout_s)
    except DeliveryError as exc:
        give_up = tried >= attempts or hook is None
        if give_up:
            done.given_up += len(group)
            log(f"daozhang: alerts: gave up sending {what} to {label}: {exc}")
        else:
            done.failed += len(group)
            log(f"daozhang: alerts: {label}: {what} not sent ({exc}); retrying")
        with store.transaction() as tx:
            for row_id in ids:
                if give_up:
                    tx.execute(
                        "UPDATE alert_outbox SET attempts = ?, gave_up_at = ?, last_error = ?,"
                        " claimed_until = NULL"
                        " WHERE id = ?",
                        (tried, now, str(exc), row_id),
                    )
                else:
                    tx.execute(
                        "UPDATE alert_outbox SET attempts = ?, next_at = ?, last_error = ?,"
                        " claimed_until = NULL"
                        " WHERE id = ?",
                        (tried, now + backoff_s(tried), str(exc), row_id),
                    )
        return give_up  # given up: the next ones may go; to be retried: they wait
    done.sent += len(group)
    with store.transaction() as tx:
        for row_id in ids:
            tx.execute(
                "UPDATE alert_outbox SET attempts = ?, sent_at = ? WHERE id = ?",
                (tried, now, row_id),
            )
    return True


class _Taken(Exception):
    pass


def _claim(store: Store, ids: list[int], now: float, until: float) -> bool:
    """Mark the rows as being sent until `until`, all or none; False if another runner has
    any of them (its claim not run out) or sent them already."""
    try:
        with store.transaction() as tx:
            for row_id in ids:
                tx.execute(
                    "UPDATE alert_outbox SET claimed_until = ? WHERE id = ? AND sent_at IS NULL"
                    " AND gave_up_at IS NULL AND (claimed_until IS NULL OR claimed_until <= ?)",
                    (until, row_id, now),
                )
                if tx.rowcount() != 1:
                    raise _Taken
    except _Taken:
        return False
    return True


def next_due(store: Store) -> float | None:
    """When the next message may be tried: its retry time, or when another runner's claim
    on it runs out; None when nothing waits."""
    ((due,),) = store.query(
        "SELECT MIN(CASE WHEN claimed_until > next_at THEN claimed_until ELSE next_at END)"
        " FROM alert_outbox WHERE sent_at IS NULL AND gave_up_at IS NULL"
    )
    return None if due is None else float(due)
