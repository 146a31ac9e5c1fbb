# The uploader against a RAM journal (interface B) and a recording MQTT client.
# The RAM journal holds every record on the heap (and fragments it), hence the larger heap
# for these tests; the agent's own heap use is measured in the simulated-day test.
import asyncio
import binascii

from dzcore import cbor
from dzcore.uplink.batch import BatchWriter
from dzcore.uplink.hmac256 import HMAC256
from dzcore.uplink.uploader import AckTimeout, Uploader
from fake_journal import Journal
from fake_mqtt import FakeMQTT
from fake_ticks import FakeTicks
from mptest import check, equal, heap

TOPIC = "dz/v1/dev-0001/up"


def _setup(n, body_len=60, key=None, window=3, **kw):
    # The batch buffer first, as the agent does at boot: later the heap is too fragmented
    # for one 8 KB block.
    ticks = FakeTicks()
    writer = BatchWriter("dev-0001", key)
    journal = Journal()
    journal.mount()
    up = Uploader(journal, writer, ticks.ticks_ms, ticks.ticks_diff, window=window, **kw)
    for i in range(n):
        journal.append("r", {"trc": "%06d" % i, "x": "a" * body_len}, t=1700000000 + i, up=i)
    return journal, up, ticks


def _ack(journal, upto, epoch=None, now=1700000500):
    e = journal.epoch if epoch is None else epoch
    return cbor.encode({"v": 1, "epoch": e, "upto": upto, "now": now})


def _seqs(payload):
    batch = cbor.decode(payload)
    return [cbor.decode(cbor.encode(r))["seq"] for r in batch["recs"]], batch


async def _settle():
    for _ in range(5):
        await asyncio.sleep_ms(0)


def _run(coro):
    asyncio.run(coro)


@heap("2M")
def test_window_of_batches_within_caps_and_exact_record_bytes():
    async def main():
        journal, up, _ = _setup(300)
        client = FakeMQTT()
        task = asyncio.create_task(up.pump(client, TOPIC))
        await _settle()
        equal(len(client.sent), 3, "batches in flight")
        expect = 1
        for topic, payload, qos in client.sent:
            equal((topic, qos), (TOPIC, 1), "topic and qos")
            check(len(payload) <= 8192, "batch of %d bytes" % len(payload))
            seqs, batch = _seqs(payload)
            equal(seqs[0], expect, "first seq")
            equal(seqs, list(range(expect, expect + len(seqs))), "contiguous")
            equal(
                (batch["v"], batch["dev"], batch["epoch"], batch["boot"]),
                (1, "dev-0001", journal.epoch, journal.boot),
                "batch header",
            )
            check("gaps" not in batch, "no gaps")
            # The records are the journal's own bytes, copied, not re-encoded.
            items, _, _ = journal.peek(seqs[0], len(seqs), 1 << 20)
            blob = b"".join(rec for _, rec in items)
            check(blob in payload, "record bytes copied verbatim")
            expect = seqs[-1] + 1
        task.cancel()

    _run(main())


@heap("2M")
def test_record_cap_and_ack_advances_only_on_own_epoch():
    async def main():
        journal, up, _ = _setup(50, body_len=10, window=2, max_records=8)
        client = FakeMQTT()
        task = asyncio.create_task(up.pump(client, TOPIC))
        await _settle()
        equal(
            [_seqs(p)[0] for _, p, _ in client.sent],
            [list(range(1, 9)), list(range(9, 17))],
            "record cap 8",
        )
        up.on_ack(_ack(journal, 16, epoch=journal.epoch + 1))
        equal(journal.acked, 0, "foreign epoch ignored")
        up.on_ack(b"\xff\x00garbage")
        equal(journal.acked, 0, "garbage ignored")
        now = up.on_ack(_ack(journal, 8))
        equal((journal.acked, now), (8, 1700000500), "ack moves the cursor, returns now")
        await _settle()
        equal(len(client.sent), 3, "the window refills after the ack")
        up.on_ack(_ack(journal, 5))
        equal(journal.ack_calls, [8], "a lower upto is ignored")
        up.on_ack(_ack(journal, 24))
        await _settle()
        equal(up.sync_ok, 3, "batches acked")
        task.cancel()

    _run(main())


@heap("2M")
def test_ack_timeout_rewinds_from_the_journal_then_gives_up():
    async def main():
        journal, up, ticks = _setup(40, body_len=10, window=2, max_records=10, ack_timeout_ms=5000)
        client = FakeMQTT()
        task = asyncio.create_task(up.pump(client, TOPIC))
        await _settle()
        up.on_ack(_ack(journal, 10))
        await _settle()
        equal(len(client.sent), 3, "sent")
        ticks.advance(5001)
        up.kick()
        await _settle()
        firsts = [_seqs(p)[0][0] for _, p, _ in client.sent]
        equal(firsts, [1, 11, 21, 11, 21], "resent from acked + 1")
        equal(up.sync_fail, 1, "one ack timeout")
        ticks.advance(5001)
        up.kick()
        await _settle()
        ticks.advance(5001)
        up.kick()
        await _settle()
        check(task.done(), "pump ended after 3 timeouts without progress")
        try:
            await task
        except AckTimeout:
            return
        check(False, "expected AckTimeout")

    _run(main())


@heap("2M")
def test_lost_range_is_declared_in_gaps_and_the_ack_passes_it():
    async def main():
        journal, up, _ = _setup(100, body_len=10, window=10, max_records=25)
        journal.declare_lost(30, 60)
        client = FakeMQTT()
        task = asyncio.create_task(up.pump(client, TOPIC))
        await _settle()
        seen, gaps = [], []
        for _, payload, _ in client.sent:
            seqs, batch = _seqs(payload)
            seen += seqs
            gaps += batch.get("gaps", [])
        equal(seen, list(range(1, 30)) + list(range(61, 101)), "everything readable sent once")
        equal(gaps, [[30, 60]], "lost range declared once")
        up.on_ack(_ack(journal, 100))
        equal(journal.acked, 100, "drained past the range")
        equal(up.pending(), False, "nothing pending")
        task.cancel()

    _run(main())


@heap("2M")
def test_hmac_appended_to_the_exact_batch_bytes():
    mac = HMAC256(b"Jefe").digest(b"what do ya want for nothing?")
    equal(
        binascii.hexlify(mac),
        b"5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843",
        "RFC 4231 case 2",
    )
    long_key = HMAC256(b"\xaa" * 131).digest(
        b"Test Using Larger Than Block-Size Key - Hash Key First"
    )
    equal(
        binascii.hexlify(long_key),
        b"60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54",
        "RFC 4231 case 6",
    )

    async def main():
        key = bytes(range(32))
        journal, up, _ = _setup(200, key=key, window=1)
        client = FakeMQTT()
        task = asyncio.create_task(up.pump(client, TOPIC))
        await _settle()
        payload = client.sent[0][1]
        check(len(payload) <= 8192, "batch + MAC within 8 KB")
        body, tag = payload[:-32], payload[-32:]
        equal(tag, HMAC256(key).digest(body), "MAC over exactly the batch bytes")
        check(len(_seqs(body)[0]) > 40, "a full batch")
        task.cancel()

    _run(main())


@heap("2M")
def test_byte_cap_with_max_size_records():
    async def main():
        journal, up, _ = _setup(100, body_len=400, key=b"k" * 32, window=5, max_records=64)
        client = FakeMQTT()
        task = asyncio.create_task(up.pump(client, TOPIC))
        await _settle()
        for _, payload, _ in client.sent:
            check(7000 < len(payload) <= 8192, "batch of %d bytes" % len(payload))
        task.cancel()

    _run(main())
