"""Sessions, sign-in state and CSRF for the console.

The session is Flask's signed cookie (HttpOnly, SameSite=Lax, Secure behind https) keyed by
``O2C_SECRET_KEY``, or by a key generated once into the instance folder so sessions survive restarts and
every worker agrees. Every POST carries the session's CSRF token (a hidden form field).

A session also carries the user's ``session_version`` from when it began; it is checked on every request,
so signing out, disabling the user or changing its password or role (each bumps the version) ends every
session of that user on the server side, whatever cookies are still around.
"""

from __future__ import annotations

import hmac
import os
import secrets
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from flask import Flask, abort, current_app, g, redirect, request, session, url_for
from markupsafe import Markup, escape
from werkzeug.wrappers import Response

from hub.models import User
from hub.users import may_see, merchant_scope

if TYPE_CHECKING:
    from hub.runtime import Hub

PUBLIC_ENDPOINTS = {"console.login", "console.password_link"}   # the one-time link sets a password
SESSION_LIFETIME = timedelta(hours=12)


@dataclass(frozen=True)
class CurrentUser:
    id: int
    email: str
    role: str
    merchant_id: int | None

    @property
    def scope(self) -> int | None:
        """The only merchant this user may see, or None for all."""
        return merchant_scope(self)

    def may_see(self, merchant_id: int | None) -> bool:
        return may_see(self, merchant_id)


def configure(app: Flask, hub: Hub) -> None:
    """Session key and cookie flags."""
    app.secret_key = hub.settings.secret_key or instance_secret(hub.settings.instance_path)
    app.config.update(SESSION_COOKIE_HTTPONLY=True, SESSION_COOKIE_SAMESITE="Lax",
                      SESSION_COOKIE_SECURE=hub.settings.public_url.startswith("https"),
                      PERMANENT_SESSION_LIFETIME=SESSION_LIFETIME)


def instance_secret(instance_path: Path) -> str:
    """The session key kept in ``instance/secret.key`` (mode 0600), made on first use."""
    path = instance_path / "secret.key"
    if path.exists():
        return path.read_text().strip()
    instance_path.mkdir(parents=True, exist_ok=True)
    key = secrets.token_hex(32)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another worker won the race: use its key
        return path.read_text().strip()
    with os.fdopen(fd, "w") as fh:
        fh.write(key)
    return key


def hub() -> Hub:
    return current_app.extensions["o2c"]


def sign_in(user: User) -> None:
    session.clear()  # a fresh session (and CSRF token) after sign-in
    session.permanent = True
    session["user_id"] = user.id
    session["session_version"] = user.session_version
    session["csrf"] = secrets.token_urlsafe(32)


def session_user() -> CurrentUser | None:
    """The user this browser's session belongs to while the session is live: the user exists, is enabled
    and has not had its sessions ended since it signed in."""
    user_id, version = session.get("user_id"), session.get("session_version")
    if type(user_id) is not int or type(version) is not int:
        return None
    with hub().session() as s:
        user = s.get(User, user_id)
        if user is None or user.disabled or user.session_version != version:
            return None
        return CurrentUser(user.id, user.email, user.role, user.merchant_id)


def end_session() -> None:
    """Forget this browser's user (its CSRF token stays, for the sign-in form)."""
    session.pop("user_id", None)
    session.pop("session_version", None)


def csrf_token() -> str:
    token = session.get("csrf")
    if not token:
        token = session["csrf"] = secrets.token_urlsafe(32)
    return token


def csrf_field() -> Markup:
    return Markup('<input type="hidden" name="csrf_token" value="{}">').format(escape(csrf_token()))


def guard() -> Response | None:
    """Before every console request: load the user, send strangers to sign in, check CSRF on POST."""
    g.user = session_user()
    if g.user is None and "user_id" in session:
        end_session()
    if g.user is None and request.endpoint not in PUBLIC_ENDPOINTS:
        if request.method == "POST":
            abort(401)
        return redirect(url_for("console.login", next=request.full_path.rstrip("?")))
    if request.method == "POST":
        sent = request.form.get("csrf_token", "")
        expected = session.get("csrf", "")
        if not sent or not expected or not hmac.compare_digest(sent, expected):
            abort(400, "the form's security token is missing or out of date: reload the page and try again")
    return None


def require_merchant(merchant_id: int | None) -> None:
    """404 when the signed-in user may not see this merchant (as if it did not exist)."""
    if not g.user.may_see(merchant_id):
        abort(404)

