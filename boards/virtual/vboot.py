# Power-on of the virtual board: run by the host as
#   micropython -i vboot.py IMAGE BLOCKS HWDIR [--fs=fat] [DEVDIR...]
# It mounts the flash image as "/" (LittleFS2, or FAT when the image holds FAT, as a board
# whose vendor image shipped FAT would; a blank image is formatted LittleFS2, or FAT with
# --fs=fat), the host's control folder read-only at /_hw, source folders for development at
# /_dev/<n>, then starts the agent if a main module is on the path (flashed /main.py, or a
# development one) and /_hw/autostart is present. Without DEVDIRs the board runs only what
# was flashed (/main.py, /lib), like a real board.
# With -i the REPL follows, so mpremote can interrupt the agent and talk to the board.
import os
import sys

import micropython
import vfs
from blockdev import FileBlockDevice


def _holds_fat(device):
    # A FAT boot sector ends in 55 AA (VfsFat itself only checks when mounted).
    sector = bytearray(512)
    device.readblocks(0, sector)
    return sector[510] == 0x55 and sector[511] == 0xAA


def _mount_flash(image_path, block_count, fs_name):
    image = open(image_path, "r+b")
    # The stubs want their AbstractBlockDev class; MicroPython takes any object with the
    # block protocol (readblocks/writeblocks/ioctl), which is what FileBlockDevice is.
    device = FileBlockDevice(image, block_count)
    if _holds_fat(device):
        flash = vfs.VfsFat(device)  # type: ignore[arg-type]
    else:
        try:
            flash = vfs.VfsLfs2(device)  # type: ignore[arg-type, assignment]
        except OSError:
            fs_class = vfs.VfsFat if fs_name == "fat" else vfs.VfsLfs2
            fs_class.mkfs(device)  # type: ignore[arg-type]
            flash = fs_class(device)  # type: ignore[arg-type, assignment]
    vfs.umount("/")
    vfs.mount(flash, "/")
    return device


def _exists(path):
    try:
        os.stat(path)
        return True
    except OSError:
        return False


def power_on(argv):
    image_path, block_count, hw_dir = argv[1], int(argv[2]), argv[3]
    options = [a for a in argv[4:] if a.startswith("--")]
    dev_dirs = [a for a in argv[4:] if not a.startswith("--")]
    fs_name = "fat" if "--fs=fat" in options else "lfs2"
    # Host paths stop resolving once the flash is "/": open everything host-side first.
    hw = vfs.VfsPosix(hw_dir)
    dev_mounts = [vfs.VfsPosix(d) for d in dev_dirs]
    device = _mount_flash(image_path, block_count, fs_name)
    vfs.mount(hw, "/_hw", readonly=True)
    sys.path.clear()
    sys.path.extend(["", "/lib"])
    for index, mount in enumerate(dev_mounts):
        point = "/_dev/%d" % index
        vfs.mount(mount, point, readonly=True)
        sys.path.append(point)
    sys.path.append(".frozen")
    os.chdir("/")
    return device


def _has_main():
    for folder in sys.path:
        for name in ("main.py", "main.mpy"):
            if _exists((folder or ".") + "/" + name):
                return True
    return False


# SIGINT stays off through start-up (the console relay passes a Ctrl-C on as a byte then):
# the unix port raises KeyboardInterrupt from its signal handler, wherever its C code is
# (board.py: console_interrupts). An agent that reads its console (READS_CONSOLE_INTERRUPTS)
# keeps it off and finds the waiting Ctrl-C; any other main gets the port's SIGINT back.
micropython.kbd_intr(-1)
flash_device = power_on(sys.argv)
if _exists("/_hw/autostart") and _has_main():
    import main

    if not getattr(main, "READS_CONSOLE_INTERRUPTS", False):
        micropython.kbd_intr(3)
    try:
        main.main()
    except KeyboardInterrupt:
        print("agent stopped by the console")
