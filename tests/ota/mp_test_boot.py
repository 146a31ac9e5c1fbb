# Which version runs (DESIGN §1.6, dzcore/ota/boot.py): a slot's own main.py and lib/ when the
# pointer chooses it; a version on trial that fails at import, or that the agent gave up, is
# replaced by the previous one in the same power-on; a confirmed version's failure is raised.
import asyncio
import os
import sys

from dzcore.ota.boot import Restart, start
from dzcore.ota.slots import Slots
from mptest import check, equal, heap, raises, tmpdir

RAN = []


def factory(slot, slots, *args):
    RAN.append(("0", args))
    return "flashed"


def _slot(root, name, main_py, module=None):
    for d in (root, root + "/" + name, root + "/" + name + "/lib"):
        try:
            os.mkdir(d)
        except OSError:
            pass
    with open(root + "/" + name + "/main.py", "w") as f:
        f.write(main_py)
    if module:
        with open(root + "/" + name + "/lib/" + module[0], "w") as f:
            f.write(module[1])


def _fresh(leaf):
    root = tmpdir() + "/" + leaf
    os.mkdir(root)
    RAN.clear()
    return root


@heap("128K")
def test_the_chosen_slot_runs_with_its_own_modules():
    root = _fresh("ota1")
    _slot(
        root,
        "a",
        "import slotmod\ndef run_chosen(slot, slots, *args):\n"
        "    return (slot, slotmod.WHO, args, slots.p['state'])\n",
        ("slotmod.py", "WHO = 'slot a'\n"),
    )
    equal(start(root, factory, 1, 2), "flashed", "no pointer: the flashed version")
    Slots(root).switch("a", "0.2.0")
    equal(start(root, factory, 1, 2), ("a", "slot a", (1, 2), "trial"), "the new version")
    check(root + "/a/lib" not in sys.path[1:], "the slot's lib put first, once")


@heap("128K")
def test_a_version_failing_at_import_on_trial_goes_back():
    root = _fresh("ota2")
    _slot(root, "a", "import no_such_module_anywhere\ndef run_chosen(*a):\n    return 'a'\n")
    Slots(root).switch("a", "0.2.0")
    equal(start(root, factory), "flashed", "the previous version runs in the same power-on")
    slots = Slots(root)
    slots.load()
    equal((slots.p["run"], slots.p["last"]), ("0", "rolled_back crash"), "and stays")
    check("no_such_module_anywhere" not in sys.modules, "nothing of it left")


@heap("128K")
def test_given_up_and_confirmed_versions():
    root = _fresh("ota3")
    # The agent gave the version up (no ack in time): it put the previous one back itself.
    _slot(
        root,
        "a",
        "from dzcore.ota.boot import Restart\n"
        "def run_chosen(slot, slots, *args):\n"
        "    slots.rollback('no_ack')\n    raise Restart()\n",
    )
    Slots(root).switch("a", "0.2.0")
    equal(start(root, factory), "flashed", "restarted on the previous version")
    equal(Slots(root).load()["last"], "rolled_back no_ack", "said why")
    # A confirmed version that fails is not rolled back here: the failure is raised.
    _slot(root, "b", "def run_chosen(slot, slots, *args):\n    raise ValueError('bug')\n")
    slots = Slots(root)
    slots.load()
    slots.switch("b", "0.3.0")
    slots.confirm()
    raises(ValueError, start, root, factory)
    equal(Slots(root).load()["run"], "b", "still b")


TICKS = []


async def _ticker():
    while True:
        TICKS.append(1)
        await asyncio.sleep_ms(5)


async def _version_one():
    asyncio.create_task(_ticker())  # a task of the version, like the agent's uplink
    await asyncio.sleep_ms(30)
    raise Restart()  # an update switched: start the version the pointer names


async def _version_two():
    await asyncio.sleep_ms(100)


def _two_versions(fresh_loop):
    # factory plays the version that ends (first call) and the one started after it (second),
    # the latter as firmware/main.py's run_chosen does (fresh_loop) or not.
    calls = []

    def factory(slot, slots):
        calls.append(slot)
        if len(calls) == 1:
            asyncio.new_event_loop()
            asyncio.run(_version_one())
        if fresh_loop:
            asyncio.new_event_loop()
        TICKS.clear()
        asyncio.run(_version_two())
        return len(TICKS)

    return start(_fresh("loop%d" % fresh_loop), factory)


@heap("128K")
def test_a_version_started_after_another_ended_runs_none_of_its_tasks():
    # MicroPython's asyncio.run leaves the other tasks in its queue when the main one ends:
    # without a fresh loop the ended version's tasks run on beside the next one ...
    check(_two_versions(fresh_loop=False) > 0, "the old version's task did not run on")
    # ... and with it (main.py's run_chosen) none of them runs again.
    equal(_two_versions(fresh_loop=True), 0, "ticks of the ended version")
