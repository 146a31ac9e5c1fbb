# Recovery at mount and damaged flash data: torn tails, corrupt frames, a damaged state file,
# a failing flash chip. Stored data stays intact; what cannot be read is declared, not skipped.
import os

from dzcore import cbor
from dzcore.journal.journal import Journal
from flash import FailingBlockDevice, blank_image, image_flash, mount, tmp_path, unmount
from mptest import check, equal, heap, raises

_BLOCKS = 32
_BUDGET = 96 * 1024


def _receipt(trc):
    return {
        "mid": "898440358120001",
        "tid": "12345678",
        "bat": "000001",
        "trc": "%06d" % trc,
        "typ": "sale",
        "amt": 100,
        "cur": "CNY",
        "st": "approved",
    }


def _fresh(name):
    device, point = image_flash(tmp_path(name), _BLOCKS, fresh=True)
    j = Journal(point + "/journal", _BUDGET, rng=lambda: 77)
    j.mount()
    return device, point, j


def _remount(device, point, j):
    j.close()
    unmount(point)
    point = mount(device)
    j = Journal(point + "/journal", _BUDGET, rng=lambda: 78)
    j.mount()
    return point, j


def _segment(point):
    names = [n for n in os.listdir(point + "/journal") if n.endswith(".seg")]
    names.sort()
    return point + "/journal/" + names[-1]


def _all(j, start=1):
    seqs, gaps_all, bodies = [], [], []
    cursor = start
    while True:
        items, gaps, nxt = j.peek(cursor, 8, 2048)
        gaps_all.extend(g for g in gaps if g not in gaps_all)
        if not items and nxt == cursor:
            return seqs, gaps_all, bodies
        for seq, raw in items:
            seqs.append(seq)
            bodies.append(cbor.decode(raw)["b"])
        cursor = nxt


def _offset_of(path, seq):
    # File offset of the frame holding seq (frames: len u16 | crc u32 | body).
    with open(path, "rb") as f:
        data = f.read()
    pos = 12
    while pos < len(data):
        size = data[pos] << 8 | data[pos + 1]
        if cbor.decode(data[pos + 6 : pos + 6 + size])["seq"] == seq:
            return pos
        pos += 6 + size
    raise ValueError("seq %d not found" % seq)


@heap("128K")
def test_a_torn_tail_is_cut_at_mount_and_its_seq_is_free_again():
    device, point, j = _fresh("torn.img")
    for i in range(5):
        j.append("r", _receipt(i))
    j.close()
    path = _segment(point)
    size = os.stat(path)[6]
    with open(path, "ab") as f:  # half a frame: what a cut on a non-atomic file system leaves
        f.write(b"\x00\x50\x12\x34\x56\x78\xa6\x63seq\x06\x61k")
    point, j = _remount(device, point, j)
    equal(os.stat(_segment(point))[6], size, "file cut back to the last good frame")
    equal(j.next_seq, 6, "next seq")
    seqs, gaps, _ = _all(j)
    equal(seqs, [1, 2, 3, 4, 5], "records intact")
    equal(gaps, [], "nothing declared lost")
    equal(j.stats()["lost"], 0, "lost count")
    unmount(point)


@heap("128K")
def test_a_corrupt_frame_inside_is_declared_lost_once_and_the_rest_is_kept():
    device, point, j = _fresh("corrupt.img")
    for i in range(10):
        j.append("r", _receipt(i))
    j.close()
    path = _segment(point)
    at = _offset_of(path, 4)
    with open(path, "r+b") as f:  # flip one byte in seq 4's body: its CRC no longer holds
        f.seek(at + 30)
        byte = f.read(1)
        f.seek(at + 30)
        f.write(bytes([byte[0] ^ 0x40]))
    point, j = _remount(device, point, j)
    seqs, gaps, bodies = _all(j)
    equal(seqs[:9], [1, 2, 3, 5, 6, 7, 8, 9, 10], "every readable record kept")
    equal(gaps, [[4, 4]], "the unreadable seq is a gap")
    equal(bodies[9], {"ev": "lost", "from": 4, "to": 4, "why": "corrupt"}, "diag lost record")
    equal(j.stats()["lost"], 1, "lost count")
    equal(j.next_seq, 12, "seqs go on past the lost one and the diag record")
    point, j = _remount(device, point, j)
    equal(j.stats()["lost"], 1, "declared once, not at every mount")
    seqs, gaps, _ = _all(j)
    equal(len(seqs), 10, "no second lost record")
    j.ack(12)
    equal(_all(j, 13)[1], [], "a gap passed by the ack is forgotten")
    unmount(point)


@heap("128K")
def test_a_damaged_state_file_is_rebuilt_from_the_segments_without_reusing_seqs():
    device, point, j = _fresh("state.img")
    for i in range(6):
        j.append("r", _receipt(i))
    j.ack(2)
    j.close()
    with open(point + "/journal/state", "r+b") as f:
        f.seek(8)
        f.write(b"\xff\xff\xff")
    point, j = _remount(device, point, j)
    equal(j.epoch, 77, "epoch from the segment header, not a new one")
    equal(j.next_seq, 7, "seq not reused")
    check(j.acked <= 2, "cursor never ahead of the truth")
    seqs, _, _ = _all(j, j.acked + 1)
    check(seqs[-4:] == [3, 4, 5, 6], "unacked records kept: %r" % seqs)
    unmount(point)


@heap("128K")
def test_a_failing_flash_write_loses_nothing_stored_and_the_journal_goes_on():
    path = tmp_path("failing.img")
    blank_image(path, _BLOCKS)
    device = FailingBlockDevice(open(path, "r+b"), _BLOCKS)
    point = mount(device, fresh=True)
    j = Journal(point + "/journal", _BUDGET, rng=lambda: 5)
    j.mount()
    for i in range(3):
        j.append("r", _receipt(i))
    device.failing = True
    raises(OSError, j.append, "r", _receipt(99))
    device.failing = False
    equal(j.append("r", _receipt(3)), 4, "the failed append's seq is used by the next one")
    seqs, _, bodies = _all(j)
    equal(seqs, [1, 2, 3, 4], "stored records intact")
    equal([b["trc"] for b in bodies], ["000000", "000001", "000002", "000003"], "content")
    point, j = _remount(device, point, j)
    equal(_all(j)[0], [1, 2, 3, 4], "after a remount too")
    unmount(point)
