"""The console's payouts board: each store payout scheduled → paid → posted (its QuickBooks deposit), or held with
its difference and the transactions that explain nothing; Re-try posts a held or paid payout again now."""

from __future__ import annotations

from flask import abort, flash, g, redirect, render_template, url_for
from sqlalchemy import select
from werkzeug.wrappers import Response

from hub import audit
from hub.payout_models import StorePayout
from sync.deposits import post_one
from sync.payouts import list_payouts
from web.console.blueprint import bp
from web.console.security import hub


@bp.get("/payouts")
def payouts() -> str:
    with hub().session() as s:
        rows = list_payouts(s, g.user.scope, limit=200)
    return render_template("console/payouts.html", payouts=rows)


@bp.post("/payouts/<platform>/<payout_id>/retry")
def payouts_retry(platform: str, payout_id: str) -> Response:
    with hub().session() as s:
        q = select(StorePayout).where(StorePayout.platform == platform, StorePayout.payout_id == payout_id[:255])
        if g.user.scope is not None:
            q = q.where(StorePayout.merchant_id == g.user.scope)
        row = s.scalar(q.order_by(StorePayout.id).limit(1))
        if row is None:
            abort(404)
        row_id, merchant_id, status = row.id, row.merchant_id, row.status
    if status != "paid":
        flash(f"Payout {payout_id} is not paid out yet: there is nothing to deposit.", "error")
        return redirect(url_for("console.payouts"))
    outcome = post_one(hub(), row_id, wait=5)
    with hub().session() as s:
        row = s.get(StorePayout, row_id)
        audit.record(s, g.user.email, "payout.retry", target_type="payout", target_id=f"{platform}:{payout_id}",
                     merchant_id=merchant_id, detail={"outcome": outcome, "deposit_id": row.deposit_id,
                                                      "difference": row.difference})
        s.commit()
        reason = row.reason
    if outcome == "posted":
        flash(f"Payout {payout_id} is posted: deposit {row.deposit_id}.", "ok")
    elif outcome is None:
        flash(f"Payout {payout_id} is being posted by a worker right now.", "error")
    else:
        flash(f"Payout {payout_id} is still held: {reason}", "error")
    return redirect(url_for("console.payouts"))
