# What a board build freezes into its MicroPython image (micropython-lib's manifest format:
# package(), module() and include() are given by MicroPython's tools/manifestfile.py). A board's
# own manifest includes this one and adds its adapter, for example for the ESP32:
#   include("$(PORT_DIR)/boards/manifest.py")
#   include("/path/to/daozhang/firmware/manifest.py")
#   module("board.py", base_path="/path/to/daozhang/boards/esp32-devkit")
# Frozen code runs from flash, not from the heap. main.py stays a file on the board's file
# system (MicroPython runs /main.py at boot), and board.json beside it.

# The portable core, every subpackage with it.
package("dzcore")  # noqa: F821
# What the host runs on the device over mpremote: the flash self-test and `device inspect`.
module("selftest.py")  # noqa: F821
module("devinfo.py")  # noqa: F821
