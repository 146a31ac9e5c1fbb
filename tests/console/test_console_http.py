"""The console's access rules over plain HTTP against the real server: logins, roles, CSRF
on every POST, the login rate limit, the session cookie's flags."""

from __future__ import annotations

import httpx
import pytest
from daozhang.console.app import build_app

from tests.console import fleet_data
from tests.console.server import PASSWORD, add_user, console, csrf_of, login


def client(base_url: str) -> httpx.Client:
    return httpx.Client(base_url=base_url, follow_redirects=False, timeout=30)


def test_every_page_needs_a_login_but_healthz(base_url: str) -> None:
    with client(base_url) as c:
        assert c.get("/healthz").text == "ok"
        for path in ("/", "/fleet", "/device/DEVA0001", "/admin/users", "/fleet?problem=ok"):
            reply = c.get(path)
            assert reply.status_code == 303, path
            assert reply.headers["location"].startswith("/login?next="), path
        assert c.get("/fleet/live").status_code == 401


def test_login_sets_a_signed_httponly_samesite_cookie(base_url: str) -> None:
    with client(base_url) as c:
        reply = login(c, "wang")
        assert reply.status_code == 303 and reply.headers["location"] == "/fleet"
        cookie = reply.headers["set-cookie"].lower()
        assert "httponly" in cookie and "samesite=lax" in cookie
        page = c.get("/fleet")
        assert page.status_code == 200 and "设备 Fleet" in page.text
        # A forged cookie (another user's name, no valid signature) is nobody.
        forged = httpx.Client(base_url=base_url, cookies={"dz_console": "eyJ1c2VyIjoiemhhbyJ9"})
        assert forged.get("/fleet", follow_redirects=False).status_code == 303


def test_wrong_password_and_unknown_name_are_refused_alike(base_url: str) -> None:
    with client(base_url) as c:
        for name, password in (("wang", "not the password"), ("nobody", PASSWORD)):
            reply = login(c, name, password)
            assert reply.status_code == 401
            assert "用户名或密码错误 wrong name or password" in reply.text
            assert c.get("/fleet").status_code == 303  # still not logged in


def post_routes() -> list[str]:
    """Every POST route the application has: found, not listed by hand."""
    app = build_app(lambda: None, "x" * 32)  # type: ignore[arg-type,return-value]
    return sorted({r.path for r in app.routes if "POST" in (getattr(r, "methods", None) or ())})


def test_every_post_without_the_csrf_token_is_refused(base_url: str, db_url: str) -> None:
    paths = post_routes()
    assert {"/login", "/logout", "/admin/users"} <= set(paths)
    with client(base_url) as c:
        # Without a token, with a wrong one: even a correct password does not log in.
        no_token = {"name": "zhao", "password": PASSWORD}
        assert c.post("/login", data=no_token).status_code == 403
        c.get("/login")
        assert c.post("/login", data={**no_token, "csrf": "forged"}).status_code == 403
        assert login(c, "zhao").status_code == 303  # the admin, who may post everywhere
        for path in paths:
            form = {"name": "mallory", "role": "admin", "password": "x" * 12}
            assert c.post(path, data=form).status_code == 403, path
        users = c.get("/admin/users").text
        assert "mallory" not in users
        # With the token the same form works, and the new user can log in.
        reply = c.post("/admin/users", data={**form, "name": "sun", "csrf": csrf_of(users)})
        assert reply.status_code == 303
        assert "sun" in c.get("/admin/users").text
        reply = c.post("/logout", data={"csrf": csrf_of(c.get("/fleet").text)})
        assert reply.status_code == 303 and c.get("/fleet").status_code == 303


@pytest.mark.parametrize(("name", "admin_page"), [("wang", 403), ("li", 403), ("zhao", 200)])
def test_only_admins_see_the_admin_pages(base_url: str, name: str, admin_page: int) -> None:
    with client(base_url) as c:
        assert login(c, name).status_code == 303
        assert c.get("/fleet").status_code == 200
        assert c.get("/device/DEVA0001").status_code == 200
        reply = c.get("/admin/users")
        assert reply.status_code == admin_page
        if admin_page == 403:
            assert "不允许 Not allowed" in reply.text
            no = c.post(
                "/admin/users",
                data={
                    "name": "x",
                    "role": "admin",
                    "password": "y" * 12,
                    "csrf": csrf_of(reply.text),
                },
            )
            assert no.status_code == 403


def test_login_rate_limit(db_url: str) -> None:
    # Its own server: the failures it makes must not lock out the other tests' logins.
    with console(db_url) as base, client(base) as c:
        for _ in range(5):
            assert login(c, "li", "guess guess guess").status_code == 401
        reply = login(c, "li")  # the right password, too late
        assert reply.status_code == 429
        assert int(reply.headers["retry-after"]) > 0
        assert "尝试次数过多" in reply.text and "too many attempts" in reply.text
        assert login(c, "wang").status_code == 303  # another name from here still may


def test_user_add_refuses_a_bad_role_or_short_password(db_url: str) -> None:
    bad_role = add_user(db_url, "qian", "root")
    assert bad_role.returncode == 2 and "invalid choice" in bad_role.stderr
    short = add_user(db_url, "qian", "fleet", "short")
    assert short.returncode == 2
    assert short.stderr.startswith("daozhang: password: at least 10")
    twice = add_user(db_url, "wang", "fleet")
    assert twice.returncode == 2 and "exists already" in twice.stderr


def test_device_history_over_24_hours_7_days_and_30_days(base_url: str) -> None:
    with client(base_url) as c:
        assert login(c, "wang").status_code == 303
        for range_name, buckets in (("24h", 24), ("7d", 28), ("30d", 30)):
            page = c.get(f"/device/{fleet_data.HEALTHY}", params={"range": range_name})
            assert page.status_code == 200, range_name
            body = page.text.split('id="heartbeats"')[1].split("<tbody>")[1].split("</tbody>")[0]
            # Whole buckets: one more when now is past a bucket boundary.
            assert body.count("<tr>") in (buckets, buckets + 1), range_name
            assert 'data-stage="dns"' in page.text  # the outage an hour ago, in every range
        assert c.get(f"/device/{fleet_data.HEALTHY}", params={"range": "1y"}).status_code == 404
