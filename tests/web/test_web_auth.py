"""Login, sessions, CSRF, security headers, rate limiting."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from starlette.routing import Route
from web_support import PASSWORD, Web, make_web

from connector_core.plugins import PluginHost
from connector_core.web import records


def test_pages_need_a_login(web: Web) -> None:
    """Every listing redirects to /login (with the page to come back to) when nobody is logged in."""
    for path in ("/connect", "/stores", "/orders", "/rejected", "/shipments", "/runs", "/orders/x"):
        page = web.client.get(path, follow_redirects=False)
        assert page.status_code == 303, path
        assert page.headers["location"].startswith("/login?next=")


def test_json_clients_get_401(web: Web) -> None:
    """A script asking for JSON without a session gets 401, not a login page."""
    answer = web.client.get("/orders", headers={"accept": "application/json"})
    assert answer.status_code == 401
    assert answer.json() == {"error": "log in first"}


def test_health_needs_no_login_and_says_only_that_it_is_up(web: Web) -> None:
    """/health answers without a session, with the status alone."""
    answer = web.client.get("/health")
    assert answer.status_code == 200
    assert answer.json() == {"status": "ok"}


def test_login_with_the_right_password_lands_on_the_page_asked_for(web: Web) -> None:
    """The login form's next= is honoured after a good password."""
    web.client.get("/stores")
    page = web.client.get("/login?next=/stores")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert token is not None
    answer = web.client.post(
        "/login", data={"username": "ana", "password": PASSWORD, "csrf_token": token.group(1), "next": "/stores"}
    )
    assert answer.status_code == 200
    assert answer.url.path == "/stores"
    assert "ana" in answer.text


def test_login_refuses_a_wrong_password(web: Web) -> None:
    """A wrong password shows one line and no session."""
    answer = web.login(password="wrong password")
    assert answer.status_code == 401
    assert "wrong user name or password" in answer.text
    assert web.client.get("/orders", follow_redirects=False).status_code == 303


def test_login_never_redirects_off_site(web: Web) -> None:
    """A next= that names another host is replaced by /orders."""
    page = web.client.get("/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert token is not None
    answer = web.client.post(
        "/login",
        data={"username": "ana", "password": PASSWORD, "csrf_token": token.group(1), "next": "//evil.example/x"},
        follow_redirects=False,
    )
    assert answer.status_code == 303
    assert answer.headers["location"] == "/orders"


def test_login_attempts_are_rate_limited(web: Web) -> None:
    """After five wrong passwords for a user, even the right one is refused for a while (429)."""
    for _ in range(5):
        assert web.login(password="nope nope nope").status_code == 401
    blocked = web.login()
    assert blocked.status_code == 429
    assert "too many failed logins" in blocked.text


def test_session_cookie_is_httponly_and_lax_and_not_secure_on_loopback(web: Web) -> None:
    """The session cookie carries HttpOnly and SameSite=Lax; no Secure flag when served on loopback."""
    answer = web.login()
    cookies = [h for k, h in answer.history[0].headers.multi_items() if k == "set-cookie"]
    assert cookies, "the login sets the session cookie"
    cookie = cookies[-1].lower()
    assert "httponly" in cookie and "samesite=lax" in cookie
    assert "secure" not in cookie.replace("samesite", "")


def test_session_cookie_is_secure_off_loopback(db_path: Path, host: PluginHost) -> None:
    """With secure cookies (served beyond loopback) the session cookie carries Secure."""
    for web in make_web(db_path, host, secure_cookies=True):
        page = web.client.get("/login")
        cookie = page.headers["set-cookie"].lower()
        assert "; secure" in cookie


def test_every_post_without_csrf_token_is_refused(synced: Web) -> None:
    """Each POST route of the app answers 403 when the CSRF token is missing or wrong."""
    app = synced.client.app
    posts = [r for r in app.routes if isinstance(r, Route) and "POST" in (r.methods or set())]  # type: ignore[attr-defined]
    assert len(posts) >= 10
    samples = {"name": "sp", "key": "com:1", "action": "notes", "kind": "sync", "id": "1", "marketplace": "spartoo"}
    for route in posts:
        url = route.path_format
        for name, value in samples.items():
            url = url.replace("{" + name + "}", value).replace("{" + name + ":str}", value)
        if url == "/shipments/1/notes":
            url = "/shipments/1/retry"
        for token in (None, "forged"):
            data = {} if token is None else {"csrf_token": token}
            answer = synced.client.post(url, data=data, follow_redirects=False)
            assert answer.status_code == 403, (url, token, answer.status_code)


def test_csrf_token_in_a_header_is_accepted(synced: Web) -> None:
    """The page script's header X-CSRF-Token counts as the form field."""
    token = synced.csrf()
    answer = synced.client.post(
        "/stores/sp/check", headers={"x-csrf-token": token, "accept": "application/json"}, follow_redirects=False
    )
    assert answer.status_code == 202
    assert answer.json()["state"] == "ok"


def test_security_headers_on_every_page(synced: Web) -> None:
    """Pages carry a CSP without inline scripts, X-Frame-Options DENY and nosniff."""
    for path in ("/login", "/orders", "/stores/sp/settings", "/health"):
        headers = synced.client.get(path).headers
        csp = headers["content-security-policy"]
        assert "script-src 'self'" in csp and "unsafe-inline" not in csp
        assert "frame-ancestors 'none'" in csp
        assert headers["x-frame-options"] == "DENY"
        assert headers["x-content-type-options"] == "nosniff"


def test_pages_have_no_inline_script(synced: Web) -> None:
    """No page holds a <script> body or an on...= handler (the CSP would block them)."""
    for path in ("/connect", "/stores", "/stores/sp", "/stores/sp/settings", "/orders", "/runs", "/shipments"):
        html = synced.client.get(path).text
        assert re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html) is None, path
        assert re.search(r"\son[a-z]+=", html) is None, path


def test_logout_ends_the_session(synced: Web) -> None:
    """After logging out, pages redirect to the login again."""
    answer = synced.post("/logout")
    assert answer.url.path == "/login"
    assert synced.client.get("/orders", follow_redirects=False).status_code == 303


def test_a_removed_user_loses_access(synced: Web) -> None:
    """Removing an operator ends their session at the next request."""
    with synced.book() as book:
        assert records.remove_user(book.conn, "ana")
    assert synced.client.get("/orders", follow_redirects=False).status_code == 303


@pytest.mark.parametrize("name", ["", "two words", "x" * 65])
def test_bad_user_names_are_refused(name: str, tmp_path: Path) -> None:
    """A user name must be 1 to 64 printable characters without spaces."""
    from connector_core.db import OrderBook
    from connector_core.errors import ConfigError

    with OrderBook(tmp_path / "b.sqlite3") as book, pytest.raises(ConfigError, match="user name"):
        records.add_user(book.conn, name, PASSWORD)


def test_passwords_are_stored_as_argon2_hashes(tmp_path: Path) -> None:
    """The users table holds an Argon2id hash, never the password, and verifies it."""
    from connector_core.db import OrderBook

    with OrderBook(tmp_path / "b.sqlite3") as book:
        records.add_user(book.conn, "bob", "s3cret-pass")
        stored = book.conn.execute("SELECT password_hash FROM users").fetchone()[0]
        assert stored.startswith("$argon2id$") and "s3cret-pass" not in stored
        assert records.verify_user(book.conn, "bob", "s3cret-pass")
        assert not records.verify_user(book.conn, "bob", "s3cret-pasS")
        assert not records.verify_user(book.conn, "nobody", "s3cret-pass")
