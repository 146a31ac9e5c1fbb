"""Console accounts: a name, one role, an Argon2id password hash (argon2-cffi).

Roles, from least to most: `fleet` (fleet and device pages), `support` (also money and
lookup), `admin` (also users). A role is read from the store on every request, so a change
takes effect at once, not at the next login.
"""

from __future__ import annotations

import functools
import re
import secrets
import time
from dataclasses import dataclass

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from daozhang.errors import UsageError
from daozhang.store import Store

ROLES = ("fleet", "support", "admin")
_NAME = re.compile(r"[A-Za-z0-9_.-]{1,64}")
MIN_PASSWORD = 10

_hasher = PasswordHasher()


@functools.cache
def dummy_hash() -> str:
    """Verifying against this when the name is unknown takes as long as a real check: the
    answer's timing must not tell an attacker which names exist. Made once, when the console
    app is built (build_app), not at import: an Argon2 hash costs every command ~0.4 s."""
    return _hasher.hash("no such user: timing only")


@dataclass(frozen=True)
class User:
    name: str
    role: str

    def may(self, role: str) -> bool:
        """True if this user's role is `role` or above it."""
        return ROLES.index(self.role) >= ROLES.index(role)


def add_user(store: Store, name: str, role: str, password: str) -> User:
    if not _NAME.fullmatch(name):
        raise UsageError(f"user name {name!r}: letters, digits, '_', '.', '-' (1-64)")
    if role not in ROLES:
        raise UsageError(f"role {role!r}: choose one of {', '.join(ROLES)}")
    if len(password) < MIN_PASSWORD:
        raise UsageError(f"password: at least {MIN_PASSWORD} characters")
    with store.transaction() as tx:
        if tx.execute("SELECT 1 FROM console_users WHERE name = ?", (name,)):
            raise UsageError(f"user {name!r} exists already")
        tx.execute(
            "INSERT INTO console_users (name, role, pw_hash, created_at) VALUES (?, ?, ?, ?)",
            (name, role, _hasher.hash(password), time.time()),
        )
    return User(name, role)


def list_users(store: Store) -> list[tuple[User, float]]:
    rows = store.query("SELECT name, role, created_at FROM console_users ORDER BY name")
    return [(User(str(n), str(r)), float(c)) for n, r, c in rows]


def get_user(store: Store, name: str) -> User | None:
    rows = store.query("SELECT name, role FROM console_users WHERE name = ?", (name,))
    return User(str(rows[0][0]), str(rows[0][1])) if rows else None


def check_password(store: Store, name: str, password: str) -> User | None:
    """The user if `password` is theirs, else None (unknown name or wrong password alike)."""
    rows = store.query("SELECT role, pw_hash FROM console_users WHERE name = ?", (name,))
    stored = str(rows[0][1]) if rows else dummy_hash()
    try:
        _hasher.verify(stored, password)
    except (VerificationError, InvalidHashError):
        return None
    return User(name, str(rows[0][0])) if rows else None


def session_secret(store: Store) -> str:
    """The key that signs session cookies, made on first use and kept in the store."""
    with store.transaction() as tx:
        rows = tx.execute("SELECT secret FROM console_secret WHERE id = 1")
        if rows:
            return str(rows[0][0])
        secret = secrets.token_urlsafe(48)
        tx.execute("INSERT INTO console_secret (id, secret) VALUES (1, ?)", (secret,))
        return secret
