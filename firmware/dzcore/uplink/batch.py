# Batch encoding for dz/v1/{dev}/up (DESIGN §1.3):
#   CBOR {v: 1, dev, epoch, boot, recs: [record, ...], gaps: [[from, to], ...]} (+ 32-byte MAC)
# written into ONE reused buffer. The records are copied as the journal stored them (their
# exact CBOR bytes), never decoded and re-encoded. Room is left in front of the batch for the
# MQTT PUBLISH header so that the client sends header and payload in one write without a copy.
from dzcore import cbor
from dzcore.uplink.hmac256 import HMAC256
from micropython import const

_MAJOR_TEXT = const(3)
_MAJOR_ARRAY = const(4)
_MAJOR_MAP = const(5)
_MAC_LEN = const(32)
_HEADROOM = const(64)  # >= PUBLISH fixed header (<= 5) + topic (<= 2 + 43) + packet id (2)
_GAPS_ROOM = const(256)  # ~20 gaps of 32-bit seqs; more in one batch are cut (see build)


class BatchWriter:
    def __init__(self, dev, key=None, max_bytes=8192):
        self.dev = dev
        # The device's HMAC, shared with heartbeats and status (one key schedule in RAM).
        self.mac = HMAC256(key) if key else None
        self.max_bytes = max_bytes
        self.buf = bytearray(_HEADROOM + max_bytes)
        self._mv = memoryview(self.buf)
        self.start = _HEADROOM
        self.end = _HEADROOM

    def _prefix(self, pos, epoch, boot, has_gaps):
        buf = self.buf
        pos = cbor.head_into(buf, pos, _MAJOR_MAP, 6 if has_gaps else 5)
        for key, value in (("v", 1), ("dev", self.dev), ("epoch", epoch), ("boot", boot)):
            pos = cbor.encode_into(key, buf, pos)
            pos = cbor.encode_into(value, buf, pos)
        return cbor.encode_into("recs", buf, pos)

    def record_room(self, epoch, boot):
        # Bytes left for record bytes in one batch (array head, gaps and MAC reserved).
        prefix = self._prefix(self.start, epoch, boot, True) - self.start
        reserve = 3 + 5 + _GAPS_ROOM + (_MAC_LEN if self.mac else 0)
        return self.max_bytes - prefix - reserve

    def build(self, epoch, boot, items, gaps):
        # -> None, or the seq to resume from when the gaps overflowed their room: then the
        # batch stops before the first gap left out (rare: many lost ranges in one batch).
        resume = None
        gaps_bytes = cbor.encode(gaps) if gaps else b""
        if len(gaps_bytes) > _GAPS_ROOM:
            cut = gaps[0][0]
            kept = []  # type: list
            for gap in gaps:
                if len(cbor.encode(kept + [gap])) > _GAPS_ROOM:
                    cut = gap[0]
                    break
                kept.append(gap)
            gaps = kept
            gaps_bytes = cbor.encode(kept) if kept else b""
            items = [item for item in items if item[0] < cut]
            resume = cut
        buf = self.buf
        pos = self._prefix(self.start, epoch, boot, bool(gaps))
        pos = cbor.head_into(buf, pos, _MAJOR_ARRAY, len(items))
        for _seq, record in items:
            end = pos + len(record)
            buf[pos:end] = record
            pos = end
        if gaps:
            pos = cbor.encode_into("gaps", buf, pos)
            buf[pos : pos + len(gaps_bytes)] = gaps_bytes
            pos += len(gaps_bytes)
        if self.mac is not None:
            buf[pos : pos + _MAC_LEN] = self.mac.digest(self._mv[self.start : pos])
            pos += _MAC_LEN
        self.end = pos
        return resume

    def payload(self):
        return self._mv[self.start : self.end]
