# The connection supervisor: connect stage by stage, run one MQTT session (reader, keepalive,
# uploader, link watch) until any part of it fails, journal why, back off, and again.
import asyncio

from dzcore.uplink.backoff import Backoff
from dzcore.uplink.dial import StageFailed, dial
from dzcore.uplink.mqtt import ConnectRefused, MQTTClient
from dzcore.uplink.mqtt_codec import MQTTError
from dzcore.uplink.tlscreds import CertTimeError
from dzcore.uplink.uploader import AckTimeout
from micropython import const

_WATCH_MS = const(1000)


class Uplink:
    def __init__(self, board, cfg, clock, uploader, diag, rand32, ticks_ms, ticks_diff):
        self.board = board
        self.cfg = cfg
        self.clock = clock
        self.uploader = uploader
        self.diag = diag
        self._ticks = ticks_ms
        self._diff = ticks_diff
        self.dev = cfg["dev"]
        self.client = MQTTClient(self.dev, ticks_ms, ticks_diff, cfg["keepalive_s"])
        self.client.on_message = self._on_message
        self.client.on_skipped = self._on_skipped
        self.backoff = Backoff(rand32, cfg["backoff_base_ms"], cfg["backoff_cap_ms"])
        self.on_cmd = None  # (payload) -> None, set by the agent
        self.stale_cmds = 0  # retained commands replayed by the broker, not run
        self.connected = False
        self.reconnects = 0  # sessions started after the first
        self.sessions = 0
        self._conn_total = 0
        self._conn_since = 0
        self._acked_once = False
        self.acks = 0  # acks received since power-on: the first confirms a version on trial
        self._ack_topic = self.topic("ack").encode()
        self.creds = None  # tlscreds.Credentials when cfg["tls"] (set by the agent)
        self.floor = None  # timefloor.TimeFloor: last known wall time, persisted
        self._provisional = False  # TLS opened on the time floor alone: re-check when set
        self._cmd_topic = self.topic("cmd").encode()
        self.mac = None  # HMAC256 of the device's key (set by the agent): status is signed
        self._attempts = 0  # CONNECTs tried this boot: the status counter's last part
        self._ota_topic = self.topic("ota").encode()
        self.on_ota = None  # (payload) -> None: offers and chunks of an update (DESIGN §1.6)

    def topic(self, leaf):
        return "dz/v1/%s/%s" % (self.dev, leaf)

    def connected_ms(self):
        total = self._conn_total
        if self.connected:
            total += self.clock.up_ms() - self._conn_since
        return total

    # -- messages from the broker -----------------------------------------------------------
    def _on_message(self, topic, payload, qos, retain):
        if topic == self._ack_topic:
            now = self.uploader.on_ack(payload)
            self._acked_once = True
            self.acks += 1
            if now:
                step = self.clock.set(now, "ack")
                if step is not None:
                    self.diag.record({"ev": "clock", "step_s": step, "src": "ack"})
        elif topic == self._cmd_topic and self.on_cmd is not None:
            # A broker sends the retained message again, RETAIN set, with every SUBSCRIBE
            # (MQTT-3.3.1-8), so on every reconnect; a command published while we were
            # subscribed or queued in our session comes with RETAIN clear (MQTT-3.3.1-9).
            # A retained copy is therefore old news: run, it would run once per reconnect.
            if retain:
                self.stale_cmds += 1
            else:
                self.on_cmd(bytes(payload))

        elif topic == self._ota_topic and self.on_ota is not None and not retain:
            self.on_ota(bytes(payload))

    def _on_skipped(self, topic, size):
        # Read past and PUBACKed by the client (larger than its buffer); said once here.
        leaf = bytes(topic).rsplit(b"/", 1)[-1].decode()
        self.diag.record({"ev": "rx_skipped", "topic": leaf[:8], "bytes": size})

    # -- one session ------------------------------------------------------------------------
    async def _open(self):
        cfg = self.cfg
        self._attempts += 1
        sock = await dial(
            self.board,
            cfg["host"],
            cfg["port"],
            self._tls_creds() if cfg["tls"] else None,
            cfg["connect_ms"],
            self.diag.times,
            self._ticks,
            self._diff,
        )
        try:
            await self.client.connect(
                sock,
                will=(self.topic("status"), self._status(b"offline"), 1, True),
                user=cfg.get("user"),
                password=cfg.get("password"),
                timeout_ms=cfg["connect_ms"],
            )
            await self.client.subscribe(
                [(self.topic("ack"), 0), (self.topic("cmd"), 1), (self.topic("ota"), 1)],
                cfg["connect_ms"],
            )
            await self.client.publish(self.topic("status"), self._status(b"online"), 1, True)
        except ConnectRefused as exc:
            raise StageFailed("mqtt", "refused %d" % exc.code)
        except (MQTTError, OSError) as exc:
            raise StageFailed("mqtt", str(exc)[:40] or "closed")

    def _status(self, word):
        # A keyed device signs its status with a counter that only goes up: journal epoch,
        # boot, this CONNECT attempt (a failed one may have left its LWT behind). A recorded
        # status then cannot be replayed (DESIGN §2.0). The LWT is signed here too, at
        # CONNECT, as the `offline` of this very attempt.
        if self.mac is None:
            return word
        journal = self.uploader.journal
        body = b"%s %d.%d.%d" % (word, journal.epoch, journal.boot, self._attempts)
        return body + self.mac.digest(body)

    def _tls_creds(self):
        # The certificates' dates against the best time there is; no time, no TLS session.
        if self.creds is None:
            raise StageFailed("tls", "no credentials")
        now = self.clock.now()
        if self.floor is not None:
            self.floor.note(now)
        try:
            self._provisional = not self.creds.check_time(
                now, self.floor.value if self.floor else 0
            )
        except CertTimeError as exc:
            raise StageFailed("tls", str(exc))
        return self.creds

    def _recheck_tls(self):
        now = self.clock.now()
        if self.floor is not None:
            self.floor.note(now)
        creds = self.creds
        if self._provisional and now and creds is not None:
            self._provisional = False
            try:
                creds.check_time(now, 0)
            except CertTimeError as exc:
                raise StageFailed("tls", str(exc))

    async def _watch(self):
        # Link loss reported by the board, the first ack (or nothing to send) = link up, and
        # the backoff reset once the connection has been stable.
        start = self.clock.up_ms()
        stable_ms = self.cfg["stable_s"] * 1000
        while True:
            await asyncio.sleep_ms(_WATCH_MS)
            if not self.board.link_up():
                raise StageFailed("link", "lost")
            self._recheck_tls()
            if not self.diag.is_up and (self._acked_once or not self.uploader.inflight):
                self.diag.up()
            if self.backoff.tries and self.clock.up_ms() - start >= stable_ms:
                self.backoff.reset()

    async def _serve(self):
        failure = []
        done = asyncio.Event()

        async def guard(coro):
            try:
                await coro
            except Exception as exc:  # the first failure ends the session; it is re-raised
                failure.append(exc)
                done.set()

        tasks = [
            asyncio.create_task(guard(self.client.run())),
            asyncio.create_task(guard(self.client.keepalive())),
            asyncio.create_task(guard(self.uploader.pump(self.client, self.topic("up")))),
            asyncio.create_task(guard(self._watch())),
        ]
        try:
            await done.wait()
        finally:
            for task in tasks:
                task.cancel()
        raise failure[0]

    async def session(self):
        # One attempt; returns (stage, why) when it ends, which it always does.
        self._acked_once = False
        try:
            await self._open()
            self.connected = True
            self._conn_since = self.clock.up_ms()
            if self.sessions:
                self.reconnects += 1
            self.sessions += 1
            await self._serve()
        except StageFailed as exc:
            stage, why = exc.stage, exc.why
        except AckTimeout as exc:
            stage, why = "ack", str(exc)[:40]
        except (MQTTError, OSError) as exc:
            stage, why = "mqtt", str(exc)[:40] or type(exc).__name__
        except Exception as exc:
            # A bug (a bad message handled wrongly) must not stop uploads for good: the
            # session ends, the reason is journaled, and the next session starts clean.
            stage, why = "mqtt", "bug %s" % type(exc).__name__
        finally:
            self.client.close()
            if self.connected:
                self._conn_total += self.clock.up_ms() - self._conn_since
            self.connected = False
        self.diag.failed(stage, why)
        return stage, why

    async def run(self):
        while True:
            await self.session()
            await asyncio.sleep_ms(self.backoff.next_ms())
