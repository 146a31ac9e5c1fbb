"""Mosquitto password files, written without shelling out to `mosquitto_passwd`.

Mosquitto 2.0 accepts `user:$7$ITER$SALT$HASH` lines: PBKDF2-HMAC-SHA512, base64 salt and hash.
Writing the format ourselves keeps `daozhang pki` usable on a machine without the broker
installed (the PKI is often kept on the operator's laptop, the broker on a server).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
from pathlib import Path

from daozhang.errors import InputError

_ITERATIONS = 101  # mosquitto_passwd's default; the password itself is 144 random bits
_SALT_BYTES = 12


def hash_password(password: str, salt: bytes | None = None, iterations: int = _ITERATIONS) -> str:
    salt = os.urandom(_SALT_BYTES) if salt is None else salt
    digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, iterations)
    b64 = base64.b64encode
    return f"$7${iterations}${b64(salt).decode()}${b64(digest).decode()}"


def check_password(password: str, stored: str) -> bool:
    try:
        _, kind, iterations, salt, digest = stored.split("$")
        if kind != "7":
            return False
        expected = base64.b64decode(digest)
        got = hashlib.pbkdf2_hmac(
            "sha512", password.encode(), base64.b64decode(salt), int(iterations)
        )
    except ValueError:
        return False
    return hmac.compare_digest(expected, got)


def read_password_file(path: Path) -> dict[str, str]:
    entries: dict[str, str] = {}
    if not path.exists():
        return entries
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        user, sep, stored = line.partition(":")
        if not sep or not stored.startswith("$7$"):
            raise InputError(f"{path}:{number}: not a mosquitto $7$ password line")
        entries[user] = stored
    return entries


def render_password_file(entries: dict[str, str]) -> str:
    return "".join(f"{user}:{stored}\n" for user, stored in sorted(entries.items()))
