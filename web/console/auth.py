"""Sign in and out, change one's own password, and set one with a one-time link (an invitation or an
admin's reset, ``hub.password_links``): the link's page asks for the password twice, sets it once, and
sends the user to sign in.

Sign-in attempts are limited by ``hub.signin_limits`` (5 failures per e-mail and address, 20 per address,
per 15 minutes), counted in the database before the password is checked, so the limit holds exactly under
concurrent attempts and across every worker and host. Failed sign-ins are also written to the audit log
for support to read. Signing out ends every session of the user on the server side.
"""

from __future__ import annotations

from flask import flash, g, make_response, redirect, render_template, request, url_for
from werkzeug.security import check_password_hash
from werkzeug.wrappers import Response

from hub import audit, password_links, signin_limits
from hub.models import User
from hub.password_links import LinkError
from hub.signin_limits import Lockout
from hub.users import UserError, authenticate, end_sessions, normalise_email, set_password
from web.console.blueprint import bp
from web.console.security import end_session, hub, sign_in


def _client_address() -> str:
    # the socket's peer: behind a reverse proxy, wrap the app in werkzeug's ProxyFix so this is the client
    return request.remote_addr or "unknown"


def _safe_next(target: str | None) -> str:
    """Only a console path of this site (never another host) is a place to return to."""
    if target and target.startswith("/console/") and not target.startswith("//") and "\\" not in target:
        return target
    return url_for("console.orders")


def _lockout_message(lockout: Lockout, email: str) -> str:
    who = f"for {email} " if lockout.limit is signin_limits.PER_ACCOUNT else ""
    return (f"Too many failed sign-ins {who}from your address. "
            f"Wait {lockout.minutes} minute{'s' if lockout.minutes != 1 else ''} and try again.")


@bp.route("/login", methods=["GET", "POST"])
def login() -> Response | str | tuple[str, int]:
    if request.method == "GET":
        if g.user is not None:
            return redirect(_safe_next(request.args.get("next")))
        return render_template("console/login.html", next=request.args.get("next", ""), email="")
    email = normalise_email(request.form.get("email", ""))[:254]
    password = request.form.get("password", "")
    nxt = request.form.get("next", "")
    ip = _client_address()
    with hub().session() as s:
        lockout = signin_limits.admit(s, email, ip)   # counted (and committed) before the password is checked
        if lockout is not None:
            return render_template("console/login.html", next=nxt, email=email,
                                   error=_lockout_message(lockout, email)), 429
        user = authenticate(s, email, password) if email and password else None
        if user is None:
            audit.record(s, email or "(none)", audit.LOGIN_FAILED, target_type="address", target_id=ip)
            s.commit()
            return render_template("console/login.html", next=nxt, email=email,
                                   error="Wrong e-mail or password."), 401
        signin_limits.succeeded(s, email, ip)
        audit.record(s, user.email, audit.LOGIN_SUCCEEDED, target_type="address", target_id=ip,
                     merchant_id=user.merchant_id)
        s.commit()
        sign_in(user)
    return redirect(_safe_next(nxt))


@bp.post("/logout")
def logout() -> Response:
    """Sign out: every session of this user ends, this browser's and any other's."""
    with hub().session() as s:
        user = s.get(User, g.user.id)
        if user is not None:
            end_sessions(s, user)
    end_session()
    return redirect(url_for("console.login"))


@bp.route("/account", methods=["GET", "POST"])
def account() -> Response | str | tuple[str, int]:
    """Change one's own password (the current one first): every other session of the user ends."""
    if request.method == "GET":
        return render_template("console/account.html", error=None)
    current = request.form.get("current_password", "")
    new, again = request.form.get("new_password", ""), request.form.get("new_password_again", "")
    ip = _client_address()
    with hub().session() as s:
        lockout = signin_limits.admit(s, g.user.email, ip)   # guessing the current password counts too
        if lockout is not None:
            return render_template("console/account.html", error=_lockout_message(lockout, g.user.email)), 429
        user = s.get(User, g.user.id)
        if user is None or not check_password_hash(user.password_hash, current):
            audit.record(s, g.user.email, audit.LOGIN_FAILED, target_type="address", target_id=ip,
                         detail={"during": "password change"})
            s.commit()
            return render_template("console/account.html", error="The current password is wrong."), 400
        signin_limits.succeeded(s, g.user.email, ip)
        error = "the two new passwords differ" if new != again else None
        if error is None:
            try:
                set_password(s, user, new)
            except UserError as exc:
                error = str(exc)
        if error is not None:
            s.commit()
            return render_template("console/account.html", error=error[0].upper() + error[1:] + "."), 400
        audit.record(s, user.email, "user.password_changed", target_type="user", target_id=user.id,
                     merchant_id=user.merchant_id, detail={"email": user.email})
        s.commit()
        s.refresh(user)
        sign_in(user)   # this browser carries on under the new version; every other session has ended
    flash("Password changed. Every other session of yours has been signed out.", "ok")
    return redirect(url_for("console.account"))


@bp.route("/password/<token>", methods=["GET", "POST"])
def password_link(token: str) -> Response:
    """Set a password with a one-time link (it works once, until it expires)."""
    error, status = None, 200
    with hub().session() as s:
        link = password_links.open_link(s, token)
        if link is None:
            error, status = "This link has expired or was already used. Ask an administrator for a new one.", 404
        elif request.method == "POST":
            new, again = request.form.get("new_password", ""), request.form.get("new_password_again", "")
            try:
                if new != again:
                    raise UserError("the two passwords differ")
                user, used = password_links.redeem(s, token, new)
            except (UserError, LinkError) as exc:
                s.rollback()
                error, status = str(exc)[0].upper() + str(exc)[1:] + ".", 400
            else:
                audit.record(s, user.email, "user.password_set", target_type="user", target_id=user.id,
                             merchant_id=user.merchant_id, detail={"email": user.email, "purpose": used.purpose})
                s.commit()
                end_session()   # whoever was signed in in this browser: the new user signs in now
                flash("Your password is set. Sign in with it.", "ok")
                return _private(redirect(url_for("console.login")))
        email = s.get(User, link.user_id).email if link is not None else None  # type: ignore[union-attr]
    page = render_template("console/password_link.html", email=email, error=error, usable=link is not None)
    return _private(make_response(page, status))


def _private(response: Response) -> Response:
    """The link's token is in the URL: it must not be cached or sent on as a referrer."""
    response.headers.update({"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"})
    return response
