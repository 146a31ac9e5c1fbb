# Intake under MicroPython: terminal-link frames in, ACK/NAK out, the journal on a LittleFS2
# image. Bad frames and refused receipts change nothing that is stored.
import asyncio
import struct
from binascii import crc32

from dzcore import cbor
from dzcore.intake import termlink
from dzcore.intake.intake import Intake
from dzcore.journal.journal import Journal
from fake_stream import FakeStream
from flash import image_flash, mount, tmp_path, unmount
from mptest import check, equal, heap

_FULL_PAN = "6228480012345678901"
_LUHN_PAN = "6228480402564890018"  # passes Luhn, as the collector checks


class Clock:
    def now(self):
        return 1763700000

    def up_ms(self):
        return 4242


def _receipt(trc, st="approved", **extra):
    body = {
        "mid": "898440358120001",
        "tid": "12345678",
        "bat": "000001",
        "trc": "%06d" % trc,
        "typ": "sale",
        "ch": "card",
        "amt": 1850,
        "cur": "CNY",
        "st": st,
        "pan": "622848******1234",
        "ck": "D",
        "ent": "051",
    }
    body.update(extra)
    return body


def _frame(msg, kind=b"R"):
    return termlink.encode(kind, cbor.encode(msg))


def _setup(name, budget=96 * 1024):
    device, point = image_flash(tmp_path(name), 32, fresh=True)
    journal = Journal(point + "/journal", budget, rng=lambda: 4321)
    journal.mount()
    return device, point, journal, Intake(journal, Clock())


def _exchange(intake, data):
    # Runs intake over the bytes until they are used up; -> the decoded replies.
    stream = FakeStream(data)
    asyncio.run(intake.serve(stream, stream))
    replies = []
    raw = bytes(stream.written)
    while raw:
        size = struct.unpack_from(">H", raw, 2)[0]
        replies.append((raw[1:2], cbor.decode(raw[4 : 4 + size])))
        raw = raw[8 + size :]
    return replies


def _image_contains(path, needle):
    # Searches the whole flash image, free blocks included, in overlapping chunks.
    tail = b""
    with open(path, "rb") as f:
        while True:
            chunk = f.read(4096)
            if not chunk:
                return False
            if (tail + chunk).find(needle) >= 0:
                return True
            tail = chunk[-len(needle) :]


def _records(journal):
    items, _, _ = journal.peek(1, 64, 16384)
    return [cbor.decode(raw) for _, raw in items]


@heap("192K")
def test_a_receipt_is_journaled_then_acked_with_its_seq():
    _, point, journal, intake = _setup("ack.img")
    replies = _exchange(intake, _frame({"id": 7, "r": _receipt(1)}))
    equal(replies, [(b"A", {"id": 7, "seq": 1, "epoch": 4321})], "reply")
    records = _records(journal)
    equal(records[0]["b"], _receipt(1), "stored body")
    equal((records[0]["t"], records[0]["up"]), (1763700000, 4242), "t and up from the clock")
    unmount(point)


@heap("192K")
def test_a_repeated_frame_gets_its_original_seq_and_a_new_state_a_new_one():
    device, point, journal, intake = _setup("repeat.img")
    data = _frame({"id": 1, "r": _receipt(5, "no_response")})
    data += _frame({"id": 1, "r": _receipt(5, "no_response")})  # the POS never saw the ACK
    data += _frame({"id": 2, "r": _receipt(5, "reversed", rv="98")})
    replies = _exchange(intake, data)
    equal([r[1]["seq"] for r in replies], [1, 1, 2], "seqs")
    equal(replies[1][1].get("dup"), True, "repeat flagged")
    equal(len(_records(journal)), 2, "stored once per state")
    # After a reboot (the ACK may have been lost with the power) the memory comes back.
    journal.close()
    unmount(point)
    point = mount(device)
    journal = Journal(point + "/journal", 96 * 1024)
    journal.mount()
    intake = Intake(journal, Clock())
    intake.load()
    replies = _exchange(intake, _frame({"id": 2, "r": _receipt(5, "reversed", rv="98")}))
    equal(replies[0][1]["seq"], 2, "repeat recognised after a reboot")
    equal(journal.next_seq, 3, "nothing new stored")
    unmount(point)


@heap("192K")
def test_a_full_pan_is_masked_before_flash_and_counted():
    _, point, journal, intake = _setup("pan.img")
    replies = _exchange(
        intake, _frame({"id": 3, "r": _receipt(9, pan=_FULL_PAN, note="ref " + _FULL_PAN)})
    )
    equal(replies[0][0], b"A", "accepted")
    journal.commit()  # the diag record is not synced with the receipt before it
    records = _records(journal)
    equal(records[0]["b"]["pan"], "622848*********8901", "masked pan")
    equal(records[0]["b"]["note"], "ref 622848*********8901", "masked in free text too")
    equal(records[1]["b"], {"ev": "pan_violation", "count": 2}, "diag record")
    equal(intake.pan_violations, 2, "counted")
    journal.close()
    unmount(point)
    check(not _image_contains(tmp_path("pan.img"), _FULL_PAN.encode()), "no full PAN on flash")
    check(not _image_contains(tmp_path("pan.img"), _FULL_PAN[:12].encode()), "nor 12 digits")


@heap("192K")
def test_a_qr_sale_keeps_its_order_number_and_channel_id():
    # DESIGN §2.3: `ord` and `xid` join a QR or wallet sale (no RRN) to the acquirer's row.
    _, point, journal, intake = _setup("ids.img")
    wechat = "4200000001202501070000000001"  # 28 digits: a longer run than any card number
    data = _frame({"id": 1, "r": _receipt(1, ch="qr", ord="DZ-20250107/0001", xid=wechat)})
    data += _frame({"id": 2, "r": _receipt(2, ord="x" * 65)})
    data += _frame({"id": 3, "r": _receipt(3, xid="has space")})
    data += _frame({"id": 4, "r": _receipt(4, xid="")})
    data += _frame({"id": 5, "r": _receipt(5, ord="ORD" + _LUHN_PAN)})
    data += _frame({"id": 6, "r": _receipt(6, ord="2025010700000000")})  # fails Luhn: kept
    # Passes Luhn but begins with a date, as no card number does: kept whole.
    data += _frame({"id": 7, "r": _receipt(7, ord="WX20250107130000001")})
    replies = _exchange(intake, data)
    equal(
        [r[1].get("why") for r in replies],
        [None, "schema:ord", "schema:xid", "schema:xid", None, None, None],
        "reasons",
    )
    journal.commit()
    records = _records(journal)
    equal((records[0]["b"]["ord"], records[0]["b"]["xid"]), ("DZ-20250107/0001", wechat), "kept")
    # A card number standing alone in an id is masked like one in any text.
    equal(records[1]["b"]["ord"], "ORD622848*********0018", "masked in an id")
    equal(records[3]["b"]["ord"], "2025010700000000", "an order number is no card number")
    equal(records[4]["b"]["ord"], "WX20250107130000001", "a date-led order number stays whole")
    journal.close()
    unmount(point)
    check(not _image_contains(tmp_path("ids.img"), _LUHN_PAN.encode()), "no full PAN on flash")


@heap("192K")
def test_track_data_cvv_and_pin_are_refused_and_nothing_is_stored():
    _, point, journal, intake = _setup("sensitive.img")
    data = _frame({"id": 1, "r": _receipt(1, cvv="123")})
    data += _frame({"id": 2, "r": _receipt(2, PIN="1234")})
    data += _frame({"id": 3, "r": _receipt(3, note=";6228480012345678=25121010000012300000?")})
    data += _frame({"id": 4, "r": _receipt(4, de52="0102030405060708")})
    replies = _exchange(intake, data)
    equal(
        [r[1]["why"] for r in replies],
        ["sensitive:cvv", "sensitive:pin", "sensitive:track", "sensitive:de52"],
        "reasons",
    )
    check(all(r[0] == b"N" for r in replies), "all NAKed")
    equal(journal.next_seq, 1, "nothing stored")
    unmount(point)


@heap("192K")
def test_malformed_frames_are_nacked_and_stored_data_stays_intact():
    _, point, journal, intake = _setup("malformed.img")
    _exchange(intake, _frame({"id": 1, "r": _receipt(1)}))
    before = _records(journal)
    good = bytearray(_frame({"id": 2, "r": _receipt(2)}))
    good[10] ^= 0x01  # one bit flipped on the wire
    bad_cbor = termlink.encode(b"R", b"\xff\x00")
    data = b"noise" + bytes(good)  # bytes before an STX are skipped
    data += bad_cbor
    data += _frame({"id": 3, "r": {"mid": "898440358120001"}})  # fields missing
    data += _frame({"id": 4, "r": _receipt(4, amt="18.50")})  # amount not in fen
    data += _frame({"id": 5, "r": _receipt(5, typ="cashback")})
    data += _frame({"id": 6, "r": _receipt(6, pan="1234")})
    data += _frame({"id": 7}, kind=b"Z")
    data += b"\x02R\xff\xff"  # a length past the limit
    replies = _exchange(intake, data)
    reasons = [r[1]["why"] for r in replies]
    equal(
        reasons,
        ["crc", "cbor", "schema:tid", "schema:amt", "schema:typ", "schema:pan", "type", "len"],
        "reasons",
    )
    equal(_records(journal), before, "stored data intact")
    equal(journal.next_seq, 2, "no seq used")
    equal(intake.refused, 8, "refusals counted")
    unmount(point)


@heap("192K")
def test_a_full_journal_answers_nak_full_keeps_everything_and_recovers_after_ack():
    _, point, journal, intake = _setup("full.img", budget=40 * 1024)
    acked = []
    trc = 0
    while True:
        trc += 1
        reply = _exchange(intake, _frame({"id": trc, "r": _receipt(trc)}))[0]
        if reply[0] == b"N":
            break
        acked.append(reply[1]["seq"])
    equal(reply[1]["why"], "full", "NAK full")
    check(len(acked) > 20, "receipts stored before it filled")
    equal(journal.stats()["overflow_receipts"], 1, "refusal counted")
    equal(journal.next_seq, acked[-1] + 1, "nothing stored for the refused one")
    journal.ack(acked[-1])
    reply = _exchange(intake, _frame({"id": trc, "r": _receipt(trc)}))[0]
    equal(reply[0], b"A", "accepted once there is room")
    unmount(point)


@heap("192K")
def test_ping_answers_with_the_next_seq():
    _, point, journal, intake = _setup("ping.img")
    replies = _exchange(intake, _frame({"id": 9}, kind=b"P"))
    equal(replies, [(b"A", {"id": 9, "next": 1})], "ping reply")
    unmount(point)


@heap("192K")
def test_frame_crc_covers_type_length_and_payload():
    frame = termlink.encode(b"R", b"\xa0")
    equal(frame[:4], b"\x02R\x00\x01", "head")
    equal(struct.unpack(">I", frame[-4:])[0], crc32(b"R\x00\x01\xa0"), "crc")
