# What `daozhang device inspect` reads from a device (over mpremote, with the agent stopped):
# firmware manifest, config with secrets hidden, which credential slots are filled, link and
# signal, journal statistics, the most recent diagnostic records still on flash, and which
# version runs, which is staged and how the last update ended (/ota, DESIGN §1.6).
# Nothing here writes to flash except what mounting the journal does at every boot (a torn
# tail is truncated). The host reads one line "DZ-INSPECT <json>".
import json
import os

from micropython import const

_CONFIG = "/config.json"
_SECRETS = ("hmac.key", "ca.pem", "client.crt", "client.key")
_DEFAULT_JOURNAL_DIR = "/dz/journal"
_SCAN_CHUNK = const(32)
_SCAN_MAX = const(2048)
_SECRET_WORDS = ("key", "secret", "pass", "token")


def _load_json(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError) as exc:
        return {"error": "%s unreadable: %r" % (path, exc)}


def hide_secrets(config):
    shown = {}
    for name, value in config.items():
        if isinstance(value, dict):
            shown[name] = hide_secrets(value)
        elif any(word in name.lower() for word in _SECRET_WORDS):
            shown[name] = "(hidden)"
        else:
            shown[name] = value
    return shown


def secret_slots():
    slots = {}
    for name in _SECRETS:
        try:
            slots[name] = "present, %d bytes" % os.stat("/secrets/" + name)[6]
        except OSError:
            slots[name] = "empty"
    return slots


def _board_state():
    try:
        from board import Board

        return Board().describe()
    except Exception as exc:
        return {"error": "board adapter: %r" % (exc,)}


def _journal_place(config):
    # Where and how big the agent's journal is: the agent's own answer when it has one.
    try:
        from board import Board
        from main import journal_budget

        board = Board()
        return board.journal_dir(), lambda root: journal_budget(board, root)
    except ImportError:
        pass  # a device flashed without the agent: the config says where
    spec = _load_json("/board.json")

    def budget(root):
        st = os.statvfs(root)
        return st[0] * st[2] * spec.get("journal_budget_pct", 75) // 100

    return config.get("journal_dir", _DEFAULT_JOURNAL_DIR), budget


def recent_diag(journal, count):
    from dzcore import cbor

    recent = []  # type: list
    cursor = journal.acked + 1
    scanned = 0
    while scanned < _SCAN_MAX:
        items, _gaps, next_from = journal.peek(cursor, _SCAN_CHUNK, 8192)
        if not items:
            break
        for _seq, raw in items:
            record = cbor.decode(raw)
            if record.get("k") == "d":
                recent.append(record)
                if len(recent) > count:
                    recent.pop(0)
        scanned += len(items)
        if next_from <= cursor:
            break
        cursor = next_from
    return recent


def journal_state(journal_dir, budget, recent):
    try:
        from dzcore.journal.journal import Journal
    except ImportError as exc:
        return {"error": "not available: %s" % (exc,)}, []
    try:
        os.stat(journal_dir)
    except OSError:
        return {"error": "no journal at %s (the agent has not run yet)" % journal_dir}, []
    try:
        journal = Journal(journal_dir, budget(journal_dir))
        journal.mount()
        return journal.stats(), recent_diag(journal, recent)
    except Exception as exc:
        return {"error": "journal at %s: %r" % (journal_dir, exc)}, []


def ota_state(root="/ota"):
    # The boot pointer, the version staged beside the running one, the last offer's result.
    try:
        with open(root + "/boot.json") as f:
            p = json.load(f)
    except (OSError, ValueError):
        p = {}
    run = p.get("run", "0")
    out = {
        "running": "flashed" if run == "0" else "slot " + run,
        "version": p.get("ver"),
        "state": p.get("state", "ok"),
        "last": p.get("last"),
        "staged": None,
        "offer": None,
    }
    from dzcore import cbor

    for slot in ("a", "b"):
        if slot == run:
            continue
        try:
            with open(root + "/" + slot + "/manifest.cbor", "rb") as f:
                out["staged"] = "%s (slot %s)" % (cbor.decode(f.read()).get("version"), slot)
        except (OSError, ValueError, AttributeError):
            pass
    try:
        with open(root + "/offer.cbor", "rb") as f:
            offer = cbor.decode(f.read())
        out["offer"] = "%s %s" % (
            "".join("%02x" % b for b in offer["id"][:4]),
            offer.get("result") or "in progress",
        )
    except (OSError, ValueError, KeyError, TypeError):
        pass
    return out


def report(recent=10, config_path=_CONFIG):
    config = _load_json(config_path)
    fw = _load_json("/fw.json")
    fw.pop("files", None)
    journal_dir, budget = _journal_place(config)
    stats, diag = journal_state(journal_dir, budget, recent)
    return {
        "fw": fw,
        "config": hide_secrets(config),
        "secrets": secret_slots(),
        "board": _board_state(),
        "journal": stats,
        "diag": diag,
        "ota": ota_state(),
    }


def main(recent=10):
    print("DZ-INSPECT " + json.dumps(report(recent)))
