# The MicroPython half of test_ota_power_cuts.py: an update staged, verified and switched on a
# LittleFS2 image whose every write is logged, then the image after each cut point booted.
#
#   mp_otacut.py record DIR   the update, once (DIR holds bundle.bin and offer.mac)
#   mp_otacut.py replay DIR   for each k in DIR/cuts.txt: the image after write k, booted, checked,
#                          then the update resumed from what is on flash and finished
#
# Output lines:
#   T ops                  the update ended after `ops` writes (S ops: the switch's rename)
#   C k run state tries    the boot after cut k chose `run` (0 = the flashed version)
#   V k ok|bad             the chosen slot's files against its manifest
#   J k crc                the journal and config bytes (never touched)
#   E k run ok|bad resumed the update finished after the cut (run, verified, bytes resumed)
import gc
import struct
import sys
from binascii import crc32

from dzcore.ota.slots import FACTORY, Slots
from dzcore.ota.stage import Stager, judge
from dzcore.uplink.hmac256 import HMAC256
from flash import CuttableBlockDevice, apply_writes, blank_image, copy_file, mount, unmount

_BLOCKS = 64
KEY = bytes(range(32))
_CHUNK = 700


def _bundle(folder):
    with open(folder + "/bundle.bin", "rb") as f:
        data = f.read()
    size = struct.unpack(">I", data[4:8])[0]
    manifest = data[8 : 8 + size]
    with open(folder + "/offer.mac", "rb") as f:
        mac = f.read()
    return manifest, mac, memoryview(data)[8 + size :]


def _others(point):
    # The journal and the config, as flashed and written before the update.
    crc = 0
    for name in ("/journal/seg-000001", "/config.json"):
        with open(point + name, "rb") as f:
            crc = crc32(f.read(), crc)
    return crc


def _update(point, folder, device=None):
    # Stage from what is on flash, verify, switch. -> bytes already there when it began
    manifest, mac, payload = _bundle(folder)
    m = judge(manifest, mac, HMAC256(KEY), "virtual", "0.1.0", 6)
    slots = Slots(point + "/ota")
    slots.load()
    if slots.p["ver"] == m["version"]:
        return -1  # switched before the cut
    target = slots.target()
    stager = Stager(slots.root + "/" + target, manifest, m)
    offset = start = stager.begin()
    while offset < stager.total:
        gc.collect()
        offset = stager.write(offset, payload[offset : offset + _CHUNK])
    if not stager.verify():
        raise RuntimeError("verify")
    if device is not None:
        print("S", device.ops + 1)
    slots.switch(target, m["version"])
    return start


def record(folder):
    base = folder + "/base.img"
    blank_image(base, _BLOCKS)
    device = CuttableBlockDevice(open(base, "r+b"), _BLOCKS)
    point = mount(device, fresh=True)
    import os

    os.mkdir(point + "/journal")
    with open(point + "/journal/seg-000001", "wb") as f:
        f.write(bytes(range(256)) * 8)
    with open(point + "/config.json", "w") as f:
        f.write('{"dev": "dev-0001"}')
    unmount(point)
    device.file.close()
    buf = bytearray(1024)
    copy_file(base, folder + "/work.img", buf)
    log = open(folder + "/writes.log", "wb")
    device = CuttableBlockDevice(open(folder + "/work.img", "r+b"), _BLOCKS, -1, log)
    point = mount(device)
    _update(point, folder, device)
    print("T", device.ops)
    unmount(point)
    device.file.close()
    log.close()
    copy_file(base, folder + "/work.img", buf)


def _check_boot(point, k, folder):
    slots = Slots(point + "/ota")
    run = slots.boot()
    p = slots.p
    print("C", k, run, p["state"], p.get("tries", 0))
    if run != FACTORY:
        manifest, _, _ = _bundle(folder)
        from dzcore import cbor

        m = cbor.decode(manifest)
        print("V", k, "ok" if Stager(slots.dir(run), manifest, m).verify() else "bad")
    print("J", k, _others(point))


def replay(folder):
    work = folder + "/work.img"
    scratch = folder + "/scratch.img"
    buf = bytearray(1024)
    done = 0
    with open(folder + "/writes.log", "rb") as log, open(folder + "/cuts.txt") as cuts:
        for line in cuts:
            k = int(line)
            with open(work, "r+b") as image:
                apply_writes(image, log, k - done, buf)
            done = k
            gc.collect()
            copy_file(work, scratch, buf)
            device = CuttableBlockDevice(open(scratch, "r+b"), _BLOCKS)
            point = mount(device)
            _check_boot(point, k, folder)
            resumed = _update(point, folder)
            slots = Slots(point + "/ota")
            run = slots.boot()
            manifest, _, _ = _bundle(folder)
            from dzcore import cbor

            ok = Stager(slots.dir(run), manifest, cbor.decode(manifest)).verify()
            print("E", k, run, "ok" if ok else "bad", resumed)
            unmount(point)
            device.file.close()


def main():
    mode, folder = sys.argv[1], sys.argv[2]
    if mode == "record":
        record(folder)
    else:
        replay(folder)
