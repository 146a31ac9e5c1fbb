"""Cutting a revoked identity's live broker connection (`daozhang pki cut`).

Mosquitto checks a client certificate against the CRL only when the client connects: after
`pki revoke` and SIGHUP, a stolen terminal that is still connected stays connected until its
link drops, which on a good link can be days. MQTT lets one connection hold a client id, and
the broker makes every client id the identity (`use_username_as_clientid`), so a new
connection as the same identity takes the session over and the broker closes the old one.

`cut` makes that connection with a one-off certificate for the identity: signed by the fleet
CA, valid for minutes, written only to a private temporary folder that is deleted at once, and
never recorded as the identity's certificate. It connects with a clean start and session expiry
0, so the revoked identity's session and anything queued for it are gone, and leaves.

First it checks that the broker already refuses the identity's own revoked certificate (when
the PKI still holds it): if the broker has not reloaded the CRL, the terminal would connect
again at once, so `cut` stops and says to send SIGHUP. That check may itself take the session
over, which changes nothing the terminal could not undo.
"""

from __future__ import annotations

import datetime as dt
import os
import ssl
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from daozhang.errors import DaozhangError
from daozhang.security.pki import Pki
from daozhang.security.tlsclient import parse_broker

ONE_OFF_VALIDITY = dt.timedelta(minutes=5)


@dataclass(frozen=True)
class Attempt:
    connected: bool
    why: str  # the refusal, when not connected


def cut_connection(pki: Pki, name: str, broker: str, timeout_s: float = 10.0) -> str:
    """Take `name`'s broker session over and drop it; returns what was done, for the operator."""
    entry = pki.identities().get(name)
    if entry is None:
        raise DaozhangError(f"{name}: no such identity in {pki.root}")
    if not entry.get("revoked"):
        raise DaozhangError(
            f"{name} is not revoked: cutting it would only make it reconnect. Revoke it first"
            f" (daozhang pki revoke {name} --dir {pki.root}), send the broker SIGHUP, then cut."
        )
    if not broker.startswith("mqtts://"):
        raise DaozhangError(f"{broker}: cut needs the broker's certificate listener (mqtts://)")
    host, port = parse_broker(broker)
    own = pki.identity_dir(name)
    checked = ""
    if (own / "client.crt").is_file() and (own / "client.key").is_file():
        probe = attempt(host, port, pki.ca_cert_path, own, timeout_s)
        if probe.connected:
            raise DaozhangError(
                f"the broker at {host}:{port} still accepts {name}'s revoked certificate: send"
                " it SIGHUP (pkill -HUP -x mosquitto) so that it reloads the CRL, then cut again"
            )
        checked = f"; its revoked certificate is refused ({probe.why})"
    else:
        checked = "; it has no certificate here to check the broker's CRL with"
    cert_pem, key_pem = pki.sign_one_off(name, ONE_OFF_VALIDITY)
    with tempfile.TemporaryDirectory(prefix="dz-cut-") as folder:  # created 0700
        one_off = Path(folder)
        _write_private(one_off / "client.crt", cert_pem)
        _write_private(one_off / "client.key", key_pem)
        taken = attempt(host, port, pki.ca_cert_path, one_off, timeout_s)
    if not taken.connected:
        raise DaozhangError(f"could not connect as {name} to take its session over: {taken.why}")
    pki.note_cut(name)
    return f"{name}: its broker session was taken over and closed{checked}"


def _write_private(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)


def attempt(host: str, port: int, ca: Path, identity: Path, timeout_s: float) -> Attempt:
    """Connect with the identity's certificate (clean start, session expiry 0), then leave."""
    context = ssl.create_default_context(cafile=str(ca))
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(str(identity / "client.crt"), str(identity / "client.key"))
    client = mqtt.Client(
        CallbackAPIVersion.VERSION2, client_id="daozhang-cut", protocol=mqtt.MQTTv5
    )
    client.tls_set_context(context)
    answered = threading.Event()
    closed = threading.Event()
    outcome: list[Attempt] = []

    def on_connect(c: Any, u: Any, flags: Any, reason: Any, props: Any) -> None:
        outcome.append(Attempt(not reason.is_failure, str(reason) if reason.is_failure else ""))
        answered.set()

    def on_disconnect(c: Any, u: Any, flags: Any, reason: Any, props: Any) -> None:
        if not outcome:
            outcome.append(Attempt(False, f"disconnected before CONNACK: {reason}"))
        answered.set()
        closed.set()

    client.on_connect = on_connect
    client.on_disconnect = on_disconnect
    expiry = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
    expiry.SessionExpiryInterval = 0
    try:
        client.connect(host, port, keepalive=30, clean_start=True, properties=expiry)
    except ssl.SSLError as exc:
        return Attempt(False, f"TLS: {exc}")
    except OSError as exc:  # nothing to learn about the certificate from a broker not there
        raise DaozhangError(f"cannot reach the broker at {host}:{port}: {exc}") from exc
    client.loop_start()
    try:
        if not answered.wait(timeout_s):
            return Attempt(False, f"no CONNACK within {timeout_s:g} s")
        if outcome[0].connected:
            client.disconnect()
            closed.wait(timeout_s)  # the DISCONNECT has left before the loop stops
        return outcome[0]
    finally:
        client.loop_stop()
