# Network diagnostics as journal records (DESIGN §1.2 `k = "d"`): which stage of a connection
# failed and why (`link_down`), how long the outage lasted (`link_up`), and periodic `probe`
# (stage times, MQTT ping round trip) and `signal` samples. They go through the journal like
# receipts, so they reach the collector after the outage they describe; the journal commits
# them lazily and caps them (its diag policy), so a long outage cannot wear or fill the flash.
#
# One `link_down` per outage and per change of failing stage, not one per attempt: a device
# retrying for a day writes a handful of records; `link_up.tries` says how many attempts it took.


class NetDiag:
    def __init__(self, journal, clock, board):
        self.journal = journal
        self.clock = clock
        self.board = board
        self.is_up = False
        # The link counts as down from power-on until the first good connection.
        self.down_since = clock.up_ms()
        self.tries = 0
        self._stage = None
        self.times = {}  # stage times of the last dial: dns_ms tcp_ms tls_ms
        self.dropped = 0  # records the journal refused (it counts its own overflow too)

    def record(self, body):
        try:
            self.journal.append("d", body, self.clock.now(), self.clock.up_ms())
        except Exception:  # a diagnostic must never take the uplink down with it
            self.dropped += 1

    def boot(self, cause):
        self.record({"ev": "boot", "cause": cause})

    def failed(self, stage, why):
        self.tries += 1
        if self.is_up:
            self.is_up = False
            self.down_since = self.clock.up_ms()
        elif stage == self._stage:
            return
        self._stage = stage
        self.record({"ev": "link_down", "stage": stage, "why": why[:40]})
        self.sample_signal()

    def up(self):
        if self.is_up:
            return
        down_ms = self.clock.up_ms() - self.down_since
        self.record({"ev": "link_up", "down_ms": down_ms, "tries": self.tries})
        # The outage's story (link_down, signal, link_up) is worth one flash commit per
        # outage: it goes up now instead of with the next receipt or the periodic commit.
        try:
            self.journal.commit()
        except OSError:
            self.dropped += 1
        self.is_up = True
        self.tries = 0
        self._stage = None

    def probe(self, rtt_ms):
        body = {"ev": "probe"}
        for key in ("dns_ms", "tcp_ms", "tls_ms"):
            if key in self.times:
                body[key] = self.times[key]
        if rtt_ms is not None:
            body["rtt_ms"] = rtt_ms
        self.record(body)

    def sample_signal(self):
        sig = self.board.signal()
        body = {"ev": "signal"}
        for key in sig:
            body[key] = sig[key]
        self.record(body)
