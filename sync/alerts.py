"""Alerts: tell the operator when a run fails for good or a connection needs reconnecting.

Targets (settings): a webhook (``O2C_ALERT_WEBHOOK_URL``, POSTed JSON ``{event, cause, merchant, message,
run | connection, at, console_url}``) and e-mail over SMTP (``O2C_ALERT_EMAIL_TO`` + ``O2C_SMTP_*``).
Each cause (``run.failed:<error kind>:<error code or normalised reason>``, ``reconnect:<connection id>``)
is notified at most once an hour per channel, as recorded in ``alerts_sent`` (a failed delivery counts:
a dead target is not hammered). The hooks never raise and cost nothing when no target is configured.
Alerts carry ids, names and reasons, never a secret: texts are scrubbed of the merchant's credentials (and of
every secret the hub holds) before they are sent, and ``alerts_sent.detail`` is scrubbed as it is written.
"""

from __future__ import annotations

import hashlib
import logging
import smtplib
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import requests
from sqlalchemy import func, select

from hub import mail
from hub.models import AlertSent, Connection, Merchant, SyncRun, utcnow
from hub.redaction import connection_secrets, scrub

if TYPE_CHECKING:
    from hub.runtime import Hub
    from hub.settings import Settings

log = logging.getLogger("o2c.alerts")

WINDOW = timedelta(hours=1)
TIMEOUT = 5.0
RUN_FAILED = "run.failed"
NEEDS_RECONNECT = "connection.needs_reconnect"


def channels(settings: Settings) -> list[str]:
    """The configured channels: ``webhook`` and/or ``email``."""
    found = []
    if settings.alert_webhook_url:
        found.append("webhook")
    if settings.alert_email_to and settings.smtp_host:
        found.append("email")
    return found


def after_run(hub: Hub, run_id: int, status: str) -> str:
    """The job's hook once a run's status is known: alert when it failed for good. Returns ``status``."""
    if status == "failed" and channels(hub.settings):
        try:
            run_failed(hub, run_id)
        except Exception:  # noqa: BLE001 - an alert must never break the job
            log.exception("could not alert about the failure of run %s", run_id)
    return status


def needs_reconnect(hub: Hub, connection_id: int) -> None:
    """The hook of ``mark_needs_reconnect``: alert that a person must reconnect the connection."""
    if not channels(hub.settings):
        return
    try:
        connection_alert(hub, connection_id)
    except Exception:  # noqa: BLE001 - an alert must never break the job
        log.exception("could not alert about connection %s", connection_id)


def run_cause(error_kind: str | None, error_code: str | None, reason: str | None) -> str:
    """``run.failed:<error kind>:<error code or normalised reason>``, at most 255 characters."""
    from sync.failures import normalise

    cause = f"{RUN_FAILED}:{error_kind or 'error'}:{error_code or normalise(reason)}"
    if len(cause) > 255:
        cause = cause[:238] + "~" + hashlib.sha256(cause.encode()).hexdigest()[:16]
    return cause


def run_failed(hub: Hub, run_id: int) -> None:
    with hub.session() as s:
        run = s.get(SyncRun, run_id)
        if run is None or run.status != "failed":
            return
        merchant = s.get(Merchant, run.merchant_id)
        secrets = connection_secrets(s, hub.secrets, run.merchant_id)
        cause = run_cause(run.error_kind, run.error_code, run.reason)
        name = run.source_name or run.source_id
        reason = scrub(run.reason or "no reason recorded", secrets)
        event = {
            "event": RUN_FAILED, "cause": cause, "merchant": _merchant(merchant, run.merchant_id),
            "message": f"Sync run {run.id} ({run.kind} {run.source_platform} {name}) of "
                       f"{merchant.name if merchant else 'merchant ' + str(run.merchant_id)} failed "
                       f"after {run.attempts} attempt(s): {reason}",
            "run": {"id": run.id, "kind": run.kind, "status": run.status, "attempts": run.attempts,
                    "source": {"platform": run.source_platform, "id": run.source_id, "name": run.source_name},
                    "error_kind": run.error_kind, "error_code": run.error_code, "reason": reason},
            "at": _iso(run.finished_at or utcnow()),
            "console_url": f"{hub.settings.public_url}/console/runs/{run.id}",
        }
    notify(hub, cause, event, run.merchant_id)


def connection_alert(hub: Hub, connection_id: int) -> None:
    with hub.session() as s:
        conn = s.get(Connection, connection_id)
        if conn is None or conn.status != "needs_reconnect":
            return
        merchant = s.get(Merchant, conn.merchant_id)
        reason = scrub(conn.status_reason or "the platform refused its credentials",
                       connection_secrets(s, hub.secrets, conn.merchant_id))
        cause = f"reconnect:{conn.id}"
        event = {
            "event": NEEDS_RECONNECT, "cause": cause, "merchant": _merchant(merchant, conn.merchant_id),
            "message": f"The {conn.platform} connection {conn.id} ({conn.account}) of "
                       f"{merchant.name if merchant else 'merchant ' + str(conn.merchant_id)} needs reconnecting: "
                       f"{reason}. Its syncs wait until it is reconnected.",
            "connection": {"id": conn.id, "platform": conn.platform, "account": conn.account,
                           "status": conn.status, "reason": reason},
            "at": _iso(utcnow()),
            "console_url": f"{hub.settings.public_url}/console/runs?merchant={conn.merchant_id}&status=retrying",
        }
    notify(hub, cause, event, conn.merchant_id)


def notify(hub: Hub, cause: str, event: dict[str, Any], merchant_id: int | None) -> None:
    """Send ``event`` on every configured channel that has not carried ``cause`` within the hour."""
    senders = {"webhook": _send_webhook, "email": _send_email}
    for channel in channels(hub.settings):
        claim = _claim(hub, cause, channel, merchant_id)
        if claim is None:
            continue
        try:
            detail = senders[channel](hub.settings, event)
            ok = True
        except Exception as exc:  # noqa: BLE001 - a failing target is logged and recorded, never raised
            ok, detail = False, {"error": _describe(exc)}
            log.warning("alert %s by %s failed: %s", cause, channel, detail["error"])
        with hub.session() as s:
            row = s.get(AlertSent, claim)
            if row is not None:
                row.ok, row.detail = ok, {"event": event["event"], **detail}


def _claim(hub: Hub, cause: str, channel: str, merchant_id: int | None) -> int | None:
    """Our row in ``alerts_sent`` when this is the first alert of ``cause`` on ``channel`` within the hour,
    else None. The earliest row wins, so two workers failing at once send one alert."""
    since = utcnow() - WINDOW
    with hub.session() as s:
        if s.scalar(select(func.count()).select_from(AlertSent).where(
                AlertSent.cause == cause, AlertSent.channel == channel, AlertSent.sent_at >= since)):
            return None
        row = AlertSent(cause=cause, channel=channel, merchant_id=merchant_id, ok=False,
                        detail={"state": "sending"})
        s.add(row)
        s.commit()
        first = s.scalar(select(func.min(AlertSent.id)).where(
            AlertSent.cause == cause, AlertSent.channel == channel, AlertSent.sent_at >= since))
        if first != row.id:
            s.delete(row)
            return None
        return row.id


def _send_webhook(settings: Settings, event: dict[str, Any]) -> dict[str, Any]:
    assert settings.alert_webhook_url
    response = requests.post(settings.alert_webhook_url, json=event, timeout=TIMEOUT,
                             headers={"User-Agent": "o2c-hub-alerts"}, allow_redirects=False)
    if response.status_code >= 300:
        raise AlertRefused(f"the webhook answered HTTP {response.status_code}")
    return {"status": response.status_code}


def _send_email(settings: Settings, event: dict[str, Any]) -> dict[str, Any]:
    lines = [event["message"], "", f"Cause: {event['cause']}", f"At: {event['at']} UTC",
             f"Console: {event['console_url']}", "",
             "You get at most one alert an hour for the same cause."]
    sent = mail.send_mail(settings, list(settings.alert_email_to), f"[O2C Hub] {event['message'][:150]}",
                          "\n".join(lines))
    return {"recipients": sent}


class AlertRefused(RuntimeError):
    """The target answered, but not with success."""


def _describe(exc: Exception) -> str:
    """What went wrong, without the target's address (a webhook URL may itself be a secret)."""
    if isinstance(exc, AlertRefused | smtplib.SMTPResponseException):
        return str(exc)[:300] if isinstance(exc, AlertRefused) else f"SMTP {exc.smtp_code}"
    return type(exc).__name__


def _merchant(merchant: Merchant | None, merchant_id: int) -> dict[str, Any]:
    return {"id": merchant_id, "name": merchant.name if merchant else None}


def _iso(value: Any) -> str:
    return value.isoformat(timespec="seconds") + "Z"
