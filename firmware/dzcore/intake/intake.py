# Intake: receipts from the POS main board into the journal (DESIGN §1.1-1.2).
# Each good receipt frame is journaled (synced) and then answered ACK {id, seq}; anything else
# is answered NAK {id, why} and changes nothing. A frame the POS repeats because it never saw
# the ACK (same natural key and state) is answered with the seq it was stored under.
# Portable: given the journal, a clock (now(), up_ms()) and, per connection, a stream.
from dzcore import cbor
from dzcore.intake import termlink
from dzcore.intake.receipt_check import Refused, check
from dzcore.journal.journal import JournalFull, RecordTooLarge
from micropython import const

_RECENT = const(32)  # receipts remembered for repeats (the POS resends only its last few)
_RELOAD_SEQS = const(256)  # how far back the journal is read at start for that memory


def _key(body):
    return "%s|%s|%s|%s|%s" % (body["mid"], body["tid"], body["bat"], body["trc"], body["st"])


class Intake:
    def __init__(self, journal, clock):
        self.journal = journal
        self.clock = clock
        self._recent = {}  # key -> seq
        self._order = []  # keys, oldest first
        self.stored = 0
        self.repeats = 0
        self.refused = 0  # NAKed: bad frames, sensitive data, bad fields, full journal
        self.pan_violations = 0

    def load(self):
        # Remembers the receipts still in the journal's newest records, so that a POS
        # resending after a reboot (the ACK was lost with the power) is not stored twice.
        journal = self.journal
        cursor = max(1, journal.next_seq - _RELOAD_SEQS)
        while True:
            items, _, nxt = journal.peek(cursor, 8, 4096)
            if not items:
                return
            for seq, raw in items:
                try:
                    record = cbor.decode(raw)
                except cbor.CBORError:
                    continue  # the journal checked its CRC; a record we cannot read is no key
                if record.get("k") == "r":
                    try:
                        self._remember(_key(record["b"]), seq)
                    except (KeyError, TypeError):
                        continue
            cursor = nxt

    def _remember(self, key, seq):
        if key not in self._recent:
            self._order.append(key)
            if len(self._order) > _RECENT:
                del self._recent[self._order.pop(0)]
        self._recent[key] = seq

    def handle(self, kind, payload):
        # One good frame -> (reply kind, reply payload bytes).
        msg_id = None
        try:
            try:
                msg = cbor.decode(payload)
            except cbor.CBORError:
                raise Refused("cbor") from None
            if not isinstance(msg, dict):
                raise Refused("schema:message")
            msg_id = msg.get("id")
            if not isinstance(msg_id, int):
                msg_id = None
            if kind == termlink.PING:
                return termlink.ACK, cbor.encode({"id": msg_id, "next": self.journal.next_seq})
            if kind != termlink.RECEIPT:
                raise Refused("type")
            body, masked = check(msg.get("r"))
            return termlink.ACK, cbor.encode(self._store(msg_id, body, masked))
        except Refused as exc:
            return self._nak(msg_id, str(exc))

    def _nak(self, msg_id, why):
        self.refused += 1
        reply = {"why": why}
        if msg_id is not None:
            reply["id"] = msg_id
        return termlink.NAK, cbor.encode(reply)

    def _store(self, msg_id, body, masked):
        if masked:
            # Counted even for a repeat: the POS sent a full PAN again.
            self.pan_violations += masked
        key = _key(body)
        seq = self._recent.get(key)
        if seq is not None:
            self.repeats += 1
            self._journal_violation(masked)
            return {"id": msg_id, "seq": seq, "epoch": self.journal.epoch, "dup": True}
        clock = self.clock
        try:
            seq = self.journal.append("r", body, t=clock.now(), up=clock.up_ms())
        except JournalFull:
            raise Refused("full") from None
        except RecordTooLarge:
            raise Refused("too_large") from None
        except OSError:
            raise Refused("io") from None
        self._remember(key, seq)
        self.stored += 1
        self._journal_violation(masked)
        return {"id": msg_id, "seq": seq, "epoch": self.journal.epoch}

    def _journal_violation(self, masked):
        if masked:
            clock = self.clock
            try:
                self.journal.append(
                    "d", {"ev": "pan_violation", "count": masked}, t=clock.now(), up=clock.up_ms()
                )
            except OSError:
                pass  # the receipt is stored; pan_violations still counts it for the heartbeat

    async def serve(self, reader, writer):
        # One connection (or the UART, forever): frames in, one reply per frame out.
        try:
            await self._serve(reader, writer)
        finally:
            try:
                writer.close()
                await writer.wait_closed()
            except OSError:
                pass  # the peer is gone already

    async def _serve(self, reader, writer):
        frames = termlink.FrameReader(reader)
        while True:
            try:
                kind, payload = await frames.read()
            except termlink.BadFrame as exc:
                reply = self._nak(None, str(exc))
            except (EOFError, OSError):
                return
            else:
                reply = self.handle(kind, payload)
            try:
                writer.write(termlink.encode(reply[0], reply[1]))
                await writer.drain()
            except OSError:
                return
