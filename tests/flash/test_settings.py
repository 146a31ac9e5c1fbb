"""`daozhang flash --set KEY=VALUE`: only the agent's timers and sizes, within limits, refused
before anything is written; and the table agrees with the agent's own config reader."""

from __future__ import annotations

import importlib.util
import json

import pytest
from daozhang.errors import UsageError
from daozhang.flash.layout import config_file
from daozhang.flash.settings import TUNABLE, parse_settings
from daozhang.paths import FIRMWARE


def test_settings_are_parsed_and_the_last_of_a_key_wins() -> None:
    got = parse_settings(["hb_s=120", " keepalive_s = 30 ", "hb_s=600"])
    assert got == {"hb_s": 600, "keepalive_s": 30}
    assert parse_settings([]) == {}


@pytest.mark.parametrize(
    ("pair", "message"),
    [
        ("port=1883", "unknown agent setting 'port'"),
        ("dev=POS1", "unknown agent setting 'dev'"),
        ("hb_s", "expected KEY=VALUE"),
        ("=5", "expected KEY=VALUE"),
        ("hb_s=fast", "'fast' is not an integer"),
        ("hb_s=1.5", "'1.5' is not an integer"),
        ("hb_s=0", "hb_s must be an integer in 1..86400, not 0"),
        ("batch_bytes=9000", "batch_bytes must be an integer in 1024..8192"),
        ("window=-1", "window must be an integer in 1..16"),
        # MQTT allows 0 (off) to 65535; the agent needs it on (docs/design.md §1.4).
        ("keepalive_s=0", "keepalive_s must be an integer in 5..3600, not 0"),
        ("keepalive_s=65536", "keepalive_s must be an integer in 5..3600, not 65536"),
    ],
)
def test_bad_settings_are_refused_naming_the_option(pair: str, message: str) -> None:
    with pytest.raises(UsageError, match="--set") as caught:
        parse_settings([pair])
    assert message in str(caught.value)


def test_a_backoff_base_above_its_cap_is_refused() -> None:
    with pytest.raises(UsageError, match="backoff_base_ms must not exceed backoff_cap_ms"):
        parse_settings(["backoff_base_ms=9000", "backoff_cap_ms=8000"])


def test_settings_replace_the_devices_own_and_identity_is_never_a_setting() -> None:
    old = {"dev": "OLD1", "host": "h", "port": 1, "hb_s": 30, "probe_s": 7200}
    body = config_file("dev0001", "mqtt://b:1883", b"\x01" * 32, old, {"hb_s": 120}).data
    config = json.loads(body)
    assert config["hb_s"] == 120 and config["probe_s"] == 7200  # tuned before: kept
    assert config["dev"] == "dev0001" and config["host"] == "b" and config["port"] == 1883


def test_every_tunable_key_is_an_agent_integer_whose_default_is_within_the_limits() -> None:
    spec = importlib.util.spec_from_file_location(
        "agent_config", FIRMWARE / "dzcore" / "uplink" / "config.py"
    )
    assert spec is not None and spec.loader is not None
    agent_config = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(agent_config)
    defaults = agent_config.DEFAULTS
    for key, (low, high) in TUNABLE.items():
        assert isinstance(defaults.get(key), int), key
        assert low <= defaults[key] <= high, key
        # The agent takes every value the flash tool lets through.
        agent_config.from_dict({"dev": "POS0001", key: low})
        agent_config.from_dict({"dev": "POS0001", key: high})


def test_the_agent_refuses_what_the_flash_tool_refuses_at_the_mqtt_limits() -> None:
    spec = importlib.util.spec_from_file_location(
        "agent_config", FIRMWARE / "dzcore" / "uplink" / "config.py"
    )
    assert spec is not None and spec.loader is not None
    agent_config = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(agent_config)
    for keepalive in (0, 65536):
        with pytest.raises(agent_config.ConfigError, match=r"keepalive_s must be 1\.\.65535"):
            agent_config.from_dict({"dev": "POS0001", "keepalive_s": keepalive})
    # user and password are not --set keys; a device config holding a password alone is
    # refused by the agent and so by the flash self-test (MQTT-3.1.2-22).
    assert "password" not in TUNABLE and "user" not in TUNABLE
    with pytest.raises(agent_config.ConfigError, match="password given without user"):
        agent_config.from_dict({"dev": "POS0001", "password": "pw"})
