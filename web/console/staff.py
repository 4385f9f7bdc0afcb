"""People, managed by an admin: every console user (support, admin and merchant users) with its state;
invite a user (a one-time link that sets the password: e-mailed when SMTP is configured, else shown to
copy and hand over) or create one with a password; change a role; reset a password (it stops working and
a new link sets another); disable (after a confirmation step that works without JavaScript) or enable.
Disabling, a new role or a reset ends the user's sessions. Every change is written to the audit log;
other roles get a 404, as if the page did not exist."""

from __future__ import annotations

from flask import abort, flash, g, redirect, render_template, request, url_for
from sqlalchemy import select
from werkzeug.wrappers import Response

from hub import audit, mail, password_links
from hub.models import Merchant, User
from hub.password_links import LIFETIME
from hub.users import ROLES, UserError, create_user, forget_password, set_disabled, set_role
from mappings.inputs import InvalidInput, parse_optional_id
from web.console.blueprint import bp
from web.console.run_list import merchant_choices
from web.console.security import hub

STAFF_ROLES = ("support", "admin")


def _admin_only() -> None:
    if g.user.role != "admin":
        abort(404)


@bp.route("/staff", methods=["GET", "POST"])
def staff() -> Response | str | tuple[str, int]:
    _admin_only()
    form = {"email": "", "role": "support", "merchant": None}
    error, handed = None, None
    if request.method == "POST":
        form["email"] = request.form.get("email", "").strip()[:254]
        form["role"] = request.form.get("role", "support")
        password = request.form.get("password", "")
        try:
            form["merchant"] = parse_optional_id(request.form.get("merchant"), name="merchant")
        except InvalidInput:
            form["merchant"] = None
        merchant_id = form["merchant"] if form["role"] == "merchant" else None
        with hub().session() as s:
            try:
                if form["role"] not in ROLES:
                    raise UserError(f"the role must be one of {', '.join(ROLES)}")
                user = create_user(s, form["email"], password or None, form["role"], merchant_id)
            except UserError as exc:
                s.rollback()
                error = _sentence(str(exc))
            else:
                detail = {"email": user.email, "role": user.role, **({"merchant": merchant_id} if merchant_id else {})}
                if password:
                    audit.record(s, g.user.email, "user.created", target_type="user", target_id=user.id,
                                 merchant_id=merchant_id, detail=detail)
                    s.commit()
                    flash(f"Created {user.role} user {user.email}.", "ok")
                    return redirect(url_for("console.staff"))
                token = password_links.issue(s, user, "invite", by=g.user.email)
                invited = (user.id, user.email, user.role)
                s.commit()   # the link exists before it is sent; no transaction stays open while mail goes out
        if error is None and not password:
            handed = _deliver(invited[1], invited[2], token, "invite")
            with hub().session() as s:
                audit.record(s, g.user.email, "user.invited", target_type="user", target_id=invited[0],
                             merchant_id=merchant_id, detail={**detail, "link": handed["via"]})
            form = {"email": "", "role": "support", "merchant": None}
    page = _page(form=form, error=error, handed=handed)
    return (page, 400) if error else page


def _page(**kw: object) -> str:
    with hub().session() as s:
        merchants = merchant_choices(s, None)
        names = dict(merchants)
        users = list(s.scalars(select(User).order_by(User.role, User.email)))
        links = password_links.pending(s, [u.id for u in users])
        rows = [{"id": u.id, "email": u.email, "role": u.role, "merchant_id": u.merchant_id,
                 "merchant": names.get(u.merchant_id) if u.merchant_id else None, "disabled": u.disabled,
                 "created_at": u.created_at, "last_login_at": u.last_login_at, "link": links.get(u.id)}
                for u in users]
    return render_template("console/staff.html", users=rows, roles=ROLES, merchants=merchants,
                           smtp=mail.configured(hub().settings), lifetime_hours=int(LIFETIME.total_seconds() // 3600),
                           **kw)


def _deliver(email: str, role: str, token: str, purpose: str) -> dict[str, str | None]:
    """E-mail the link when SMTP is configured; else (or when sending fails) hand it to the admin."""
    link = hub().settings.public_url + url_for("console.password_link", token=token)
    hours = int(LIFETIME.total_seconds() // 3600)
    if mail.configured(hub().settings):
        intro = (f"You have been invited to the O2C Hub console as {role}." if purpose == "invite" else
                 "An administrator reset your O2C Hub console password; the old one no longer works.")
        body = (f"{intro}\n\nSet your password with this link (it works once, for {hours} hours):\n{link}\n\n"
                f"Then sign in as {email}.\nIf you did not expect this e-mail, ignore it.")
        subject = "Your O2C Hub account" if purpose == "invite" else "Set a new O2C Hub password"
        try:
            mail.send_mail(hub().settings, [email], subject, body)
        except Exception as exc:  # noqa: BLE001 - any failure to send: the admin hands the link over instead
            return {"via": "link", "email": email, "link": link, "problem": mail.describe(exc)}
        return {"via": "email", "email": email, "link": None, "problem": None}
    return {"via": "link", "email": email, "link": link, "problem": None}


def _user_or_404(s: object, user_id: int) -> User:
    user = s.get(User, user_id)  # type: ignore[attr-defined]
    if user is None:
        abort(404)
    return user


@bp.get("/staff/<int:user_id>/disable")
def staff_disable_confirm(user_id: int) -> str:
    """The confirmation step before disabling a user."""
    _admin_only()
    with hub().session() as s:
        user = _user_or_404(s, user_id)
        merchant = s.get(Merchant, user.merchant_id) if user.merchant_id else None
        target = {"id": user.id, "email": user.email, "role": user.role, "disabled": user.disabled,
                  "merchant": merchant.name if merchant else None}
    return render_template("console/staff_disable.html", target=target)


@bp.post("/staff/<int:user_id>/disable")
def staff_disable(user_id: int) -> Response:
    """Disable (``disabled=1``, the default; only with ``confirm=yes`` from the confirmation step) or
    enable (``disabled=0``) a user; not oneself."""
    _admin_only()
    disable = request.form.get("disabled", "1") != "0"
    if disable and request.form.get("confirm") != "yes":
        return redirect(url_for("console.staff_disable_confirm", user_id=user_id))
    with hub().session() as s:
        user = _user_or_404(s, user_id)
        if user.id == g.user.id:
            flash("You cannot disable your own account.", "error")
            return redirect(url_for("console.staff"))
        if set_disabled(s, user, disable):
            audit.record(s, g.user.email, "user.disabled" if disable else "user.enabled", target_type="user",
                         target_id=user.id, merchant_id=user.merchant_id, detail={"email": user.email})
            s.commit()
        flash(f"{user.email} {'disabled (signed out everywhere; API tokens stop working)' if disable else 'enabled'}.",
              "ok")
    return redirect(url_for("console.staff"))


@bp.post("/staff/<int:user_id>/role")
def staff_role(user_id: int) -> Response:
    """Give a user another role (a merchant user: with its merchant); not oneself. Its sessions end."""
    _admin_only()
    role = request.form.get("role", "")
    if role not in ROLES:
        abort(400, f"the role must be one of {', '.join(ROLES)}")
    merchant_id = parse_optional_id(request.form.get("merchant"), name="merchant") if role == "merchant" else None
    with hub().session() as s:
        user = _user_or_404(s, user_id)
        if user.id == g.user.id:
            flash("You cannot change your own role.", "error")
            return redirect(url_for("console.staff"))
        old, old_merchant = user.role, user.merchant_id
        try:
            changed = set_role(s, user, role, merchant_id)
        except UserError as exc:
            s.rollback()
            flash(_sentence(str(exc)), "error")
            return redirect(url_for("console.staff"))
        if changed:
            audit.record(s, g.user.email, "user.role_changed", target_type="user", target_id=user.id,
                         merchant_id=merchant_id or old_merchant,
                         detail={"email": user.email, "from": old, "to": role,
                                 **({"merchant": merchant_id} if merchant_id else {})})
            s.commit()
            flash(f"{user.email} is now {role} (signed out everywhere).", "ok")
    return redirect(url_for("console.staff"))


@bp.post("/staff/<int:user_id>/reset")
def staff_reset(user_id: int) -> Response | str:
    """Reset a user's password: the old one stops working, the sessions end, and a one-time link (e-mailed,
    or shown to hand over) sets a new one. A user who never set one gets a fresh invitation instead."""
    _admin_only()
    with hub().session() as s:
        user = _user_or_404(s, user_id)
        if user.id == g.user.id:
            flash("Change your own password on your account page.", "error")
            return redirect(url_for("console.staff"))
        purpose = "invite" if user.last_login_at is None else "reset"
        forget_password(s, user)
        token = password_links.issue(s, user, purpose, by=g.user.email)
        email, role, merchant_id = user.email, user.role, user.merchant_id
        s.commit()
    handed = _deliver(email, role, token, purpose)
    with hub().session() as s:
        audit.record(s, g.user.email, "user.password_reset", target_type="user", target_id=user_id,
                     merchant_id=merchant_id, detail={"email": email, "purpose": purpose, "link": handed["via"]})
    return _page(form={"email": "", "role": "support", "merchant": None}, error=None, handed=handed)


def _sentence(text: str) -> str:
    return (text[:1].upper() + text[1:]).rstrip(".") + "."
