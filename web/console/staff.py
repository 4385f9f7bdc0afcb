"""Support accounts, managed by an admin: list the staff, create a support (or admin) user, disable or
enable one, change one's role. Disabling a user or changing its role ends its sessions. Every change is
written to the audit log; other roles get a 404, as if the page did not exist."""

from __future__ import annotations

from flask import abort, flash, g, redirect, render_template, request, url_for
from sqlalchemy import select
from werkzeug.wrappers import Response

from hub import audit
from hub.models import User
from hub.users import UserError, create_user, set_disabled, set_role
from web.console.blueprint import bp
from web.console.security import hub

STAFF_ROLES = ("support", "admin")


def _admin_only() -> None:
    if g.user.role != "admin":
        abort(404)


@bp.route("/staff", methods=["GET", "POST"])
def staff() -> Response | str | tuple[str, int]:
    _admin_only()
    error, email, role = None, "", "support"
    if request.method == "POST":
        email = request.form.get("email", "").strip()[:254]
        role = request.form.get("role", "support")
        password = request.form.get("password", "")
        if role not in STAFF_ROLES:
            error = f"role must be one of {', '.join(STAFF_ROLES)}"
        else:
            with hub().session() as s:
                try:
                    user = create_user(s, email, password, role)
                except UserError as exc:
                    s.rollback()
                    error = str(exc)
                else:
                    audit.record(s, g.user.email, "user.created", target_type="user", target_id=user.id,
                                 detail={"email": user.email, "role": role})
                    s.commit()
                    flash(f"Created {role} user {user.email}.", "ok")
                    return redirect(url_for("console.staff"))
    with hub().session() as s:
        users = [{"id": u.id, "email": u.email, "role": u.role, "disabled": u.disabled, "created_at": u.created_at,
                  "last_login_at": u.last_login_at}
                 for u in s.scalars(select(User).where(User.role.in_(STAFF_ROLES)).order_by(User.id))]
    page = render_template("console/staff.html", users=users, error=error, email=email, role=role,
                           roles=STAFF_ROLES)
    return (page, 400) if error else page


@bp.post("/staff/<int:user_id>/disable")
def staff_disable(user_id: int) -> Response:
    """Disable (``disabled=1``, the default) or enable (``disabled=0``) a staff user; not oneself."""
    _admin_only()
    disable = request.form.get("disabled", "1") != "0"
    with hub().session() as s:
        user = s.get(User, user_id)
        if user is None or user.role not in STAFF_ROLES:
            abort(404)
        if user.id == g.user.id:
            flash("You cannot disable your own account.", "error")
            return redirect(url_for("console.staff"))
        if set_disabled(s, user, disable):
            audit.record(s, g.user.email, "user.disabled" if disable else "user.enabled", target_type="user",
                         target_id=user.id, detail={"email": user.email})
        flash(f"{user.email} {'disabled (signed out everywhere)' if disable else 'enabled'}.", "ok")
    return redirect(url_for("console.staff"))


@bp.post("/staff/<int:user_id>/role")
def staff_role(user_id: int) -> Response:
    """Make a staff user ``support`` or ``admin``; not oneself. Its sessions end, so it signs in again."""
    _admin_only()
    role = request.form.get("role", "")
    if role not in STAFF_ROLES:
        abort(400, f"role must be one of {', '.join(STAFF_ROLES)}")
    with hub().session() as s:
        user = s.get(User, user_id)
        if user is None or user.role not in STAFF_ROLES:
            abort(404)
        if user.id == g.user.id:
            flash("You cannot change your own role.", "error")
            return redirect(url_for("console.staff"))
        old = user.role
        if set_role(s, user, role):
            audit.record(s, g.user.email, "user.role_changed", target_type="user", target_id=user.id,
                         detail={"email": user.email, "from": old, "to": role})
            flash(f"{user.email} is now {role} (signed out everywhere).", "ok")
    return redirect(url_for("console.staff"))
