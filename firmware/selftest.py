# On-device self-test, run by `daozhang flash` (over mpremote) right after a flash.
# Each check returns (status, detail): "pass", "fail", or "n/a" when the part it tests is not
# on the device (a firmware module not installed): n/a is never counted as a pass.
# The host reads one line "DZ-SELFTEST <json>" with the list of [name, status, detail].
import gc
import json
import os
import time

from micropython import const

_SCRATCH = "/_selftest"
_JOURNAL_TEST_BUDGET = const(32768)
_MIN_YEAR = const(2024)
_BROKER_TIMEOUT_S = const(5)


def _rmtree(path):
    try:
        entries = list(os.ilistdir(path))
    except OSError:
        return
    for entry in entries:
        child = path + "/" + entry[0]
        if entry[1] == 0x4000:
            _rmtree(child)
        else:
            os.remove(child)
    os.rmdir(path)


def root_fs_name():
    # vfs.mount() with no argument lists (fs, mount point) on MicroPython >= 1.23.
    try:
        import vfs

        for fs, point in vfs.mount():
            if point == "/":
                return type(fs).__name__
    except (ImportError, TypeError, AttributeError):
        pass
    return "unknown"


def check_fs():
    name = root_fs_name()
    if name in ("VfsLfs2", "VfsLfs1"):
        return "pass", "LittleFS (" + name + ")"
    if name == "VfsFat":
        return "fail", "root filesystem is FAT, not LittleFS: a power cut can corrupt it"
    return "fail", "root filesystem " + name + " is not LittleFS"


def check_room(min_free):
    st = os.statvfs("/")
    free = st[0] * st[3]
    detail = "%d KiB free of %d KiB" % (free // 1024, st[0] * st[2] // 1024)
    if free < min_free:
        return "fail", "not enough flash: " + detail + ", needs %d KiB" % (min_free // 1024)
    return "pass", detail


def check_modules(names):
    # The loader's own test, read from each file's header (importing them all would keep
    # their interned names in a 64K heap): "M", the .mpy major version, small-int bits.
    import sys

    major = sys.implementation._mpy & 0xFF
    header = bytearray(4)
    for name in names:
        top = "/" + name.split(".")[0]
        try:
            if os.stat(top)[0] & 0x4000:
                # "" precedes /lib on sys.path: the folder would be imported instead.
                return "fail", "folder %s hides module %s: rename or move the folder" % (top, name)
        except OSError:
            pass
        path = "/lib/" + name.replace(".", "/") + ".mpy"
        try:
            with open(path, "rb") as f:
                f.readinto(header)
        except OSError:
            continue  # kept as source (main.py)
        if header[0] != 0x4D or header[1] != major:
            return (
                "fail",
                "%s is .mpy v%d, this MicroPython loads v%d: wrong MicroPython version"
                % (
                    path,
                    header[1],
                    major,
                ),
            )
    # One real import proves the loader accepts them.
    try:
        __import__(names[0])
    except ValueError as exc:
        return "fail", "module %s does not load (%s): wrong MicroPython version" % (names[0], exc)
    except Exception as exc:
        return "fail", "module %s does not import: %r" % (names[0], exc)
    return "pass", "%d modules match .mpy v%d" % (len(names), major)


def check_journal():
    try:
        from dzcore.journal.journal import Journal
    except ImportError as exc:
        return "n/a", "not available: %s" % (exc,)
    _rmtree(_SCRATCH)
    os.mkdir(_SCRATCH)
    try:
        first = Journal(_SCRATCH, _JOURNAL_TEST_BUDGET)
        first.mount()
        seq = first.append("d", {"ev": "selftest"})
        first.commit()
        del first
        gc.collect()
        # A second instance recovers from what is on flash, as after a power cut.
        again = Journal(_SCRATCH, _JOURNAL_TEST_BUDGET)
        again.mount()
        items = again.peek(seq, 1, 1024)[0]
        if again.next_seq != seq + 1 or not items or items[0][0] != seq:
            return "fail", "journal did not recover record %d after remount" % seq
        return "pass", "append, sync, remount, peek (epoch %d)" % again.epoch
    except Exception as exc:
        return "fail", "journal on %s: %r" % (_SCRATCH, exc)
    finally:
        _rmtree(_SCRATCH)


def check_clock():
    start = time.ticks_ms()
    time.sleep_ms(20)
    if time.ticks_diff(time.ticks_ms(), start) < 10:
        return "fail", "the tick counter does not advance"
    year = time.gmtime()[0]
    if year < _MIN_YEAR:
        # Not a failure: the agent sets the clock from the collector's first ack (DESIGN 1.3).
        return "pass", "ticks run; wall clock unset (year %d): set by the first ack" % year
    return "pass", "ticks run; wall clock %d-%02d-%02d" % time.gmtime()[:3]


def check_board():
    try:
        from board import Board

        board = Board()
        up = board.link_up()
        signal = board.signal()
    except Exception as exc:
        return "fail", "board adapter: %r" % (exc,)
    if not isinstance(signal, dict):
        return "fail", "signal is not readable: %r" % (signal,)
    parts = ["%s=%s" % (k, signal[k]) for k in sorted(signal)]
    return "pass", "link %s; signal %s" % ("up" if up else "down", " ".join(parts))


def _load_config(path):
    # The agent's own reader when the firmware has it (it refuses unknown keys).
    # (optional: firmware without the uplink has no config module)
    try:
        from dzcore.uplink import config
    except ImportError:
        with open(path) as f:
            return json.load(f)
    return config.load(path)


def check_credentials(config_path, dev):
    try:
        config = _load_config(config_path)
    except Exception as exc:
        return "fail", "config %s refused: %s" % (config_path, exc)
    if config.get("dev") != dev:
        return "fail", "config names device %r, expected %r" % (config.get("dev"), dev)
    try:
        size = os.stat("/secrets/hmac.key")[6]
    except OSError:
        return "fail", "no /secrets/hmac.key"
    if size != 32:
        return "fail", "/secrets/hmac.key is %d bytes, expected 32" % size
    with open("/secrets/hmac.key", "rb") as f:
        slot = f.read()
    if config.get("key") != "".join("%02x" % b for b in slot):
        return "fail", "the config's key differs from /secrets/hmac.key"
    return "pass", "device %s; HMAC key present" % dev


_ERRNO_TEXT = {110: "timed out", 111: "connection refused", 113: "no route to host"}


def _why(exc):
    code = exc.args[0] if exc.args else None
    if not isinstance(code, int):
        return repr(exc)
    if code < 0:  # getaddrinfo failures are negative on lwIP and unix
        return "host name not resolved"
    return _ERRNO_TEXT.get(code, repr(exc))


def _field(text):
    data = text.encode()
    return bytes((len(data) >> 8, len(data) & 0xFF)) + data


def _connect_packet(client_id, user=None, password=None):
    # MQTT 3.1.1 CONNECT, clean session, keepalive 10 s; the config's username/password
    # when the device uses the broker's password listener, sent as the agent sends them
    # (mqtt_codec.connect), so that the broker's answer is the one the agent will get.
    flags = 0x02
    tail = b""
    if user is not None:
        flags |= 0x80
        tail += _field(user)
    if password is not None:
        flags |= 0x40
        tail += _field(password)
    var = b"\x00\x04MQTT\x04" + bytes((flags,)) + b"\x00\x0a" + _field(client_id) + tail
    n = len(var)  # remaining length, MQTT varint (at most two bytes here)
    head = bytes((0x10, n)) if n < 128 else bytes((0x10, (n & 0x7F) | 0x80, n >> 7))
    return head + var


def check_broker(config_path, dev):
    import socket

    try:
        config = _load_config(config_path)
        tls, host, port = bool(config.get("tls")), config["host"], int(config["port"])
    except Exception as exc:
        return "fail", "no usable broker in config: %r" % (exc,)
    url = "%s://%s:%d" % ("mqtts" if tls else "mqtt", host, port)
    creds = None
    if tls:
        # The agent's own TLS path: the credential slots, the board's wrap_tls (CA, broker
        # name, client certificate), so a wrong CA or a revoked device fails here, not later.
        try:
            from dzcore.uplink import tlscreds

            creds = tlscreds.load(config.get("secrets") or "/secrets")
        except Exception as exc:
            return "fail", "TLS credentials: %s" % (exc,)
    sock = socket.socket()
    conn = sock
    how = ""
    try:
        sock.settimeout(_BROKER_TIMEOUT_S)
        sock.connect(socket.getaddrinfo(host, port)[0][-1])
        if creds is not None:
            from board import Board

            try:
                conn = Board().wrap_tls(sock, host, _BROKER_TIMEOUT_S * 1000, creds)
            except (OSError, ValueError) as exc:
                return "fail", "TLS handshake with %s failed: %s" % (url, str(exc).strip()[:60])
            sock.settimeout(_BROKER_TIMEOUT_S)  # wrap_tls leaves it non-blocking for asyncio
            how = ", TLS verified"
        conn.write(_connect_packet(dev + "-selftest", config.get("user"), config.get("password")))
        reply = conn.read(4)
        conn.write(b"\xe0\x00")  # DISCONNECT
    except OSError as exc:
        return "fail", "broker %s unreachable from the device: %s" % (url, _why(exc))
    finally:
        conn.close()
        if conn is not sock:
            sock.close()
    if not reply or len(reply) < 4 or reply[0] != 0x20:
        return "fail", "broker %s did not answer MQTT CONNECT" % url
    if reply[3] != 0:
        return "fail", "broker %s refused the connection (CONNACK code %d)" % (url, reply[3])
    return "pass", "%s answers MQTT CONNECT%s" % (url, how)


def run(dev, modules, min_free, config_path="/config.json"):
    results = []
    checks = (
        ("filesystem", check_fs, ()),
        ("room", check_room, (min_free,)),
        ("journal", check_journal, ()),
        ("firmware", check_modules, (modules,)),
        ("credentials", check_credentials, (config_path, dev)),
        ("clock", check_clock, ()),
        ("link/signal", check_board, ()),
        ("broker", check_broker, (config_path, dev)),
    )
    for name, check, args in checks:
        gc.collect()
        try:
            status, detail = check(*args)
        except Exception as exc:
            status, detail = "fail", "self-test error: %r" % (exc,)
        results.append([name, status, detail])
    return results


def main(dev, modules, min_free, config_path="/config.json"):
    print("DZ-SELFTEST " + json.dumps(run(dev, modules, min_free, config_path)))
