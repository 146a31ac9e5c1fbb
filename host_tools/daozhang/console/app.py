"""The console's routes: one Starlette application, pages rendered on the server (Jinja2).

Every route but `/healthz` and the login form needs a logged-in user of a given role
(`_user`); every POST reads its form through `guard.checked_form` (CSRF). The store is opened
per request through the `connect` the command hands in, in a worker thread: a SQLite
connection belongs to the thread that opened it, and a page must not hold the event loop while
it reads.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlencode

from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.sessions import SessionMiddleware
from starlette.requests import Request
from starlette.responses import (
    HTMLResponse,
    JSONResponse,
    PlainTextResponse,
    RedirectResponse,
    Response,
)
from starlette.routing import Route

from daozhang.alerts.silence import add_silence, end_silence
from daozhang.console import guard
from daozhang.console.alertview import SILENCE_HOURS, alerts_view, silence_form
from daozhang.console.cellview import CELL_DOWN_TERMINALS, cells_view
from daozhang.console.deviceview import RANGES, device_view
from daozhang.console.finder import lookup, parse_query
from daozhang.console.fleetview import Fleet, fleet_rows, fleet_view
from daozhang.console.moneyview import Money, finding_row, money_of, money_view, refused_row
from daozhang.console.snapshot import Snapshot
from daozhang.console.updateview import halt_from_page, updates_view
from daozhang.console.users import (
    ROLES,
    User,
    add_user,
    check_password,
    dummy_hash,
    get_user,
    list_users,
)
from daozhang.console.words import SOURCE, beijing, duration
from daozhang.errors import UsageError
from daozhang.store import Store

T = TypeVar("T")
Connect = Callable[[], Store]

ROLE_WORDS = {"fleet": "设备运维 fleet", "support": "客服 support", "admin": "管理员 admin"}
RANGE_WORDS = {"24h": "24小时 24 h", "7d": "7天 7 d", "30d": "30天 30 d"}
MONEY_FILTERS = ("cause", "acquirer", "day")
SESSION_COOKIE = "dz_console"
SESSION_MAX_AGE_S = 12 * 3600  # one working day; then log in again
# The money page's classification is recomputed at most this often: settlement files and
# payouts arrive a few times a day, and a large store takes minutes to classify.
MONEY_MIN_AGE_S = 60.0

_TEMPLATES = Path(__file__).parent / "templates"


class LoginNeeded(Exception):
    """Raised by `_user` when nobody is logged in: a page redirects to the login form."""


class Console:
    def __init__(
        self,
        connect: Connect,
        now: Callable[[], float] = time.time,
        poll_ms: int = 3000,
        limiter: guard.LoginLimiter | None = None,
    ) -> None:
        self.connect = connect
        self.now = now
        self.poll_ms = poll_ms
        self.limiter = limiter or guard.LoginLimiter()
        self.snapshot = Snapshot(self._fleet_rows, min_age_s=poll_ms / 1000)
        self.money_snapshot = Snapshot(self._money, min_age_s=MONEY_MIN_AGE_S)
        self.env = Environment(
            loader=FileSystemLoader(_TEMPLATES),
            autoescape=select_autoescape(("html",), default_for_string=True),
        )
        self.env.globals.update(
            beijing=beijing,
            duration=duration,
            role_words=ROLE_WORDS,
            range_words=RANGE_WORDS,
            source_words=SOURCE,
        )

    # -- plumbing -----------------------------------------------------------------------------
    async def db(self, fn: Callable[..., T], *args: Any) -> T:
        """`fn(store, *args)` in a worker thread, on a store opened for it alone."""

        def call() -> T:
            with self.connect() as store:
                return fn(store, *args)

        return await run_in_threadpool(call)

    def _fleet_rows(self) -> Fleet:
        with self.connect() as store:
            return fleet_rows(store, self.now())

    def _money(self) -> Money:
        with self.connect() as store:
            return money_of(store, self.now())

    async def _user(self, request: Request, role: str) -> User:
        name = guard.session_user(request)
        user = await self.db(get_user, name) if isinstance(name, str) else None
        if user is None:
            raise LoginNeeded()
        if not user.may(role):
            raise guard.forbidden(user, role)
        return user

    def render(
        self,
        request: Request,
        template: str,
        status: int = 200,
        headers: dict[str, str] | None = None,
        **context: Any,
    ) -> HTMLResponse:
        nonce = secrets.token_urlsafe(16)
        html = self.env.get_template(template).render(
            nonce=nonce, csrf=guard.csrf_token(request), **context
        )
        return HTMLResponse(html, status, headers={**_headers(nonce), **(headers or {})})

    # -- routes -------------------------------------------------------------------------------
    async def healthz(self, request: Request) -> Response:
        return PlainTextResponse("ok")

    async def login_form(self, request: Request) -> Response:
        return self.render(request, "login.html", user=None, next=_local(request.query_params))

    async def login(self, request: Request) -> Response:
        form = await guard.checked_form(request)
        name, password = str(form.get("name", "")), str(form.get("password", ""))
        target = _local(form)
        client = guard.client_of(request)
        wait = self.limiter.retry_after(client, name)
        if wait > 0:
            minutes = max(1, round(wait / 60))
            return self.render(
                request,
                "login.html",
                status=429,
                headers={"Retry-After": str(int(wait) + 1)},
                user=None,
                next=target,
                error=f"尝试次数过多，请{minutes}分钟后再试 too many attempts: try again in"
                f" {minutes} min",
            )
        user = await self.db(check_password, name, password)
        if user is None:
            self.limiter.failed(client, name)
            return self.render(
                request,
                "login.html",
                status=401,
                user=None,
                next=target,
                error="用户名或密码错误 wrong name or password",
            )
        self.limiter.succeeded(client, name)
        guard.start_session(request, user)
        return RedirectResponse(target, 303)

    async def logout(self, request: Request) -> Response:
        await guard.checked_form(request)
        request.session.clear()
        return RedirectResponse("/login", 303)

    async def home(self, request: Request) -> Response:
        await self._user(request, "fleet")
        return RedirectResponse("/fleet", 303)

    async def fleet(self, request: Request) -> Response:
        user = await self._user(request, "fleet")
        filters = _filters(request)
        fleet = await self.snapshot.get()
        view = fleet_view(fleet, filters)
        return self.render(
            request,
            "fleet.html",
            user=user,
            view=view,
            filters=filters,
            problem=filters["problem"],
            query=_query_maker(filters),
            updated=beijing(fleet.at, seconds=True),
            poll_ms=self.poll_ms,
        )

    async def fleet_live(self, request: Request) -> Response:
        try:
            await self._user(request, "fleet")
        except LoginNeeded:
            return JSONResponse({"error": "login needed"}, 401)
        filters = _filters(request)
        fleet = await self.snapshot.get()
        view = fleet_view(fleet, filters)
        context = {"view": view, "problem": filters["problem"], "query": _query_maker(filters)}
        return JSONResponse(
            {
                "rows_html": self.env.get_template("_fleet_rows.html").render(context),
                "counts_html": self.env.get_template("_fleet_counts.html").render(context),
                "shown_html": self.env.get_template("_fleet_shown.html").render(context),
                "updated": beijing(fleet.at, seconds=True),
                "devices": [r.dev for r in view.rows],
            },
            headers={"Cache-Control": "no-store"},
        )

    async def device(self, request: Request) -> Response:
        user = await self._user(request, "fleet")
        dev = request.path_params["dev"]
        range_name = request.query_params.get("range", "24h")
        if range_name not in RANGES:
            raise HTTPException(404, f"no range {range_name!r}: {', '.join(RANGES)}")
        now = self.now()
        status = next((r for r in (await self.snapshot.get()).rows if r.dev == dev), None)
        if status is None:  # a device newer than the snapshot
            status = next((r for r in (await self.snapshot.fresh()).rows if r.dev == dev), None)
        if status is None:
            raise HTTPException(404, f"no device {dev!r} in the store")
        view = await self.db(device_view, dev, now, range_name)
        return self.render(
            request, "device.html", user=user, view=view, device=status, ranges=list(RANGES)
        )

    async def cells(self, request: Request) -> Response:
        user = await self._user(request, "fleet")
        range_name = request.query_params.get("range", "24h")
        if range_name not in RANGES:
            raise HTTPException(404, f"no range {range_name!r}: {', '.join(RANGES)}")
        view = await self.db(cells_view, self.now(), range_name, RANGES[range_name][0])
        return self.render(
            request,
            "cells.html",
            user=user,
            view=view,
            ranges=list(RANGES),
            down_at_least=CELL_DOWN_TERMINALS,
        )

    async def money(self, request: Request) -> Response:
        user = await self._user(request, "support")
        q = request.query_params
        chosen = {k: q[k] for k in ("cause", "acquirer", "day") if q.get(k)}
        money = await self.money_snapshot.get()
        view = await run_in_threadpool(money_view, money, *(chosen.get(k) for k in MONEY_FILTERS))

        def query(**change: str) -> str:
            return urlencode({**chosen, **change})

        return self.render(
            request, "money.html", user=user, view=view, chosen=chosen, query=query, form={}
        )

    async def money_lookup(self, request: Request) -> Response:
        user = await self._user(request, "support")
        form = dict(request.query_params)
        try:
            question = parse_query(form)
        except UsageError as exc:
            return self.render(
                request, "lookup.html", status=400, user=user, form=form, error=str(exc)
            )
        found = await self.db(lookup, question, self.now())
        return self.render(
            request,
            "lookup.html",
            user=user,
            form=form,
            found=True,
            as_of=beijing(found.as_of),
            rows=[finding_row(f) for f in found.findings],
            refused=[refused_row(q, body) for q, body in found.refused],
            more=found.more,
        )

    async def users(self, request: Request) -> Response:
        user = await self._user(request, "admin")
        return self.render(
            request, "users.html", user=user, users=await self.db(list_users), roles=ROLES
        )

    async def users_add(self, request: Request) -> Response:
        user = await self._user(request, "admin")
        form = await guard.checked_form(request)
        try:
            await self.db(
                add_user,
                str(form.get("name", "")),
                str(form.get("role", "")),
                str(form.get("password", "")),
            )
        except UsageError as exc:
            return self.render(
                request,
                "users.html",
                status=400,
                user=user,
                users=await self.db(list_users),
                roles=ROLES,
                error=str(exc),
            )
        return RedirectResponse("/admin/users", 303)

    async def alerts(self, request: Request, error: str = "", status: int = 200) -> Response:
        user = await self._user(request, "fleet")
        view = await self.db(alerts_view, self.now())
        return self.render(
            request,
            "alerts.html",
            status=status,
            user=user,
            view=view,
            hours=SILENCE_HOURS,
            error=error,
        )

    async def alerts_silence(self, request: Request) -> Response:
        user = await self._user(request, "fleet")
        form = await guard.checked_form(request)
        try:
            rule, subject, span = silence_form(
                str(form.get("rule", "")),
                str(form.get("subject", "")),
                str(form.get("hours", "")),
                str(form.get("reason", "")),
            )
        except UsageError as exc:
            return await self.alerts(request, error=str(exc), status=400)
        now = self.now()
        reason = str(form.get("reason", "")).strip()
        await self.db(add_silence, rule, subject, now + span, reason, user.name, now)
        return RedirectResponse("/alerts", 303)

    async def alerts_unsilence(self, request: Request) -> Response:
        await self._user(request, "fleet")
        form = await guard.checked_form(request)
        text = str(form.get("id", ""))
        if not text.isdigit() or await self.db(end_silence, int(text), self.now()) is None:
            raise HTTPException(404, f"no silence {text!r}")
        return RedirectResponse("/alerts", 303)

    async def updates(
        self, request: Request, error: str = "", status: int = 200, chosen: str = ""
    ) -> Response:
        user = await self._user(request, "fleet")
        text = chosen or request.query_params.get("rollout", "")
        if text and not text.isdigit():
            raise HTTPException(404, f"no rollout {text!r}")
        try:
            view = await self.db(updates_view, int(text) if text else None)
        except LookupError:
            raise HTTPException(404, f"no rollout {text!r}") from None
        return self.render(
            request, "updates.html", status=status, user=user, view=view, error=error
        )

    async def updates_halt(self, request: Request) -> Response:
        user = await self._user(request, "fleet")
        form = await guard.checked_form(request)
        text = str(form.get("rollout", ""))
        if not text.isdigit():
            raise HTTPException(404, f"no rollout {text!r}")
        try:
            await self.db(halt_from_page, int(text), str(form.get("why", "")), user.name)
        except UsageError as exc:
            return await self.updates(request, error=str(exc), status=400, chosen=text)
        return RedirectResponse(f"/updates?rollout={text}", 303)

    # -- errors -------------------------------------------------------------------------------
    async def login_needed(self, request: Request, exc: Exception) -> Response:
        return RedirectResponse("/login?" + urlencode({"next": request.url.path}), 303)

    async def http_error(self, request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        titles = {403: "不允许 Not allowed", 404: "没有找到 Not found"}
        user = None
        name = guard.session_user(request)
        if isinstance(name, str):
            user = await self.db(get_user, name)
        return self.render(
            request,
            "error.html",
            status=exc.status_code,
            user=user,
            title=titles.get(exc.status_code, str(exc.status_code)),
            detail=exc.detail,
        )


def _headers(nonce: str) -> dict[str, str]:
    return {
        # Only this page's own inline style and script (by nonce); nothing from elsewhere.
        "Content-Security-Policy": (
            f"default-src 'none'; style-src 'nonce-{nonce}'; script-src 'nonce-{nonce}';"
            " connect-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none';"
            " base-uri 'none'"
        ),
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "same-origin",
        "Cache-Control": "no-store",
    }


def _local(params: Any) -> str:
    """Where to go after a login: a path on this console only (never `//elsewhere`)."""
    target = str(params.get("next") or "/fleet")
    return target if target.startswith("/") and not target.startswith("//") else "/fleet"


FLEET_FILTERS = ("problem", "merchant", "acquirer", "firmware")


def _filters(request: Request) -> dict[str, str | None]:
    q = request.query_params
    return {k: q.get(k) or None for k in FLEET_FILTERS}


def _query_maker(filters: dict[str, str | None]) -> Callable[..., str]:
    def query(**change: str | None) -> str:
        params = {**filters, **change}
        return urlencode({k: v for k, v in params.items() if v})

    return query


def build_app(
    connect: Connect,
    secret: str,
    *,
    now: Callable[[], float] = time.time,
    poll_ms: int = 3000,
    secure_cookie: bool = False,
    limiter: guard.LoginLimiter | None = None,
) -> Starlette:
    """The ASGI application; `secure_cookie` when it is served over HTTPS (behind a proxy)."""
    dummy_hash()  # before the first login, so that none waits longer for an unknown name
    console = Console(connect, now=now, poll_ms=poll_ms, limiter=limiter)
    routes = [
        Route("/healthz", console.healthz),
        Route("/login", console.login_form, methods=["GET"]),
        Route("/login", console.login, methods=["POST"]),
        Route("/logout", console.logout, methods=["POST"]),
        Route("/", console.home),
        Route("/fleet", console.fleet),
        Route("/fleet/live", console.fleet_live),
        Route("/device/{dev}", console.device),
        Route("/cells", console.cells),
        Route("/alerts", console.alerts, methods=["GET"]),
        Route("/alerts/silence", console.alerts_silence, methods=["POST"]),
        Route("/alerts/unsilence", console.alerts_unsilence, methods=["POST"]),
        Route("/updates", console.updates, methods=["GET"]),
        Route("/updates/halt", console.updates_halt, methods=["POST"]),
        Route("/money", console.money),
        Route("/money/lookup", console.money_lookup),
        Route("/admin/users", console.users, methods=["GET"]),
        Route("/admin/users", console.users_add, methods=["POST"]),
    ]
    middleware = [
        Middleware(
            SessionMiddleware,
            secret_key=secret,
            session_cookie=SESSION_COOKIE,
            max_age=SESSION_MAX_AGE_S,
            same_site="lax",
            https_only=secure_cookie,
        )
    ]
    return Starlette(
        routes=routes,
        middleware=middleware,
        exception_handlers={
            LoginNeeded: console.login_needed,
            HTTPException: console.http_error,
        },
    )
