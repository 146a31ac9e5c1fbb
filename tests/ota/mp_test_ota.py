# The device's side of an update (DESIGN §1.6): which offers it refuses, how staging checks and
# resumes, and the boot pointer's trial, confirm and rollback. On the host's file system; the
# power cuts are test_ota_power_cuts.py's, on LittleFS.
import hashlib
import os

from dzcore import cbor
from dzcore.ota.slots import FACTORY, MAX_TRIES, Slots
from dzcore.ota.stage import Refused, Stager, judge
from dzcore.uplink.hmac256 import HMAC256
from mptest import check, equal, heap, raises, tmpdir

KEY = bytes(range(32))
FILES = [("/main.py", b"print(1)\n" * 40), ("/lib/x.mpy", bytes(range(256)) * 3)]


def manifest(version="0.2.0", board="virtual", mpy="6.3", low="0.1.0", files=FILES):
    body = {
        "v": 1,
        "version": version,
        "board": board,
        "mpy": mpy,
        "min": low,
        "files": [[p, len(d), hashlib.sha256(d).digest()] for p, d in files],
    }
    return cbor.encode(body)


def offer(m, key=KEY):
    return m, HMAC256(key).digest(m)


def refused(why, m, mac, running="0.1.0"):
    exc = raises(Refused, judge, m, mac, HMAC256(KEY), "virtual", running, 6)
    equal(exc.args[0], why, "refusal")


@heap("128K")
def test_offers_are_judged():
    m, mac = offer(manifest())
    equal(judge(m, mac, HMAC256(KEY), "virtual", "0.1.0", 6)["version"], "0.2.0", "accepted")
    refused("mac", m, None)
    refused("mac", m, HMAC256(bytes(32)).digest(m))  # another device's manifest
    refused("mac", m + b"\x00", mac)  # altered
    refused("board", *offer(manifest(board="esp32-devkit")))
    refused("downgrade", *offer(manifest(version="0.1.0")))
    refused("downgrade", m, mac, running="0.2.0")  # the same again: a replayed bundle
    refused("downgrade", m, mac, running="0.10.0")  # numbers, not text
    refused("min", *offer(manifest(low="0.1.5")))
    refused("mpy", *offer(manifest(mpy="5.0")))
    refused("bad", *offer(manifest(files=[("../x", b"1")])))
    refused("bad", *offer(manifest(version="0.2")))
    exc = raises(Refused, judge, m, mac, None, "virtual", "0.1.0", 6)
    equal(exc.args[0], "mac", "no key, no install")


@heap("128K")
def test_staging_checks_each_file_and_resumes():
    m = manifest()
    body = cbor.decode(m)
    root = tmpdir() + "/slot"
    stager = Stager(root, m, body)
    equal(stager.begin(), 0, "a fresh slot")
    data = b"".join(d for _, d in FILES)
    equal(stager.write(0, data[:100]), 100, "first chunk")
    equal(stager.write(50, data[50:150]), 100, "a resend from before is ignored")
    equal(stager.write(300, data[300:400]), 100, "a chunk from the future is ignored")
    # A new Stager on the same slot (after a reboot) resumes where the flash says.
    stager = Stager(root, m, body)
    equal(stager.begin(), 100, "resumed")
    bad = bytearray(data[100:400])
    bad[359 - 100] ^= 1  # the last byte of /main.py (360 bytes): a tampered chunk
    exc = raises(Refused, stager.write, 100, bytes(bad))
    equal(exc.args[0], "hash", "tampered")
    equal(stager.offset(), 0, "the bad file is dropped; it comes again")
    offset = 0
    while offset < stager.total:
        offset = stager.write(offset, data[offset : offset + 97])
    check(stager.verify(), "whole and verified")
    with open(root + "/lib/x.mpy", "rb") as f:
        equal(f.read(), FILES[1][1], "staged bytes")
    # Another bundle clears the slot first.
    other = manifest(version="0.3.0")
    equal(Stager(root, other, cbor.decode(other)).begin(), 0, "a new bundle starts over")
    check(not stager.verify(), "the old files are gone")


@heap("128K")
def test_boot_pointer_trial_confirm_and_rollback():
    root = tmpdir() + "/ota"
    slots = Slots(root)
    equal(slots.boot(), FACTORY, "never updated: the flashed version")
    equal(slots.target(), "a", "staged beside it")
    slots.switch("a", "0.2.0")
    equal(slots.target(), None, "nothing staged while a version is on trial")
    equal(Slots(root).boot(), "a", "the new version boots on trial")
    slots = Slots(root)
    slots.load()
    equal(slots.confirm()["state"], "ok", "confirmed")
    equal(Slots(root).boot(), "a", "and stays")
    equal(Slots(root).target(), "b", "the next one goes to the other slot")
    # A version that never proves itself: each boot is a try; then the previous one is back.
    slots = Slots(root)
    slots.load()
    slots.switch("b", "0.3.0")
    for i in range(MAX_TRIES):
        equal(Slots(root).boot(), "b", "try %d" % (i + 1))
    slots = Slots(root)
    equal(slots.boot(), "a", "rolled back")
    equal((slots.p["last"], slots.p["ver"]), ("rolled_back boot", "0.2.0"), "said so")
    # No ack in time: the agent gives it up itself.
    slots.switch("b", "0.3.0")
    Slots(root).boot()
    slots = Slots(root)
    slots.load()
    equal(slots.rollback("no_ack")["run"], "a", "given up")
    equal(Slots(root).boot(), "a", "the previous version boots")
    # An unreadable pointer: the flashed version, which no update writes.
    with open(root + "/boot.json", "w") as f:
        f.write("{not json")
    equal(Slots(root).boot(), FACTORY, "unreadable pointer")
    os.remove(root + "/boot.json")


@heap("128K")
def test_inspect_shows_running_staged_and_the_last_result():
    import devinfo

    root = tmpdir() + "/ota-inspect"
    equal(devinfo.ota_state(root)["running"], "flashed", "never updated")
    slots = Slots(root)
    slots.load()
    m = manifest(version="0.2.0")
    Stager(root + "/a", m, cbor.decode(m)).begin()
    state = devinfo.ota_state(root)
    equal(state["staged"], "0.2.0 (slot a)", "staged beside the flashed version")
    slots.switch("a", "0.2.0")
    slots.confirm()
    state = devinfo.ota_state(root)
    equal((state["running"], state["version"], state["last"]), ("slot a", "0.2.0", "confirmed"), "")
    equal(state["staged"], None, "nothing else staged")
