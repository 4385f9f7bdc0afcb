"""Console sessions end on the server side, and sign-in attempts are limited exactly.

A session cookie copied before signing out, disabling the user, or changing its password or role opens
nothing afterwards. Wrong passwords sent at once from many threads are evaluated no more often than the
limit allows (per e-mail and address, and per address across e-mails), on SQLite and PostgreSQL, and the
true owner gets in again once the back-off is over.
"""

from __future__ import annotations

import re
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from click.testing import CliRunner
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from cli.main import main as o2c
from hub import signin_limits
from hub.auth_models import SignInCounter
from hub.merchants import create_merchant
from hub.models import AuditEntry, User, utcnow
from hub.runtime import Hub
from hub.users import create_user
from web.app import create_app

PASSWORD = "correct horse battery"
NEW_PASSWORD = "tr0ub4dor and three"
AGENT = "agent@example.com"
ADMIN = "boss@example.com"


@dataclass
class Console:
    hub: Hub
    app: Flask

    def browser(self, addr: str = "10.0.0.1") -> FlaskClient:
        client = self.app.test_client()
        client.environ_base["REMOTE_ADDR"] = addr
        return client

    def signed_in(self, email: str, password: str = PASSWORD, addr: str = "10.0.0.1") -> FlaskClient:
        client = self.browser(addr)
        r = login(client, email, password)
        assert r.status_code == 302, r.get_data(as_text=True)
        return client

    def with_cookie(self, cookie: str) -> FlaskClient:
        """A new browser holding only a copy of an old session cookie."""
        client = self.browser("10.9.9.9")
        client.set_cookie(self.app.config["SESSION_COOKIE_NAME"], cookie)
        return client

    def audit(self, action: str) -> list[AuditEntry]:
        with self.hub.session() as s:
            return list(s.scalars(select(AuditEntry).where(AuditEntry.action == action)))


def login(client: FlaskClient, email: str, password: str) -> Any:
    page = client.get("/console/login").get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    return client.post("/console/login", data={"email": email, "password": password, "csrf_token": token})


def csrf(client: FlaskClient) -> str:
    with client.session_transaction() as sess:
        return sess["csrf"]


def post(client: FlaskClient, path: str, **data: str) -> Any:
    return client.post(path, data={"csrf_token": csrf(client), **data})


def cookie_of(console: Console, client: FlaskClient) -> str:
    return client.get_cookie(console.app.config["SESSION_COOKIE_NAME"]).value


def assert_signed_out(console: Console, client: FlaskClient) -> None:
    r = client.get("/console/runs")
    assert r.status_code == 302 and "/console/login" in r.headers["Location"], r.status_code
    # and with the old CSRF token a POST is refused too (before any CSRF or action is looked at)
    assert post(client, "/console/logout").status_code == 401


def make_console(make_hub: Callable[..., Hub], database_url: str | None = None) -> Console:
    hub = make_hub(database_url)
    with hub.session() as s:
        create_user(s, AGENT, PASSWORD, "support")
        create_user(s, ADMIN, PASSWORD, "admin")
    return Console(hub, create_app(hub))


@pytest.fixture
def console(make_hub: Callable[..., Hub], monkeypatch: pytest.MonkeyPatch) -> Console:
    monkeypatch.delenv("O2C_SECRET_KEY", raising=False)
    return make_console(make_hub)


# --- sessions end ------------------------------------------------------------------------------------

def test_signing_out_ends_the_session_for_every_copy_of_its_cookie(console: Console) -> None:
    agent = console.signed_in(AGENT)
    old = cookie_of(console, agent)
    elsewhere = console.signed_in(AGENT, addr="10.0.0.7")         # the same user in another browser
    copy = console.with_cookie(old)
    assert AGENT in copy.get("/console/runs").get_data(as_text=True)   # the copy works while signed in

    assert post(agent, "/console/logout").status_code == 302
    assert_signed_out(console, console.with_cookie(old))
    assert_signed_out(console, elsewhere)
    assert_signed_out(console, agent)
    assert console.signed_in(AGENT).get("/console/runs").status_code == 200  # signing in again works


def test_disabling_a_user_ends_its_sessions_and_enabling_it_revives_none(console: Console) -> None:
    agent = console.signed_in(AGENT)
    old = cookie_of(console, agent)
    admin = console.signed_in(ADMIN, addr="10.0.0.2")
    with console.hub.session() as s:
        agent_id = s.scalar(select(User.id).where(User.email == AGENT))
    assert post(admin, f"/console/staff/{agent_id}/disable", confirm="yes").status_code == 302
    assert_signed_out(console, console.with_cookie(old))
    assert post(admin, f"/console/staff/{agent_id}/disable", disabled="0").status_code == 302  # enabled again
    assert_signed_out(console, console.with_cookie(old))
    assert console.signed_in(AGENT).get("/console/runs").status_code == 200
    assert [e.action for e in console.audit("user.disabled")] == ["user.disabled"]

    # the CLI does the same
    fresh = cookie_of(console, console.signed_in(AGENT))
    result = CliRunner().invoke(o2c, ["user", "disable", AGENT])
    assert result.exit_code == 0, result.output
    assert_signed_out(console, console.with_cookie(fresh))
    assert login(console.browser("10.0.0.3"), AGENT, PASSWORD).status_code == 401
    assert CliRunner().invoke(o2c, ["user", "enable", AGENT]).exit_code == 0
    assert_signed_out(console, console.with_cookie(fresh))
    assert CliRunner().invoke(o2c, ["user", "disable", "nobody@example.com"]).exit_code == 1


def test_a_disabled_users_api_tokens_stop_working(console: Console) -> None:
    made = CliRunner().invoke(o2c, ["token", "create", AGENT, "--name", "ci"])
    assert made.exit_code == 0, made.output
    token = next(word for word in made.output.split() if word.startswith("o2c_"))
    api = console.app.test_client()
    headers = {"Authorization": f"Bearer {token}"}
    assert api.get("/api/v1/runs", headers=headers).status_code == 200
    assert CliRunner().invoke(o2c, ["user", "disable", AGENT]).exit_code == 0
    assert api.get("/api/v1/runs", headers=headers).status_code == 401


def test_changing_ones_password_ends_every_other_session(console: Console) -> None:
    here = console.signed_in(AGENT)
    there = console.signed_in(AGENT, addr="10.0.0.5")
    old = cookie_of(console, there)
    wrong = post(here, "/console/account", current_password="not it at all",
                 new_password=NEW_PASSWORD, new_password_again=NEW_PASSWORD)
    assert wrong.status_code == 400 and "current password is wrong" in wrong.get_data(as_text=True)
    assert there.get("/console/runs").status_code == 200            # nothing changed yet
    r = post(here, "/console/account", current_password=PASSWORD, new_password=NEW_PASSWORD,
             new_password_again=NEW_PASSWORD)
    assert r.status_code == 302
    assert "Password changed" in here.get("/console/account").get_data(as_text=True)  # this browser carries on
    assert_signed_out(console, console.with_cookie(old))
    assert login(console.browser("10.0.0.6"), AGENT, PASSWORD).status_code == 401
    assert login(console.browser("10.0.0.6"), AGENT, NEW_PASSWORD).status_code == 302
    entry, = console.audit("user.password_changed")
    assert entry.actor == AGENT and PASSWORD not in str(entry.detail) and NEW_PASSWORD not in str(entry.detail)


def test_an_operator_setting_a_password_ends_the_users_sessions(console: Console) -> None:
    old = cookie_of(console, console.signed_in(AGENT))
    result = CliRunner().invoke(o2c, ["user", "password", AGENT, "--password-stdin"], input=NEW_PASSWORD + "\n")
    assert result.exit_code == 0, result.output
    assert NEW_PASSWORD not in result.output
    assert_signed_out(console, console.with_cookie(old))
    assert login(console.browser("10.0.0.8"), AGENT, NEW_PASSWORD).status_code == 302
    short = CliRunner().invoke(o2c, ["user", "password", AGENT, "--password-stdin"], input="short\n")
    assert short.exit_code == 1 and "at least 8" in short.output


def test_changing_a_role_ends_the_users_sessions(console: Console) -> None:
    agent = console.signed_in(AGENT)
    old = cookie_of(console, agent)
    assert agent.get("/console/staff").status_code == 404
    admin = console.signed_in(ADMIN, addr="10.0.0.2")
    with console.hub.session() as s:
        agent_id = s.scalar(select(User.id).where(User.email == AGENT))
    assert post(admin, f"/console/staff/{agent_id}/role", role="admin").status_code == 302
    assert_signed_out(console, console.with_cookie(old))
    promoted = console.signed_in(AGENT)
    assert promoted.get("/console/staff").status_code == 200        # the new role, from a new session
    entry, = console.audit("user.role_changed")
    assert entry.detail == {"email": AGENT, "from": "support", "to": "admin"}

    # the CLI does the same, e.g. making the agent a merchant's own user
    old = cookie_of(console, promoted)
    with console.hub.session() as s:
        merchant_id = create_merchant(s, "Acme").id
    result = CliRunner().invoke(o2c, ["user", "role", AGENT, "--role", "merchant", "--merchant", str(merchant_id)])
    assert result.exit_code == 0, result.output
    assert_signed_out(console, console.with_cookie(old))
    assert CliRunner().invoke(o2c, ["user", "role", AGENT, "--role", "merchant"]).exit_code == 2


# --- the sign-in limiter -----------------------------------------------------------------------------

def attempts_at_once(console: Console, logins: list[tuple[str, str]], addr: str = "10.1.1.1") -> Counter[int]:
    """Send every (e-mail, password) sign-in at the same moment, each from its own browser; the statuses."""
    browsers = []
    for _ in logins:
        client = console.browser(addr)
        page = client.get("/console/login").get_data(as_text=True)
        browsers.append((client, re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)))
    start = threading.Barrier(len(logins))
    statuses: list[int] = []

    def attempt(i: int) -> None:
        client, token = browsers[i]
        email, password = logins[i]
        start.wait()
        r = client.post("/console/login", data={"email": email, "password": password, "csrf_token": token})
        statuses.append(r.status_code)

    threads = [threading.Thread(target=attempt, args=(i,)) for i in range(len(logins))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert len(statuses) == len(logins)
    return Counter(statuses)


def test_concurrent_wrong_passwords_are_evaluated_exactly_up_to_the_limit(
        make_hub: Callable[..., Hub], database_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    console = make_console(make_hub, database_url)
    statuses = attempts_at_once(console, [(AGENT, f"wrong password {i}") for i in range(24)])
    assert statuses == {401: 5, 429: 19}
    assert len(console.audit("login.failed")) == 5
    # the owner, from the same address, is refused too until the back-off is over
    r = login(console.browser("10.1.1.1"), AGENT, PASSWORD)
    assert r.status_code == 429 and "Too many failed sign-ins for agent@example.com" in r.get_data(as_text=True)
    # from another address the owner is let in
    assert login(console.browser("10.1.1.2"), AGENT, PASSWORD).status_code == 302

    later = utcnow() + timedelta(minutes=16)
    monkeypatch.setattr(signin_limits, "utcnow", lambda: later)
    assert login(console.browser("10.1.1.1"), AGENT, PASSWORD).status_code == 302


def test_one_address_trying_many_emails_is_limited_across_them(
        make_hub: Callable[..., Hub], database_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    console = make_console(make_hub, database_url)
    emails = [f"guess{i}@example.com" for i in range(29)] + [AGENT]
    statuses = attempts_at_once(console, [(email, "wrong password") for email in emails])
    limit = signin_limits.PER_ADDRESS.max_failures
    assert statuses == {401: limit, 429: len(emails) - limit}
    assert len(console.audit("login.failed")) == limit
    refused = login(console.browser("10.1.1.1"), ADMIN, PASSWORD)
    assert refused.status_code == 429
    assert "Too many failed sign-ins from your address" in refused.get_data(as_text=True)
    assert login(console.browser("10.2.2.2"), ADMIN, PASSWORD).status_code == 302  # other addresses unaffected

    later = utcnow() + timedelta(minutes=16)
    monkeypatch.setattr(signin_limits, "utcnow", lambda: later)
    assert login(console.browser("10.1.1.1"), ADMIN, PASSWORD).status_code == 302


def test_a_successful_sign_in_clears_its_emails_count_but_gives_the_address_nothing_more(
        console: Console) -> None:
    browser = console.browser("10.3.3.3")
    for _ in range(4):
        assert login(browser, AGENT, "wrong password").status_code == 401
    assert login(browser, AGENT, PASSWORD).status_code == 302
    for _ in range(5):                                               # a fresh count for the e-mail
        assert login(console.browser("10.3.3.3"), AGENT, "wrong password").status_code == 401
    assert login(console.browser("10.3.3.3"), AGENT, PASSWORD).status_code == 429
    # the address has 9 failures: 11 more, over other e-mails, and it is locked however it signs in
    for i in range(11):
        assert login(console.browser("10.3.3.3"), f"x{i}@example.com", "wrong password").status_code == 401
    assert login(console.browser("10.3.3.3"), ADMIN, PASSWORD).status_code == 429


def test_guessing_the_current_password_on_the_account_page_counts_as_failed_sign_ins(console: Console) -> None:
    agent = console.signed_in(AGENT)
    for _ in range(5):
        r = post(agent, "/console/account", current_password="a guess", new_password=NEW_PASSWORD,
                 new_password_again=NEW_PASSWORD)
        assert r.status_code == 400
    r = post(agent, "/console/account", current_password=PASSWORD, new_password=NEW_PASSWORD,
             new_password_again=NEW_PASSWORD)
    assert r.status_code == 429
    assert login(console.browser("10.0.0.1"), AGENT, PASSWORD).status_code == 429


def test_counters_whose_window_ended_are_dropped_and_keep_no_email(console: Console,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    for i in range(3):
        assert login(console.browser(f"10.4.4.{i}"), f"someone{i}@example.com", "wrong password").status_code == 401
    with console.hub.session() as s:
        keys = s.scalars(select(SignInCounter.key)).all()
    assert len(keys) == 6 and not any("example.com" in k or "10.4.4" in k for k in keys)
    later = utcnow() + timedelta(minutes=16)
    monkeypatch.setattr(signin_limits, "utcnow", lambda: later)
    assert login(console.browser("10.5.5.5"), "new@example.com", "wrong password").status_code == 401
    with console.hub.session() as s:
        assert len(s.scalars(select(SignInCounter.key)).all()) == 2     # only the new attempt's two counters
