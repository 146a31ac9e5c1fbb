# Runs the version the boot pointer chooses (DESIGN §1.6; slots.py): the flashed one, or a slot
# staged by an update, whose own main.py and lib/ then come first on the module path. A version
# on trial that fails to start (a failed import, an exception before it is confirmed) or that
# the agent gave up (no ack in time: `Restart`) is replaced by the previous one at once, in the
# same power-on; a confirmed version's failure is not judged here (the watchdog resets it).
import gc
import sys

from dzcore.ota.slots import FACTORY, Slots


class Restart(Exception):
    # The agent changed the boot pointer (an update switched to, a trial given up): start
    # the version it names now.
    pass


def _forget():
    # Modules of the version that ran, so that the next one imports its own.
    for name in list(sys.modules):
        if name == "dzcore" or name.startswith("dzcore.") or name == "board":
            del sys.modules[name]


def _entry(slot_dir):
    _forget()
    sys.path.insert(0, slot_dir + "/lib")
    scope = {"__name__": "dzslot"}
    with open(slot_dir + "/main.py") as f:
        exec(f.read(), scope)
    return scope["run_chosen"]


def start(root, factory, *args):
    # factory(slot, slots, *args) runs the flashed version; a slot's main.py has the same
    # `run_chosen`. -> what the version's run returned.
    while True:
        slots = Slots(root)
        slot = slots.boot()
        path = list(sys.path)
        try:
            run = factory if slot == FACTORY else _entry(slots.dir(slot))
            return run(slot, slots, *args)
        except Exception as exc:
            if type(exc).__name__ == "Restart":
                print("daozhang agent: restarting on the version the boot pointer names")
            elif Slots(root).load()["state"] == "trial":
                print("daozhang agent: %s failed on trial (%r); back to the previous" % (slot, exc))
                Slots(root).rollback("crash")
            else:
                raise
        sys.path[:] = path
        _forget()
        gc.collect()  # the ended version's objects and code, before the next one loads its own
