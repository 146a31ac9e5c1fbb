# The uploader: journal -> batches -> dz/v1/{dev}/up, advanced only by the collector's ack.
#
# It reads the journal from `acked + 1` (peek, never consume), keeps up to `window` batches in
# flight and moves the journal's cursor only when an ack for its own epoch arrives (the highest
# `upto` wins; PUBACK proves nothing). Retransmit state is journal positions — (first seq,
# resume seq, time sent) per batch — never copies of packets: after an ack timeout or a
# reconnect it rewinds to `acked + 1` and reads the journal again. (Departure from MQTT
# 3.1.1 §4.4: unacked PUBLISHes are not re-sent with DUP on a resumed session; the records go
# again in new batches. See docs/design.md §1.4 "As built".)
import asyncio
import gc

from dzcore import cbor
from micropython import const

_POLL_MS = const(500)
_TIMEOUTS_BEFORE_DROP = const(3)


class AckTimeout(Exception):
    pass


class Uploader:
    def __init__(
        self, journal, writer, ticks_ms, ticks_diff, window=4, max_records=64, ack_timeout_ms=30000
    ):
        self.journal = journal
        self.writer = writer
        self._ticks = ticks_ms
        self._diff = ticks_diff
        self.window = window
        self.max_records = max_records
        self.ack_timeout_ms = ack_timeout_ms
        self.inflight = []  # [first_seq, resume_seq, sent_ticks] per batch, oldest first
        self.next_from = journal.acked + 1
        self.upto = journal.acked
        self._timeouts = 0
        self._event = asyncio.Event()
        self.sync_ok = 0  # batches acked
        self.sync_fail = 0  # ack timeouts
        self.batches = 0  # batches sent (resends included)

    def rewind(self):
        # After a reconnect or an ack timeout: everything unacked goes again, from the journal.
        self.next_from = self.journal.acked + 1
        self.inflight = []
        self._event.set()

    def kick(self):
        # New records, a `flush` command or an ack: look again now rather than at the next poll.
        self._event.set()

    def pending(self):
        return self.journal.acked + 1 < self.journal.next_seq

    def on_ack(self, payload):
        # -> the collector's `now` (unix s) or None. Bad or foreign acks are ignored: only
        # the collector's durable ack for this journal's epoch may delete anything.
        try:
            ack = cbor.decode(payload)
        except ValueError:
            return None
        if not isinstance(ack, dict) or ack.get("v") != 1:
            return None
        upto = ack.get("upto")
        now = ack.get("now")
        if ack.get("epoch") == self.journal.epoch and isinstance(upto, int):
            if upto > self.upto:
                self.upto = upto
                self.journal.ack(upto)
                self._timeouts = 0
                while self.inflight and self.inflight[0][1] - 1 <= upto:
                    self.inflight.pop(0)
                    self.sync_ok += 1
                if self.next_from <= upto:
                    self.next_from = upto + 1
                self._event.set()
        return now if isinstance(now, int) else None

    def _check_timeout(self):
        if not self.inflight:
            return
        if self._diff(self._ticks(), self.inflight[0][2]) < self.ack_timeout_ms:
            return
        self.sync_fail += 1
        self._timeouts += 1
        self.rewind()
        if self._timeouts >= _TIMEOUTS_BEFORE_DROP:
            self._timeouts = 0
            raise AckTimeout(
                "no ack for %d ms, %d times" % (self.ack_timeout_ms, _TIMEOUTS_BEFORE_DROP)
            )

    def _fill(self):
        # Pack the next batch into the writer. -> (first, resume) or None if nothing to send.
        journal = self.journal
        start = max(self.next_from, journal.acked + 1)
        if start >= journal.next_seq:
            return None
        room = self.writer.record_room(journal.epoch, journal.boot)
        items, gaps, resume = journal.peek(start, self.max_records, room)
        if not items and not gaps:
            return None
        cut = self.writer.build(journal.epoch, journal.boot, items, gaps)
        if cut is not None:
            resume = cut
        return start, resume

    async def pump(self, client, topic):
        # Runs for one connection; ends by raising (AckTimeout, or the client's errors).
        self.rewind()
        while True:
            self._check_timeout()
            if len(self.inflight) < self.window:
                batch = self._fill()
                if batch is not None:
                    await client.publish_into(
                        topic, self.writer.buf, self.writer.start, self.writer.end, 1
                    )
                    self.inflight.append([batch[0], batch[1], self._ticks()])
                    self.next_from = batch[1]
                    self.batches += 1
                    # A batch leaves ~8 KB of small garbage (the peeked records); collected
                    # now, it cannot crowd out intake's allocations on a 64 KB heap.
                    gc.collect()
                    continue
            self._event.clear()
            try:
                await asyncio.wait_for_ms(self._event.wait(), _POLL_MS)
            except asyncio.TimeoutError:
                pass
