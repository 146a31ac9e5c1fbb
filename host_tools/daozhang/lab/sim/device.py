"""A scenario's devices as the collector sees them: CBOR batches and heartbeats, in time order.

Each device journals its records (receipt states and diagnostics) with one epoch and strictly
increasing seqs, uploads them in batches when its link is up (after an outage: all at once),
and sends a heartbeat every half hour while connected. A journal loss is declared, never
skipped: the batch that passes it carries `gaps` and a `lost` diag record follows a reboot.
A silent device simply stops: what it captured afterwards is still in its journal.
"""

from __future__ import annotations

import bisect
import zlib
from dataclasses import dataclass
from typing import Any

import cbor2

from daozhang.lab.sim.model import Outage, Scenario, Txn
from daozhang.security.pan import luhn_ok

HEARTBEAT_S = 3600
UPLOAD_SLOT_S = 600  # a healthy device's batches leave within ten minutes
MAX_RECS = 12  # well under the 8 KB batch limit with 512-byte records


@dataclass
class Message:
    at: float  # received_at at the collector
    dev: str
    channel: str  # "up" | "hb"
    payload: bytes


@dataclass
class _Rec:
    t: int
    k: str
    body: dict[str, Any]
    lost: bool = False
    seq: int = 0
    boot: int = 1
    uploaded_at: float | None = None


def _receipt(t: Txn, st: str, when: int) -> dict[str, Any]:
    body: dict[str, Any] = {
        "mid": t.m.mid,
        "tid": t.tid,
        "bat": "000001",
        "trc": t.trc,
        "typ": t.typ,
        "ch": t.ch,
        "amt": t.amt,
        "cur": "CNY",
    }
    if t.pan:
        body.update(pan=t.pan, ck=t.ck, ent="051")
    body.update(lt=t.lt, st=st)
    if t.rrn and st not in ("no_response", "offline_pending", "reversal_pending"):
        body.update(rc=t.extra.get("rc", "00"), rrn=t.rrn)
        if st != "declined":
            body["auth"] = f"{int(t.rrn) % 999983:06d}"
    if "sd" in t.extra and "rrn" in body and st != "declined":
        body["sd"] = t.extra["sd"]
    for key in ("rv", "otrc", "orrn", "sm", "ord", "xid"):
        if key in t.extra and (
            key != "rv" or st in ("reversed", "reversal_pending", "reversal_failed")
        ):
            body[key] = t.extra[key]
    return body


def _down(outages: list[Outage], t: float) -> Outage | None:
    for o in outages:
        if o.start <= t < o.end:
            return o
    return None


def messages(sc: Scenario) -> list[Message]:
    out: list[Message] = []
    for m in sc.merchants:
        out.extend(_device_messages(sc, m.dev, [t for t in sc.txns if t.m is m]))
    out.sort(key=lambda msg: (msg.at, msg.dev, msg.channel))
    return out


def _frames(txns: list[Txn]) -> list[tuple[int, Txn, dict[str, Any]]]:
    out = []
    for t in txns:
        if t.injected == "no_receipt":
            continue  # the POS never handed it to the co-processor
        for st, when in t.states:
            body = _receipt(t, st, when)
            if t.injected == "refused":
                body["pan"] = full_pan(body["pan"])
            out.append((when, t, body))
    out.sort(key=lambda item: item[0])
    return out


def full_pan(masked: str) -> str:
    """A Luhn-valid card number behind `masked` (first 6, last 4 kept): what a device that
    failed to mask would upload, and what the collector masks back to `masked`."""
    head, tail, width = masked[:6], masked[-4:], len(masked) - 10
    for last_digit in range(10):  # one of ten always makes the Luhn sum right
        candidate = f"{head}{'0' * (width - 1)}{last_digit}{tail}"
        if luhn_ok(candidate):
            return candidate
    raise ValueError(f"no Luhn-valid number behind {masked}")


def pos_frames(sc: Scenario, dev: str) -> list[tuple[int, dict[str, Any]]]:
    """What the POS hands the co-processor `dev`, in time order: (unix time, receipt body),
    one per state of a transaction. The fleet simulation feeds these to (virtual) boards over
    the terminal link, and plays `link_schedule` on their control channel."""
    return [(when, body) for when, _, body in _frames([t for t in sc.txns if t.m.dev == dev])]


def link_schedule(sc: Scenario, dev: str) -> list[tuple[int, str, str]]:
    """(unix time, "down"/"up", failing stage) for the device's outages, in time order."""
    out: list[tuple[int, str, str]] = []
    for o in sorted(sc.outages.get(dev, []), key=lambda o: o.start):
        out += [(o.start, "down", o.stage), (o.end, "up", "")]
    silent = sc.silent_from.get(dev)
    if silent is not None:
        out.append((silent, "down", "link"))
    return out


def _device_messages(sc: Scenario, dev: str, txns: list[Txn]) -> list[Message]:
    outages = sorted(sc.outages.get(dev, []), key=lambda o: o.start)
    start = min([t.lt for t in txns] + [o.start for o in outages]) - 3600
    silent = sc.silent_from.get(dev)
    end = min(sc.as_of, silent) if silent else sc.as_of
    lost_keys = set(sc.lost.get(dev, []))
    recs = [_Rec(start, "d", {"ev": "boot", "cause": "power_on"})]
    for when, t, body in _frames(txns):
        recs.append(_Rec(when, "r", body, lost=t.key in lost_keys))
    for o in outages:
        recs.append(_Rec(o.start, "d", {"ev": "link_down", "stage": o.stage, "why": o.why}))
        recs.append(
            _Rec(
                o.start + 1,
                "d",
                {"ev": "signal", "rat": "lte", "rssi": -109, "csq": 3, "rsrp": -121, "reg": 2},
            )
        )
        recs.append(
            _Rec(
                o.end,
                "d",
                {
                    "ev": "link_up",
                    "down_ms": (o.end - o.start) * 1000,
                    "tries": 1 + (o.end - o.start) // 60,
                },
            )
        )
    for hour in range(int(start), int(end), 4 * 3600):
        if _down(outages, hour) is None:
            recs.append(
                _Rec(
                    hour,
                    "d",
                    {"ev": "signal", "rat": "lte", "rssi": -71, "csq": 21, "rsrp": -95, "reg": 1},
                )
            )
    for when, cause in sc.reboots.get(dev, ()):
        recs.append(_Rec(when, "d", {"ev": "boot", "cause": cause}))
    recs.sort(key=lambda r: (r.t, r.k != "d"))
    lost = [r for r in recs if r.lost]
    if lost:
        # The journal found these records corrupt at the next mount (after a brownout).
        after = lost[-1].t + 120
        recs.append(_Rec(after, "d", {"ev": "boot", "cause": "brownout"}))
        recs.append(_Rec(after + 1, "d", {"ev": "lost", "from": 0, "to": 0, "why": "corrupt"}))
        recs.sort(key=lambda r: (r.t, r.k != "d"))
    boot = 1
    for seq, r in enumerate(recs, start=1):
        r.seq = seq
        if r.body.get("ev") == "boot" and r.body.get("cause") != "power_on":
            boot += 1
        r.boot = boot
    lost_seqs = [r.seq for r in recs if r.lost]
    if lost_seqs:
        marker = next(r for r in recs if r.body.get("ev") == "lost")
        marker.body.update({"from": lost_seqs[0], "to": lost_seqs[-1]})
    boot_start = {1: start}
    for r in recs:
        boot_start.setdefault(r.boot, r.t)
    # When each record reaches the collector.
    for r in recs:
        if r.lost or (silent is not None and r.t >= silent - 1200) or r.t >= sc.as_of:
            continue
        down = _down(outages, r.t)
        at = down.end + 20 if down else (r.t // UPLOAD_SLOT_S + 1) * UPLOAD_SLOT_S + 7
        if at <= sc.as_of and (silent is None or at < silent):
            r.uploaded_at = float(at)
    epoch = (zlib.crc32(dev.encode()) & 0x7FFFFFFF) or 1
    out = _batches(dev, epoch, recs, lost_seqs, boot_start)
    out.extend(_heartbeats(dev, epoch, recs, outages, start, end, boot_start))
    return out


def _encode(r: _Rec, boot_start: dict[int, int]) -> dict[str, Any]:
    return {
        "seq": r.seq,
        "k": r.k,
        # After a brownout the clock is unknown until the next sync: the collector places
        # these records from the boot's uptime and the nearest known time.
        "t": 0 if r.boot > 1 and r.t - boot_start[r.boot] < 5 else r.t,
        "boot": r.boot,
        "up": (r.t - boot_start[r.boot]) * 1000,
        "b": r.body,
    }


def _batches(
    dev: str, epoch: int, recs: list[_Rec], lost_seqs: list[int], boot_start: dict[int, int]
) -> list[Message]:
    by_time: dict[float, list[_Rec]] = {}
    for r in recs:
        if r.uploaded_at is not None:
            by_time.setdefault(r.uploaded_at, []).append(r)
    out = []
    gap_sent = not lost_seqs
    for at in sorted(by_time):
        group = by_time[at]
        for i in range(0, len(group), MAX_RECS):
            chunk = group[i : i + MAX_RECS]
            batch: dict[str, Any] = {
                "v": 1,
                "dev": dev,
                "epoch": epoch,
                "boot": chunk[-1].boot,
                "recs": [_encode(r, boot_start) for r in chunk],
            }
            if not gap_sent and chunk[0].seq > lost_seqs[-1]:
                batch["gaps"] = [[lost_seqs[0], lost_seqs[-1]]]
                gap_sent = True
            payload = cbor2.dumps(batch)
            out.append(Message(at + i / 1000, dev, "up", payload))
            if (chunk[0].seq * 7919) % 23 == 0:
                # Delivery is at-least-once: the ack was lost, the same bytes come again.
                out.append(Message(at + 90 + i / 1000, dev, "up", payload))
    return out


def _heartbeats(
    dev: str,
    epoch: int,
    recs: list[_Rec],
    outages: list[Outage],
    start: int,
    end: int,
    boot_start: dict[int, int],
) -> list[Message]:
    captured = [r.t for r in recs]
    kept = [r for r in recs if not r.lost]
    caught = sorted(r.t for r in kept)
    sent = sorted(r.uploaded_at if r.uploaded_at is not None else float("inf") for r in kept)
    out = []
    for at in range(start + 60, end, HEARTBEAT_S):
        if _down(outages, at) is not None:
            continue  # QoS 0 over a dead link: never arrives
        n_held = bisect.bisect_right(caught, at) - bisect.bisect_right(sent, at)
        held = [at - 60] * n_held if n_held > 0 else []  # age: about a minute (approximate)
        boot = max(b for b, s in boot_start.items() if s <= at)
        hb = {
            "v": 1,
            "dev": dev,
            "t": at,
            "epoch": epoch,
            "fw": "sim-1",
            "boot": boot,
            "up": (at - boot_start[boot]) * 1000,
            "cause": "power_on",
            "heap": 30000,
            "jrec": len(held),
            "jbytes": 200 * len(held),
            "jold_s": int(at - held[0]) if held else 0,
            "next_seq": bisect.bisect_right(captured, at) + 1,
            "ovf": 0,
            "link": "up",
            "sig": {"rat": "lte", "rssi": -71, "csq": 21},
            "recon": 0,
            "sync_ok": 1,
            "sync_fail": 0,
            "conn_ms": HEARTBEAT_S * 1000,
            "exp_ms": HEARTBEAT_S * 1000,
        }
        out.append(Message(float(at + 2), dev, "hb", cbor2.dumps(hb)))
    return out
