# The agent's configuration: a JSON file on the board's flash (`/config.json`), written at
# flashing time. Missing keys take the defaults below; a file that is missing or malformed
# leaves the agent unable to upload (it still journals), and says so on the console.
import json

DEFAULTS = {  # type: dict
    "dev": None,  # terminal serial, [A-Za-z0-9_-]{4,32}: MQTT client id and topic level
    "host": "127.0.0.1",  # broker
    "port": 1883,
    "tls": False,
    "secrets": "/secrets",  # credential slots: ca.pem, client.crt, client.key (tlscreds.py)
    "time_floor": None,  # last known wall time file (timefloor.py); None: <journal dir>.time
    "user": None,
    "password": None,
    "key": None,  # per-device HMAC key, hex; batches are signed when present
    "keepalive_s": 60,
    "connect_ms": 15000,  # per stage of a connection attempt
    "ack_timeout_s": 30,
    "window": 4,  # batches in flight
    "batch_records": 64,
    "batch_bytes": 8192,
    "backoff_base_ms": 1000,
    "backoff_cap_ms": 300000,
    "stable_s": 60,
    "hb_s": 300,
    "probe_s": 3600,
    "signal_s": 900,
    "ota_trial_s": 600,  # a new version must connect and get an ack within this (DESIGN §1.6)
    "ota_gap_ms": 200,  # pause between update windows: receipts first on a slow link
    "ota_window": 4,  # update chunks asked at once (640 bytes each held until staged)
    "scale": 1,  # agent time / real time: simulated days in tests only
}

_DEV_CHARS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-"


class ConfigError(Exception):
    pass


def valid_dev(dev):
    return isinstance(dev, str) and 4 <= len(dev) <= 32 and all(c in _DEV_CHARS for c in dev)


def from_dict(data):
    cfg = dict(DEFAULTS)
    for key in data:
        if key not in DEFAULTS:
            raise ConfigError("config: unknown key %r" % key)
        cfg[key] = data[key]
    if not valid_dev(cfg["dev"]):
        raise ConfigError("config: dev %r must be 4-32 of [A-Za-z0-9_-]" % (cfg["dev"],))
    for key, default in DEFAULTS.items():
        if isinstance(default, int) and not isinstance(default, bool):
            if not isinstance(cfg[key], int) or cfg[key] < 0:
                raise ConfigError("config: %s must be a non-negative integer" % key)
    if cfg["batch_bytes"] > 8192 or cfg["batch_bytes"] < 1024:
        raise ConfigError("config: batch_bytes must be 1024..8192")
    # MQTT carries the keepalive in 16 bits, and 0 would switch off the broker's check while
    # the client would still declare the link dead at once: the device needs it on.
    if not 1 <= cfg["keepalive_s"] <= 65535:
        raise ConfigError("config: keepalive_s must be 1..65535")
    for key in ("user", "password"):
        if cfg[key] is not None and not isinstance(cfg[key], str):
            raise ConfigError("config: %s must be a string" % key)
    # MQTT-3.1.2-22: a password without a user name is malformed; every broker refuses it.
    if cfg["password"] is not None and cfg["user"] is None:
        raise ConfigError("config: password given without user")
    if cfg["scale"] < 1:
        raise ConfigError("config: scale must be >= 1")
    if not 1 <= cfg["ota_window"] <= 16:  # the host serves at most 16 chunks a fetch
        raise ConfigError("config: ota_window must be 1..16")
    return cfg


def load(path="/config.json"):
    try:
        with open(path) as f:
            data = json.load(f)
    except OSError as exc:
        raise ConfigError("config: cannot read %s (%s)" % (path, exc))
    except ValueError as exc:
        raise ConfigError("config: %s is not JSON (%s)" % (path, exc))
    if not isinstance(data, dict):
        raise ConfigError("config: %s must hold a JSON object" % path)
    return from_dict(data)
