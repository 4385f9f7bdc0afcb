"""E-mail over SMTP (``O2C_SMTP_HOST``, ``O2C_SMTP_PORT``, ``O2C_SMTP_USER``, ``O2C_SMTP_PASSWORD``,
``O2C_SMTP_FROM``, ``O2C_SMTP_STARTTLS``): the alerts and the one-time password links. Plain text, one
message a call; the caller decides what a failure means."""

from __future__ import annotations

import smtplib
import ssl
from email.message import EmailMessage
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from hub.settings import Settings

TIMEOUT = 5.0


def configured(settings: Settings) -> bool:
    return bool(settings.smtp_host)


def send_mail(settings: Settings, to: list[str], subject: str, body: str) -> int:
    """Send one message to ``to``; returns how many recipients the server accepted. Raises ``OSError``
    or ``smtplib.SMTPException`` when the server cannot be reached or refuses it."""
    assert settings.smtp_host
    msg = EmailMessage()
    msg["Subject"] = subject
    msg["From"] = settings.smtp_from or "o2c-hub@localhost"
    msg["To"] = ", ".join(to)
    msg.set_content(body)
    with smtplib.SMTP(settings.smtp_host, settings.smtp_port, timeout=TIMEOUT) as smtp:
        if settings.smtp_starttls:
            smtp.starttls(context=ssl.create_default_context())
        if settings.smtp_user:
            smtp.login(settings.smtp_user, settings.smtp_password or "")
        refused = smtp.send_message(msg)
    return len(to) - len(refused)


def describe(exc: BaseException) -> str:
    """What went wrong, in words for a person (never the server's address or a credential)."""
    if isinstance(exc, smtplib.SMTPResponseException):
        return f"the mail server refused it (SMTP {exc.smtp_code})"
    if isinstance(exc, smtplib.SMTPException):
        return "the mail server refused it"
    return "the mail server could not be reached"
