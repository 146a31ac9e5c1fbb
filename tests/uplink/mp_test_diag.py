# netdiag records, the heartbeat map, commands and the config file, against fakes.
import asyncio

import cbor
import config
from clock import Clock
from commands import Commands
from fake_journal import Journal
from fake_mqtt import FakeMQTT
from fake_ticks import FakeTicks
from heartbeat import Heartbeat
from mptest import check, equal, raises
from netdiag import NetDiag


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
        for key in (
            "v",
            "dev",
            "t",
            "epoch",
            "fw",
            "boot",
            "up",
            "cause",
            "heap",
            "jrec",
            "jbytes",
            "jold_s",
            "next_seq",
            "ovf",
            "link",
            "sig",
            "recon",
            "sync_ok",
            "sync_fail",
            "conn_ms",
            "exp_ms",
        ):
            check(key in body, "heartbeat has " + key)
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


def test_commands_flush_report_set_within_bounds():
    async def main():
        cfg = dict(config.DEFAULTS)
        uplink = _Uplink()
        sent = []

        class _Hb:
            async def send(self):
                sent.append(1)

        cmds = Commands(cfg, uplink.uploader, _Hb())
        check(cmds.handle(cbor.encode({"op": "flush"})), "flush")
        equal(uplink.uploader.kicked, 1, "uploader kicked")
        check(cmds.handle(cbor.encode({"op": "report"})), "report")
        await asyncio.sleep_ms(0)
        equal(sent, [1], "heartbeat sent")
        check(cmds.handle(cbor.encode({"op": "set", "hb_s": 60, "signal_s": 600})), "set")
        equal((cfg["hb_s"], cfg["signal_s"]), (60, 600), "applied")
        check(not cmds.handle(cbor.encode({"op": "set", "hb_s": 5})), "below bounds")
        check(not cmds.handle(cbor.encode({"op": "set", "hb_s": 60, "port": 1})), "unknown key")
        check(not cmds.handle(cbor.encode({"op": "set", "probe_s": "60"})), "not an int")
        check(not cmds.handle(b"\xff"), "garbage")
        check(not cmds.handle(cbor.encode({"op": "reboot"})), "unknown op")
        equal(cfg["hb_s"], 60, "a refused set changes nothing")
        equal(cmds.refused, 5, "refusals counted")

    asyncio.run(main())


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
