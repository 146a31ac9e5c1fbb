"""Mosquitto listeners and ACL for a fleet, built from a PKI directory.

- TLS listener: `require_certificate true` + `use_identity_as_username true`: the username is
  the client certificate's CN, whatever the client sends; `crlfile` refuses revoked devices.
- Optional password listener (TLS server auth only) for boards that cannot hold a client
  certificate: the username comes from the password file.
- One ACL for both, written with `%u` patterns: a device publishes only under `dz/v1/<its id>/`
  (`up`, `hb`, `status`, `reply`: a command's answer, `fetch`: a request for an update's
  bytes) and reads only its own `ack`, `cmd` and `ota` (update offers and chunks).
  Collector identities (`collector.NAME`) read every device's uploads and answers and write
  acks and commands.
- Every listener replaces the client id a client sends by its identity
  (`use_username_as_clientid`): MQTT gives a session to whoever connects with its client id and
  drops the holder, so without this a device knowing another's id could knock it offline again
  and again and take its queued acks. Hence one identity per collector process: a second
  process with the same certificate takes the first one's session over.
- The size limit (`max_packet_size`: an 8 KB batch, its MAC and the PUBLISH header) is written
  for every broker, these listeners included, by `Mosquitto.config_text`
  (daozhang/broker/mosquitto.py), which `daozhang broker` uses too.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from daozhang.security.pki import Pki

DEVICE_WRITES = ("up", "hb", "status", "reply", "fetch")
DEVICE_READS = ("ack", "cmd", "ota")


def acl_text(collectors: list[str]) -> str:
    lines = [
        "# Written by `daozhang broker`; regenerated at every start. %u = the identity:",
        "# the client certificate's CN on the TLS listener, the username on the password one.",
    ]
    lines += [f"pattern write dz/v1/%u/{leaf}" for leaf in DEVICE_WRITES]
    lines += [f"pattern read dz/v1/%u/{leaf}" for leaf in DEVICE_READS]
    for name in collectors:
        lines += ["", f"user {name}"]
        lines += [f"topic read dz/v1/+/{leaf}" for leaf in DEVICE_WRITES]
        lines += [f"topic write dz/v1/+/{leaf}" for leaf in DEVICE_READS]
    return "\n".join(lines) + "\n"


@dataclass
class FleetListeners:
    """Listener lines for `Mosquitto`; `tls=False` keeps identity and ACLs on plain TCP
    (password listener only, for a laptop without TLS on the board: never in the field)."""

    pki: Pki
    workdir: Path
    tls: bool = True
    password_port: int | None = None  # None: no password listener; 0: pick a free port
    bind: str = "127.0.0.1"
    collectors: list[str] = field(default_factory=list)
    # Mosquitto started as root drops to user `mosquitto`, which cannot read keys (0600) in a
    # private folder; the project's own brokers keep the caller's user. `--user` overrides.
    run_as: str | None = field(default_factory=lambda: "root" if os.geteuid() == 0 else None)

    @property
    def scheme(self) -> str:
        return "mqtts" if self.tls else "mqtt"

    def _files(self) -> tuple[Path, Path | None]:
        self.workdir.mkdir(parents=True, exist_ok=True)
        acl = self.workdir / "acl"
        collectors = self.collectors or [
            name
            for name, entry in self.pki.identities().items()
            if entry["role"] == "collector" and not entry.get("revoked")
        ]
        acl.write_text(acl_text(sorted(collectors)))
        if self.password_port is None and self.tls:
            return acl, None
        return acl, self.pki.ensure_password_file()

    def lines(self, port: int) -> list[str]:
        from daozhang.ports import free_port

        acl, password_file = self._files()
        lines = [
            "per_listener_settings false",
            "allow_anonymous false",
            f"acl_file {acl}",
        ]
        if self.run_as:
            lines.append(f"user {self.run_as}")
        if password_file is not None:
            lines.append(f"password_file {password_file}")
        server_tls = [
            f"cafile {self.pki.ca_cert_path}",
            f"certfile {self.pki.server_cert_path}",
            f"keyfile {self.pki.server_key_path}",
            "tls_version tlsv1.2",
        ]
        if self.tls:
            lines += [
                f"listener {port} {self.bind}",
                *server_tls,
                f"crlfile {self.pki.crl_path}",
                "require_certificate true",
                "use_identity_as_username true",
                "use_username_as_clientid true",
            ]
            if self.password_port is not None:
                self.password_port = self.password_port or free_port()
                lines += [
                    f"listener {self.password_port} {self.bind}",
                    *server_tls,
                    "use_username_as_clientid true",
                ]
        else:
            self.password_port = port
            lines += [f"listener {port} {self.bind}", "use_username_as_clientid true"]
        return lines
