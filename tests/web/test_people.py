"""People, as an admin manages them in the console through the real app: invite a merchant user or a
staff member (a copyable one-time link, or an e-mail through a local SMTP server when SMTP is configured),
the link sets a password once and then expires, a role change, a password reset, disabling only after a
confirmation step; every change in the audit log in plain words."""

from __future__ import annotations

import hashlib
import html as html_lib
import re
from datetime import timedelta
from urllib.parse import urlsplit

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select, update

from hub.auth_models import PasswordLink
from hub.merchants import create_merchant
from hub.models import AuditEntry, User, utcnow
from tests import smtp_sink
from tests.helpers import wait_until
from tests.web.test_sessions import ADMIN, AGENT, PASSWORD, Console, login, make_console, post

smtp_server = smtp_sink.smtp_server   # the fixture: a local SMTP server keeping what it is sent
NEW = "tr0ub4dor and three"


@pytest.fixture
def people(make_hub, monkeypatch) -> Console:  # noqa: ANN001
    monkeypatch.delenv("O2C_SECRET_KEY", raising=False)
    return make_console(make_hub)


def merchant(console: Console, name: str = "Bakery") -> int:
    with console.hub.session() as s:
        return create_merchant(s, name).id


def shown_link(page: str) -> str:
    """The path of the one-time link the page shows to copy."""
    found = re.search(r'id="one-time-link" type="text" readonly value="([^"]+)"', page)
    assert found, page[-3000:]
    return urlsplit(html_lib.unescape(found.group(1))).path


def user_id(console: Console, email: str) -> int:
    with console.hub.session() as s:
        return s.scalar(select(User.id).where(User.email == email))


def actions(console: Console) -> list[tuple[str, str]]:
    with console.hub.session() as s:
        return [(e.actor, e.action) for e in s.scalars(select(AuditEntry).where(AuditEntry.action.startswith("user."))
                                                       .order_by(AuditEntry.id))]


def set_password(client: FlaskClient, path: str, password: str, again: str | None = None):  # noqa: ANN201
    page = client.get(path)
    assert page.status_code == 200, page.get_data(as_text=True)[-1500:]
    assert page.headers["Referrer-Policy"] == "no-referrer" and page.headers["Cache-Control"] == "no-store"
    return post(client, path, new_password=password, new_password_again=password if again is None else again)


def test_invite_a_merchant_user_with_a_copyable_link_that_sets_the_password_once(people: Console) -> None:
    bakery = merchant(people)
    admin = people.signed_in(ADMIN)
    page = admin.get("/console/staff").get_data(as_text=True)
    assert "E-mail is not set up on this hub" in page and 'aria-label="Role of agent@example.com"' in page

    missing = post(admin, "/console/staff", email="baker@example.com", role="merchant", password="")
    assert missing.status_code == 400 and "A merchant user needs its merchant." in missing.get_data(as_text=True)
    invited = post(admin, "/console/staff", email="Baker@Example.com", role="merchant", merchant=str(bakery),
                   password="")
    assert invited.status_code == 200
    page = invited.get_data(as_text=True)
    assert "One-time link for baker@example.com" in page and "invited (link until" in page
    path = shown_link(page)
    token = path.rsplit("/", 1)[1]
    with people.hub.session() as s:
        [link] = s.scalars(select(PasswordLink)).all()
        assert link.token_hash == hashlib.sha256(token.encode()).hexdigest() and link.purpose == "invite"
        assert timedelta(hours=71) < link.expires_at - link.created_at <= timedelta(hours=72)
        assert token not in str(s.scalars(select(AuditEntry.detail)).all())

    browser = people.browser("10.0.0.5")
    assert login(browser, "baker@example.com", PASSWORD).status_code == 401     # no password of its own yet
    assert set_password(browser, path, NEW, again="something else").status_code == 400
    done = set_password(browser, path, NEW)
    assert done.status_code == 302 and done.headers["Location"].endswith("/console/login")
    assert browser.get(path).status_code == 404                                   # once only
    assert "expired or was already used" in browser.get(path).get_data(as_text=True)
    assert login(browser, "baker@example.com", NEW).status_code == 302
    orders = browser.get("/console/orders")
    assert orders.status_code == 200 and "baker@example.com" in orders.get_data(as_text=True)
    assert browser.get("/console/staff").status_code == 404
    with people.hub.session() as s:
        baker = s.scalar(select(User).where(User.email == "baker@example.com"))
        assert (baker.role, baker.merchant_id) == ("merchant", bakery)
    assert actions(people) == [(ADMIN, "user.invited"), ("baker@example.com", "user.password_set")]
    log = admin.get("/console/audit").get_data(as_text=True)
    assert "Invited baker@example.com as merchant" in log and "Set a password with a one-time link" in log


def test_an_expired_or_replaced_link_sets_nothing(people: Console) -> None:
    admin = people.signed_in(ADMIN)
    first = shown_link(post(admin, "/console/staff", email="new@example.com", role="support").get_data(as_text=True))
    new_id = user_id(people, "new@example.com")
    second = shown_link(post(admin, f"/console/staff/{new_id}/reset").get_data(as_text=True))
    browser = people.browser("10.0.0.6")
    assert browser.get(first).status_code == 404                                  # replaced by the second
    with people.hub.session() as s:
        s.execute(update(PasswordLink).values(expires_at=utcnow() - timedelta(seconds=1)))   # 72 h later
    assert browser.get(second).status_code == 404
    browser.get("/console/login")   # a form, so the browser holds a CSRF token
    assert post(browser, second, new_password=NEW, new_password_again=NEW).status_code == 404
    assert login(browser, "new@example.com", NEW).status_code == 401


def test_role_change_reset_and_disable_after_confirmation(people: Console) -> None:
    bakery = merchant(people)
    admin = people.signed_in(ADMIN)
    agent = people.signed_in(AGENT, addr="10.0.0.2")
    agent_id = user_id(people, AGENT)

    assert post(admin, f"/console/staff/{agent_id}/role", role="merchant", merchant=str(bakery)).status_code == 302
    assert agent.get("/console/runs").status_code == 302                        # signed out by the change
    with people.hub.session() as s:
        assert (s.get(User, agent_id).role, s.get(User, agent_id).merchant_id) == ("merchant", bakery)
    assert post(admin, f"/console/staff/{agent_id}/role", role="admin").status_code == 302
    admin.get("/console/staff")   # the flash

    agent = people.signed_in(AGENT, addr="10.0.0.2")
    reset = post(admin, f"/console/staff/{agent_id}/reset")
    assert reset.status_code == 200
    path = shown_link(reset.get_data(as_text=True))
    assert agent.get("/console/runs").status_code == 302                        # sessions ended
    assert login(people.browser("10.0.0.3"), AGENT, PASSWORD).status_code == 401  # the old password is gone
    browser = people.browser("10.0.0.4")
    assert set_password(browser, path, NEW).status_code == 302
    assert login(browser, AGENT, NEW).status_code == 302

    # disabling asks first: the row links to a confirmation page; a POST without it changes nothing
    page = admin.get("/console/staff").get_data(as_text=True)
    assert f'href="/console/staff/{agent_id}/disable">Disable…</a>' in page
    unconfirmed = post(admin, f"/console/staff/{agent_id}/disable")
    assert unconfirmed.status_code == 302 and unconfirmed.headers["Location"].endswith(f"/staff/{agent_id}/disable")
    assert browser.get("/console/runs").status_code == 200
    confirm = admin.get(f"/console/staff/{agent_id}/disable").get_data(as_text=True)
    assert f"Disable {AGENT}?" in confirm and 'name="confirm" value="yes"' in confirm and "API tokens stop" in confirm
    assert admin.post(f"/console/staff/{agent_id}/disable", data={"confirm": "yes"}).status_code == 400   # CSRF held
    assert post(admin, f"/console/staff/{agent_id}/disable", confirm="yes").status_code == 302
    assert browser.get("/console/runs").status_code == 302
    assert login(people.browser("10.0.0.8"), AGENT, NEW).status_code == 401
    assert post(admin, f"/console/staff/{user_id(people, ADMIN)}/disable", confirm="yes").status_code == 302
    assert people.signed_in(ADMIN, addr="10.0.0.9").get("/console/staff").status_code == 200   # never oneself

    assert [a for _, a in actions(people)] == ["user.role_changed", "user.role_changed", "user.password_reset",
                                               "user.password_set", "user.disabled"]
    log = admin.get("/console/audit?action=user.role_changed").get_data(as_text=True)
    assert f"Changed the role of {AGENT} from support to merchant" in log
    assert f"Changed the role of {AGENT} from merchant to admin" in log and "Disabled the user" not in log
    assert f"Reset the password of {AGENT}" in admin.get(f"/console/audit?actor={ADMIN}").get_data(as_text=True)


def test_with_smtp_the_link_is_e_mailed_and_not_shown(make_hub, monkeypatch, smtp_server) -> None:  # noqa: ANN001
    monkeypatch.delenv("O2C_SECRET_KEY", raising=False)
    people = make_console(lambda url=None: make_hub(url, O2C_SMTP_HOST="127.0.0.1",
                                                    O2C_SMTP_PORT=str(smtp_server.server_address[1]),
                                                    O2C_SMTP_FROM="hub@example.com",
                                                    O2C_PUBLIC_URL="https://hub.example.com"))
    admin = people.signed_in(ADMIN)
    page = post(admin, "/console/staff", email="ops@example.com", role="admin").get_data(as_text=True)
    assert "Link e-mailed" in page and 'id="one-time-link"' not in page
    wait_until(lambda: smtp_server.mails)
    [mail] = smtp_server.mails
    assert "ops@example.com" in "".join(mail["rcpt"]) and "hub@example.com" in mail["from"]
    assert "Subject: Your O2C Hub account" in mail["data"] and "as admin" in mail["data"]
    found = re.search(r"https://hub\.example\.com(/console/password/[\w-]+)", mail["data"].replace("=\r\n", ""))
    assert found, mail["data"]
    browser = people.browser("10.0.0.7")
    assert set_password(browser, found.group(1), NEW).status_code == 302
    assert login(browser, "ops@example.com", NEW).status_code == 302
    assert browser.get("/console/staff").status_code == 200                      # an admin now
    with people.hub.session() as s:
        entry = s.scalar(select(AuditEntry).where(AuditEntry.action == "user.invited"))
        assert entry.detail["link"] == "email"
