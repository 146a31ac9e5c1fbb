# A board's declarative description (board.json), read from beside its adapter.
# Every adapter answers main.py's `spec()` with this; it lives here so the boards share it.
import json
import sys


def load_spec():
    # The first board.json on the module path: the dev mount /_dev/0 on a virtual board in
    # development, or where the flash tool put it (/ or /lib) on a flashed board.
    for folder in sys.path:
        try:
            with open((folder or ".") + "/board.json") as f:
                return json.load(f)
        except (OSError, ValueError):
            continue
    return {}
