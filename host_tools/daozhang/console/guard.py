"""Who may do what: the session's user, CSRF tokens on every POST, and the login rate limit.

The session is Starlette's signed cookie (itsdangerous; HttpOnly, SameSite=Lax) and holds only
the user's name and a CSRF token; the role is read from the store on every request. Every
POST reads its form through `checked_form`, which refuses one without the session's token:
SameSite already stops most cross-site posts, the token stops the rest (an old browser, a
sibling subdomain).
"""

from __future__ import annotations

import hmac
import secrets
import threading
import time
from collections import deque
from typing import Any

from starlette.datastructures import FormData
from starlette.exceptions import HTTPException
from starlette.requests import Request

from daozhang.console.users import User

CSRF_FIELD = "csrf"


def csrf_token(request: Request) -> str:
    """The session's CSRF token, made on first use (the login form has one before a login)."""
    token = request.session.get(CSRF_FIELD)
    if not isinstance(token, str):
        token = secrets.token_urlsafe(32)
        request.session[CSRF_FIELD] = token
    return token


async def checked_form(request: Request) -> FormData:
    """The POST's form, or 403 if it lacks this session's CSRF token."""
    form = await request.form()
    sent = form.get(CSRF_FIELD)
    expected = request.session.get(CSRF_FIELD)
    if not (
        isinstance(sent, str)
        and isinstance(expected, str)
        and hmac.compare_digest(sent.encode(), expected.encode())
    ):
        raise HTTPException(403, "CSRF token missing or wrong: reload the page and try again")
    return form


def start_session(request: Request, user: User) -> None:
    """A fresh session for a login: nothing from before it (a planted cookie) survives."""
    request.session.clear()
    request.session["user"] = user.name
    request.session[CSRF_FIELD] = secrets.token_urlsafe(32)


class LoginLimiter:
    """At most `attempts` failed logins per `window_s`, counted per client address and per
    user name, so that neither one address nor many addresses can guess one password.

    Kept in memory: a console restart forgets it, and each console process counts its own
    (a shared count needs a table the collector's store would write on every failed login).
    """

    def __init__(self, attempts: int = 5, window_s: float = 300.0, per_address: int = 20) -> None:
        self.attempts = attempts
        self.window_s = window_s
        # An office behind one NAT address shares it: the address may fail more often than
        # one name before everyone there is locked out.
        self.per_address = per_address
        self._failures: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def _keys(self, client: str, name: str) -> tuple[str, str]:
        return f"addr:{client}", f"user:{name.lower()}"

    def retry_after(self, client: str, name: str, now: float | None = None) -> float:
        """Seconds until this client or name may try again; 0 if it may now."""
        now = time.monotonic() if now is None else now
        wait = 0.0
        with self._lock:
            for key in self._keys(client, name):
                times = self._failures.get(key)
                if times is None:
                    continue
                while times and times[0] <= now - self.window_s:
                    times.popleft()
                limit = self.per_address if key.startswith("addr:") else self.attempts
                if len(times) >= limit:
                    wait = max(wait, times[0] + self.window_s - now)
        return wait

    def failed(self, client: str, name: str, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        with self._lock:
            for key in self._keys(client, name):
                self._failures.setdefault(key, deque()).append(now)

    def succeeded(self, client: str, name: str) -> None:
        with self._lock:
            self._failures.pop(self._keys(client, name)[1], None)


def forbidden(user: User, role: str) -> HTTPException:
    return HTTPException(403, f"{user.name} ({user.role}) may not open this page: needs {role}")


def client_of(request: Request) -> str:
    return request.client.host if request.client else "?"


def session_user(request: Request) -> Any:
    return request.session.get("user")
