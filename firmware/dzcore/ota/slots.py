# Which version boots (DESIGN §1.6): the flashed one ("0": /main.py, /lib) or a slot ("a", "b":
# <root>/<slot>/main.py and lib/) staged by an update. The choice is one small file,
# <root>/boot.json, only ever replaced whole by a rename, so a power cut leaves the old
# pointer or the new one, never a mix:
#   {"run": slot, "prev": slot, "state": "ok" | "trial", "tries": n, "ver": v, "last": result}
# A switched-to version boots on trial: every boot counts a try; the agent confirms it once it
# has connected and got an ack (`confirm`), or gives it up (`rollback`) when N minutes pass
# without. A boot that finds the tries spent (crash loop, failed import, no ack) puts `prev`
# back before anything of the new version runs. The journal and the config are never here.
import json
import os

from micropython import const

FACTORY = "0"
_SLOTS = ("a", "b")
MAX_TRIES = const(3)


class Slots:
    def __init__(self, root):
        self.root = root  # e.g. "/ota"
        self.path = root + "/boot.json"
        self.p = None

    def load(self):
        try:
            with open(self.path) as f:
                p = json.load(f)
            if p.get("run") not in (FACTORY,) + _SLOTS:
                raise ValueError
        except (OSError, ValueError, AttributeError):
            # No pointer (never updated) or an unreadable one: the flashed version, which no
            # update ever writes, is always whole.
            p = {"run": FACTORY, "prev": FACTORY, "state": "ok", "tries": 0, "ver": None}
        self.p = p
        return p

    def _save(self, p):
        try:
            os.mkdir(self.root)
        except OSError:
            pass
        tmp = self.path + ".tmp"
        with open(tmp, "w") as f:
            json.dump(p, f)
        os.rename(tmp, self.path)  # the one switch
        self.p = p

    def boot(self):
        # At power-on, before the agent's modules load: -> the slot to run.
        p = self.load()
        if p["state"] == "trial":
            if p.get("tries", 0) >= MAX_TRIES:
                return self.rollback("boot")["run"]
            p = dict(p)
            p["tries"] = p.get("tries", 0) + 1
            self._save(p)
        return p["run"]

    def dir(self, slot):
        # The folder holding the slot's main.py and lib/ ("" for the flashed version).
        return "" if slot == FACTORY else self.root + "/" + slot

    def target(self):
        # Where the next update is staged: never the running version, and never while one
        # is on trial (its `prev` must stay whole until it is confirmed).
        p = self.p or self.load()
        if p["state"] != "ok":
            return None
        return "b" if p["run"] == "a" else "a"

    def switch(self, slot, version):
        p = self.p or self.load()
        self._save(
            {
                "run": slot,
                "prev": p["run"],
                "state": "trial",
                "tries": 0,
                "ver": version,
                "last": "switched",
                "from": p.get("ver"),
            }
        )

    def confirm(self):
        p = self.p or self.load()
        if p["state"] == "trial":
            p = dict(p)
            p["state"], p["tries"], p["last"] = "ok", 0, "confirmed"
            self._save(p)
        return p

    def rollback(self, why):
        p = self.p or self.load()
        back = {
            "run": p.get("prev", FACTORY),
            "prev": p.get("prev", FACTORY),
            "state": "ok",
            "tries": 0,
            "ver": p.get("from"),
            "last": "rolled_back " + why,
        }
        self._save(back)
        return back
