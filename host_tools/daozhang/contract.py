"""The wire contract's vocabulary, declared once (docs/design.md §1.2 and §1.3).

Record, receipt, diagnostic and heartbeat keys with their types and allowed values. The
collector's checks and the settlement rows are written from these tables; the firmware keeps
its own compact copies (it runs in 64 KB and cannot import this), and `tests/test_contract.py`
fails when any copy, or the design document, changes alone.
"""

from __future__ import annotations

# --- records (§1.2) ---------------------------------------------------------------------
RECORD_KEYS = ("seq", "k", "t", "boot", "up", "b")
RECORD_KINDS = {"r": "receipt", "d": "diagnostic"}
MAX_RECORD_BYTES = 512
MAX_BATCH_BYTES = 8192  # the batch itself; a keyed device adds a 32-byte MAC

# --- receipts (`k = "r"`) -----------------------------------------------------------------
TXN_TYPES = (
    "sale",
    "void",
    "refund",
    "preauth",
    "preauth_void",
    "preauth_done",
    "preauth_done_void",
)
RECEIPT_STATES = (
    "approved",
    "declined",
    "no_response",
    "reversal_pending",
    "reversed",
    "reversal_failed",
    "voided",
    "offline_pending",
    "offline_sent",
)
# The money path (DESIGN §2.3): the receipts whose money an acquirer's payout must bring. A
# sale or completion, approved (or taken offline); or undone at the terminal (reversed, no
# answer) yet settled by the acquirer, which only a settlement row with an RRN can say.
WAITING_TYPES = ("sale", "preauth_done")
MONEY_STATES = ("approved", "offline_sent", "offline_pending")
UNDONE_STATES = ("reversed", "reversal_failed", "no_response", "reversal_pending")


def may_wait(typ: object, st: object, rrn: object) -> int:
    """1 when a receipt, from its own fields, may be waiting on its acquirer's payout
    (`receipts.waits`, kept as `may_wait_sql` says); 0 when it never can."""
    if typ not in WAITING_TYPES:
        return 0
    return int(st in MONEY_STATES or (st in UNDONE_STATES and rrn is not None))


def may_wait_sql(typ: str, st: str, rrn: str) -> str:
    """`may_wait` as SQL over three column expressions (`excluded.typ`, ...)."""

    def listed(values: tuple[str, ...]) -> str:
        return "(" + ", ".join(f"'{v}'" for v in values) + ")"

    return (
        f"CASE WHEN {typ} IN {listed(WAITING_TYPES)} AND ({st} IN {listed(MONEY_STATES)}"
        f" OR ({st} IN {listed(UNDONE_STATES)} AND {rrn} IS NOT NULL)) THEN 1 ELSE 0 END"
    )


CHANNELS = ("card", "qr")
CARD_KINDS = ("D", "C", "U")
REVERSAL_REASONS = ("98", "96", "A0", "06")
SETTLE_MODES = ("T1", "D1", "D0")  # also a settlement file's `settle_type`

RECEIPT_ENUMS: dict[str, tuple[str, ...]] = {
    "typ": TXN_TYPES,
    "st": RECEIPT_STATES,
    "ch": CHANNELS,
    "ck": CARD_KINDS,
    "rv": REVERSAL_REASONS,
    "sm": SETTLE_MODES,
}

# Character classes of the fixed-length text fields.
DIGITS = "digits"
ALNUM = "alnum"  # ASCII letters and digits
MMDD = "mmdd"  # a month and a day, digits
CURRENCY = "currency"  # ISO 4217: three capitals or three digits
DIGIT_CLASSES = (DIGITS, MMDD)

# key -> (length, character class)
RECEIPT_TEXT: dict[str, tuple[int, str]] = {
    "mid": (15, ALNUM),
    "tid": (8, ALNUM),
    "bat": (6, DIGITS),
    "trc": (6, DIGITS),
    "cur": (3, CURRENCY),
    "ent": (3, DIGITS),
    "rc": (2, ALNUM),
    "rrn": (12, ALNUM),
    "auth": (6, ALNUM),
    "sd": (4, MMDD),
    "otrc": (6, DIGITS),
    "orrn": (12, ALNUM),
}
# Optional ids of variable length (DESIGN §2.3): `ord` the merchant's order number, `xid` the
# channel's transaction id (WeChat, Alipay, UnionPay's queryId), 1 to N printable ASCII
# characters (0x21-0x7e). QR and wallet sales carry no RRN; these join them to the acquirer's
# rows. A run of 13-19 digits standing alone in one is taken for a card number (masked by the
# terminal, refused by the collector when Luhn-valid); longer runs (28-digit ids) are not.
RECEIPT_IDS: dict[str, int] = {"ord": 64, "xid": 64}
# `pan`: masked, first 6 digits, a `*` for each middle digit, last 4 (13-19 characters).
MASKED_PAN_KEY = "pan"
# key -> highest value (non-negative integers): fen; unix seconds.
RECEIPT_INTS: dict[str, int] = {"amt": 10**15, "lt": 2**40}
RECEIPT_REQUIRED = ("mid", "tid", "bat", "trc", "typ", "amt", "st")
NATURAL_KEY = ("mid", "tid", "bat", "trc")

# --- diagnostics (`k = "d"`, key `ev`) ---------------------------------------------------
LINK_STAGES = ("link", "dhcp", "dns", "tcp", "tls", "mqtt", "ack")
RATS = ("wifi", "lte", "gsm")
BOOT_CAUSES = ("power_on", "watchdog", "brownout", "soft", "crash", "unknown")
CLOCK_SOURCES = ("ntp", "ack", "modem")

DIAG_EVENTS: dict[str, tuple[str, ...]] = {
    "link_down": ("stage", "why"),
    "link_up": ("down_ms", "tries"),
    "probe": ("dns_ms", "tcp_ms", "tls_ms", "rtt_ms"),
    "signal": ("rat", "rssi", "csq", "rsrp", "rsrq", "sinr", "reg", "cell", "sim"),
    "boot": ("cause",),
    "clock": ("step_s", "src"),
    "overflow": ("count", "kind"),
    "lost": ("from", "to", "why"),
    "pan_violation": ("count",),
    "rx_skipped": ("topic", "bytes"),
    "cmd_refused": ("why", "n"),
    "ota": ("st", "why", "ver"),
}
DIAG_ENUMS: dict[str, tuple[str, ...]] = {
    "stage": LINK_STAGES,
    "rat": RATS,
    "cause": BOOT_CAUSES,
    "src": CLOCK_SOURCES,
}
# non-negative integers
DIAG_COUNTS = ("down_ms", "tries", "count", "from", "to", "bytes", "n")
# signed 32-bit integers
DIAG_READINGS = (
    "dns_ms",
    "tcp_ms",
    "tls_ms",
    "rtt_ms",
    "rssi",
    "csq",
    "rsrp",
    "rsrq",
    "sinr",
    "step_s",
)
DIAG_TEXTS = ("why", "kind", "topic", "st", "ver")  # short texts
MAX_DIAG_TEXT = 64
REGISTRATION_STATES = range(6)  # `reg`, 3GPP: 0-5

# --- heartbeats (§1.3, `dz/v1/{dev}/hb`) -------------------------------------------------
HEARTBEAT_KEYS = (
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
    "jcap",
    "next_seq",
    "ovf",
    "link",
    "sig",
    "recon",
    "sync_ok",
    "sync_fail",
    "conn_ms",
    "exp_ms",
    "ota",
)
HEARTBEAT_TEXTS = ("fw", "cause", "ota")
# Keys a heartbeat carries only sometimes: `ota` while an update is offered or under way.
HEARTBEAT_OPTIONAL = ("ota",)
HEARTBEAT_LINK = ("up", "down")
HEARTBEAT_MAP = ("sig",)  # the current signal, keyed as a `signal` diagnostic
HEARTBEAT_INTS = tuple(
    key
    for key in HEARTBEAT_KEYS
    if key not in ("v", "dev", "link", *HEARTBEAT_TEXTS, *HEARTBEAT_MAP)
)

# --- commands (§1.5, `dz/v1/{dev}/cmd` and `dz/v1/{dev}/reply`) --------------------------
COMMAND_OPS = ("flush", "report", "set")
COMMAND_HEADER = ("v", "dev", "n", "op")  # every command; `set` adds its settings beside them
COMMAND_MAX_N = 2**31 - 1  # the per-device counter: a signed 32-bit column, a diag count
# Why a device refused a command (`reply.why`, diag `cmd_refused.why`).
COMMAND_REFUSALS = ("nokey", "mac", "bad", "dev", "replay", "flash", "op", "key", "range")

# The agent's integer settings and the bounds `daozhang flash --set` gives them (the agent's
# own config checks are looser: firmware/dzcore/uplink/config.py).
AGENT_TUNABLE: dict[str, tuple[int, int]] = {
    # Within MQTT's 16 bits and never 0 (off): the agent refuses outside 1..65535.
    "keepalive_s": (5, 3600),
    "connect_ms": (1000, 120_000),
    "ack_timeout_s": (1, 3600),
    "window": (1, 16),
    "batch_records": (1, 256),
    "batch_bytes": (1024, 8192),
    "backoff_base_ms": (100, 600_000),
    "backoff_cap_ms": (100, 86_400_000),
    "stable_s": (0, 86_400),
    "hb_s": (1, 86_400),
    "probe_s": (1, 86_400 * 7),
    "signal_s": (1, 86_400),
    # Updates (DESIGN §1.6): the pause between windows of chunks (receipts first on a slow
    # link), the chunks a window asks for (the host serves at most 16), and how long a new
    # version has to connect and get an ack before it is rolled back.
    "ota_gap_ms": (0, 60_000),
    "ota_window": (1, 16),
    "ota_trial_s": (60, 86_400),
}
# The ones a running agent applies at once, so a remote `set` may change them (until the next
# boot); the others size buffers or sessions made at boot and need `daozhang flash --set`.
REMOTE_SETTABLE = ("hb_s", "probe_s", "signal_s")
