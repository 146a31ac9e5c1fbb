# Power-on of the virtual board: run by the host as
#   micropython -i vboot.py IMAGE BLOCKS HWDIR [DEVDIR...]
# It mounts the LittleFS2 image as "/" (formatting it on first start), the host's control
# folder read-only at /_hw, source folders for development at /_dev/<n>, then starts the
# agent if /main.py (or a development main.py) exists and /_hw/autostart is present.
# With -i the REPL follows, so mpremote can interrupt the agent and talk to the board.
import os
import sys

import vfs
from blockdev import FileBlockDevice


def _mount_flash(image_path, block_count):
    image = open(image_path, "r+b")
    # The stubs want their AbstractBlockDev class; MicroPython takes any object with the
    # block protocol (readblocks/writeblocks/ioctl), which is what FileBlockDevice is.
    device = FileBlockDevice(image, block_count)
    try:
        flash = vfs.VfsLfs2(device)  # type: ignore[arg-type]
    except OSError:
        vfs.VfsLfs2.mkfs(device)  # type: ignore[arg-type]
        flash = vfs.VfsLfs2(device)  # type: ignore[arg-type]
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
    dev_dirs = argv[4:]
    # Host paths stop resolving once the flash is "/": open everything host-side first.
    hw = vfs.VfsPosix(hw_dir)
    dev_mounts = [vfs.VfsPosix(d) for d in dev_dirs]
    device = _mount_flash(image_path, block_count)
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


flash_device = power_on(sys.argv)
if _exists("/_hw/autostart"):
    import main

    try:
        main.main()
    except KeyboardInterrupt:
        print("agent stopped by the console")
