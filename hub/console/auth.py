"""Sign in and out. Failed sign-ins are kept in the audit log, which makes the rate limit (5 failures per
e-mail and address per 15 minutes) hold across every worker and host."""

from __future__ import annotations

from datetime import timedelta

from flask import g, redirect, render_template, request, session, url_for
from werkzeug.wrappers import Response

from hub import audit
from hub.console.blueprint import bp
from hub.console.security import hub, sign_in
from hub.models import utcnow
from hub.users import authenticate, normalise_email

MAX_FAILURES = 5
WINDOW = timedelta(minutes=15)


def _client_address() -> str:
    # the socket's peer: behind a reverse proxy, wrap the app in werkzeug's ProxyFix so this is the client
    return request.remote_addr or "unknown"


def _safe_next(target: str | None) -> str:
    """Only a console path of this site (never another host) is a place to return to."""
    if target and target.startswith("/console/") and not target.startswith("//") and "\\" not in target:
        return target
    return url_for("console.runs")


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
        if audit.failed_logins(s, email, ip, utcnow() - WINDOW) >= MAX_FAILURES:
            return render_template("console/login.html", next=nxt, email=email,
                                   error=f"Too many failed sign-ins for {email} from your address. "
                                         f"Wait {int(WINDOW.total_seconds() // 60)} minutes and try again."), 429
        user = authenticate(s, email, password) if email and password else None
        if user is None:
            audit.record(s, email or "(none)", audit.LOGIN_FAILED, target_type="address", target_id=ip)
            s.commit()
            return render_template("console/login.html", next=nxt, email=email,
                                   error="Wrong e-mail or password."), 401
        audit.record(s, user.email, audit.LOGIN_SUCCEEDED, target_type="address", target_id=ip,
                     merchant_id=user.merchant_id)
        s.commit()
        sign_in(user)
    return redirect(_safe_next(nxt))


@bp.post("/logout")
def logout() -> Response:
    session.clear()
    return redirect(url_for("console.login"))
