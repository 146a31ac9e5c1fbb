# netdiag records, the heartbeat map and the config file, against fakes.
# These run from source, and compiling them with the modules they test needs a little more
# than 64K on the 64-bit unix port (it passed in 64K with under 2K to spare; the package's
# names and modules, about 1K, took the rest), so they take 96K. The agent's own 64K object
# budget is measured on compiled code (tests/uplink/test_uplink_e2e.py).
import asyncio

from dzcore import cbor
from dzcore.uplink import config
from dzcore.uplink.clock import Clock
from dzcore.uplink.heartbeat import Heartbeat
from dzcore.uplink.hmac256 import HMAC256
from dzcore.uplink.netdiag import NetDiag
from fake_journal import Journal
from fake_mqtt import FakeMQTT
from fake_ticks import FakeTicks
from mptest import check, equal, heap, raises


class _Board:
    def signal(self):
        return {"rat": "lte", "rsrp": -101, "reg": 1}


class _Uploader:
    def __init__(self):
        self.sync_ok = 0
        self.sync_fail = 0
        self.kicked = 0

    def kick(self):
        self.kicked += 1


class _Uplink:
    def __init__(self):
        self.uploader = _Uploader()
        self.client = FakeMQTT()
        self.connected = True
        self.reconnects = 0
        self.conn = 0

    def connected_ms(self):
        return self.conn

    def topic(self, leaf):
        return "dz/v1/dev-0001/" + leaf


def _diag_bodies(journal):
    items, _, _ = journal.peek(1, 100, 1 << 20)
    return [cbor.decode(rec)["b"] for _, rec in items]


@heap("96K")
def test_link_down_once_per_outage_and_stage_then_link_up():
    ticks = FakeTicks()
    clock = Clock(ticks.ticks_ms, ticks.ticks_diff)
    journal = Journal()
    journal.mount()
    diag = NetDiag(journal, clock, _Board())
    diag.up()  # first connection, 5 s after boot
    ticks.advance(1000)
    diag.failed("tcp", "errno 111")
    ticks.advance(1000)
    for _ in range(5):
        diag.failed("tcp", "errno 111")  # retries at the same stage: counted, not journaled
    diag.failed("dns", "errno -2")  # a different stage: journaled
    ticks.advance(60000)
    diag.up()
    bodies = [b for b in _diag_bodies(journal) if b["ev"] != "signal"]
    equal(
        bodies,
        [
            {"ev": "link_up", "down_ms": 0, "tries": 0},
            {"ev": "link_down", "stage": "tcp", "why": "errno 111"},
            {"ev": "link_down", "stage": "dns", "why": "errno -2"},
            {"ev": "link_up", "down_ms": 61000, "tries": 7},
        ],
        "diag records",
    )
    signals = [b for b in _diag_bodies(journal) if b["ev"] == "signal"]
    equal(len(signals), 2, "a signal sample with each link_down")
    equal(signals[0], {"ev": "signal", "rat": "lte", "rsrp": -101, "reg": 1}, "signal record")
    diag.times.update({"dns_ms": 12, "tcp_ms": 80, "tls_ms": 0})
    diag.probe(95)
    equal(
        _diag_bodies(journal)[-1],
        {"ev": "probe", "dns_ms": 12, "tcp_ms": 80, "tls_ms": 0, "rtt_ms": 95},
        "probe",
    )


@heap("96K")
def test_heartbeat_fields_and_deltas():
    async def main():
        ticks = FakeTicks()
        clock = Clock(ticks.ticks_ms, ticks.ticks_diff)
        clock.set(1763780000, "ntp")
        journal = Journal()
        journal.mount()
        for i in range(3):
            journal.append("r", {"trc": "%06d" % i}, 1763780000 - 120, 0)
        uplink = _Uplink()
        hb = Heartbeat("dev-0001", journal, clock, _Board(), uplink, "watchdog")
        ticks.advance(300000)
        uplink.reconnects = 2
        uplink.uploader.sync_ok = 5
        uplink.conn = 250000
        check(await hb.send(), "sent")
        topic, payload, qos = uplink.client.sent[0]
        equal((topic, qos), ("dz/v1/dev-0001/hb", 0), "topic, QoS 0")
        body = cbor.decode(payload)
        # Its keys are the contract's: tests/uplink/test_uplink_e2e.py compares them.
        equal(
            (body["jrec"], body["jold_s"], body["cause"], body["link"]),
            (3, 420, "watchdog", "up"),
            "journal and state",
        )
        equal(
            (body["recon"], body["sync_ok"], body["conn_ms"], body["exp_ms"]),
            (2, 5, 250000, 300000),
            "counters since the previous heartbeat",
        )
        ticks.advance(300000)
        uplink.conn = 550000
        await hb.send()
        body = cbor.decode(uplink.client.sent[1][1])
        equal(
            (body["recon"], body["sync_ok"], body["conn_ms"], body["exp_ms"]),
            (0, 0, 300000, 300000),
            "deltas",
        )
        uplink.connected = False
        check(not await hb.send(), "not sent while down")

    asyncio.run(main())


@heap("96K")
def test_a_keyed_devices_heartbeat_carries_the_batch_hmac():
    async def main():
        ticks = FakeTicks()
        clock = Clock(ticks.ticks_ms, ticks.ticks_diff)
        journal = Journal()
        journal.mount()
        uplink = _Uplink()
        key = bytes(range(32))
        hb = Heartbeat("dev-0001", journal, clock, _Board(), uplink, "power_on", HMAC256(key))
        check(await hb.send(), "sent")
        payload = uplink.client.sent[0][1]
        body, tag = payload[:-32], payload[-32:]
        equal(tag, HMAC256(key).digest(body), "HMAC-SHA256 over the CBOR, appended")
        equal(cbor.decode(body)["dev"], "dev-0001", "the heartbeat itself")

    asyncio.run(main())


@heap("96K")
def test_config_defaults_and_clear_errors():
    cfg = config.from_dict({"dev": "POS-0042", "host": "10.0.0.2"})
    equal((cfg["dev"], cfg["port"], cfg["hb_s"]), ("POS-0042", 1883, 300), "defaults")
    err = raises(config.ConfigError, config.from_dict, {"dev": "x"})
    check("dev" in str(err), str(err))
    err = raises(config.ConfigError, config.from_dict, {"dev": "POS-0042", "hb": 3})
    check("unknown key 'hb'" in str(err), str(err))
    err = raises(config.ConfigError, config.from_dict, {"dev": "POS-0042", "port": "1883"})
    check("port" in str(err), str(err))
    err = raises(config.ConfigError, config.load, "/nonexistent/config.json")
    check("cannot read" in str(err), str(err))


@heap("96K")
def test_config_refuses_a_password_without_user_and_keepalive_out_of_range():
    base = {"dev": "POS-0042"}
    cfg = config.from_dict(dict(base, user="POS-0042", password="pw", keepalive_s=65535))
    equal((cfg["user"], cfg["password"]), ("POS-0042", "pw"), "user and password")
    # MQTT-3.1.2-22: every broker refuses a password without a user name.
    err = raises(config.ConfigError, config.from_dict, dict(base, password="pw"))
    check("password given without user" in str(err), str(err))
    for bad in (0, 65536):
        err = raises(config.ConfigError, config.from_dict, dict(base, keepalive_s=bad))
        check("keepalive_s must be 1..65535" in str(err), str(err))
    err = raises(config.ConfigError, config.from_dict, dict(base, user=7))
    check("user must be a string" in str(err), str(err))


@heap("256K")  # compiling selftest.py from source
def test_selftest_refuses_a_password_without_user():
    import selftest

    path = "/tmp/dz-selftest-password-without-user.json"
    with open(path, "w") as f:
        f.write('{"dev": "POS-0042", "password": "pw"}')
    status, detail = selftest.check_credentials(path, "POS-0042")
    equal(status, "fail", detail)
    check("password given without user" in detail, detail)
    status, detail = selftest.check_broker(path, "POS-0042")
    equal(status, "fail", detail)
    check("password given without user" in detail, detail)
    # What the self-test sends is what the agent sends: a user with an empty password too.
    packet = selftest._connect_packet("d", "u", "")
    equal(packet[9] & 0xC0, 0xC0, "user and password flags")


@heap("256K")  # compiling uplink.py and what it imports from source, not the agent's objects
def test_uplink_runs_no_retained_command_and_journals_a_skipped_message():
    from dzcore.uplink.uplink import Uplink

    ticks = FakeTicks()
    clock = Clock(ticks.ticks_ms, ticks.ticks_diff)
    journal = Journal()
    diag = NetDiag(journal, clock, _Board())
    cfg = config.from_dict({"dev": "dev-0001"})
    up = Uplink(
        _Board(), cfg, clock, _Uploader(), diag, lambda: 4, ticks.ticks_ms, ticks.ticks_diff
    )
    ran = []
    up.on_cmd = ran.append
    topic = b"dz/v1/dev-0001/cmd"
    up.client.on_message(topic, memoryview(b"live"), 1, 0)
    # The broker replays a retained command, RETAIN set, on every SUBSCRIBE (every reconnect).
    up.client.on_message(topic, memoryview(b"old"), 1, 1)
    up.client.on_message(topic, memoryview(b"old"), 1, 1)
    equal(ran, [b"live"], "only the live command ran")
    equal(up.stale_cmds, 2, "retained copies counted")
    up.client.on_skipped(topic, 4118)
    equal(_diag_bodies(journal), [{"ev": "rx_skipped", "topic": "cmd", "bytes": 4118}], "diag")
