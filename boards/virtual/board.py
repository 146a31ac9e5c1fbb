# The virtual board's hardware seam: what the portable core is given.
# Link state and signal come from the host's control channel, a JSON file the host rewrites
# atomically (`daozhang board set`) and that the board sees read-only at /_hw/control.json.
import json

_CONTROL = "/_hw/control.json"
_DEFAULT_SIGNAL = {"rat": "wifi", "rssi": -60}


class Board:
    name = "virtual"

    def __init__(self, control_path=_CONTROL):
        self._control_path = control_path

    def _control(self):
        # Read on every call: the host may change it at any moment; a torn or missing file
        # (never expected: the host renames into place) reads as "no control", link up.
        try:
            with open(self._control_path) as f:
                return json.load(f)
        except (OSError, ValueError):
            return {}

    def link_up(self):
        return self._control().get("link", "up") == "up"

    def signal(self):
        signal = self._control().get("signal")
        if not isinstance(signal, dict):
            return dict(_DEFAULT_SIGNAL)
        return signal

    def reset_cause(self):
        return self._control().get("reset_cause", "power_on")

    def terminal_link(self):
        # The link to the POS main board: loopback TCP on this board (boards/virtual/terminal.py).
        import terminal

        return terminal.from_config()

    def journal_dir(self):
        # The journal lives on the flash (the LittleFS image mounted at /). Not "/journal":
        # "" (the root) precedes /lib on sys.path, so a folder named like a module would be
        # imported as a namespace package in its place once the firmware runs from flash.
        return "/data/journal"

    def spec(self):
        # This board's board.json (flash, journal budget, UART), found beside the adapter on
        # the module path (the dev mount /_dev/0, or where the flash tool put it).
        import sys

        for folder in sys.path:
            try:
                with open((folder or ".") + "/board.json") as f:
                    return json.load(f)
            except (OSError, ValueError):
                continue
        return {}

    def describe(self):
        return {
            "board": self.name,
            "link": "up" if self.link_up() else "down",
            "signal": self.signal(),
            "cause": self.reset_cause(),
        }
