"""The hub's error kinds: every connector translates its platform's failures into one of these."""

from __future__ import annotations

from typing import Any


class ConnectorError(Exception):
    """A call to a platform failed.

    ``platform`` names the platform, ``code`` is the platform's own error or fault code (or the HTTP
    status when it gave none) and ``detail`` its own words. ``str()`` gives a one-line reason a support
    agent can act on; it never contains a secret. ``excerpt`` is the failing call, already redacted
    (``connectors.redact.excerpt``): ``{"request": {"method", "url", "body"}, "response": {"status", "body"}}``.
    """

    kind = "error"

    def __init__(self, message: str, *, platform: str = "", code: str | int | None = None,
                 detail: str | None = None, status: int | None = None,
                 excerpt: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.platform = platform
        self.code = None if code is None else str(code)
        self.detail = detail
        self.status = status
        self.excerpt = excerpt

    def __str__(self) -> str:
        parts = [f"{self.platform}: " if self.platform else "", self.message]
        if self.code:
            parts.append(f" (code {self.code})")
        if self.detail and self.detail not in self.message:
            parts.append(f": {self.detail}")
        return "".join(parts)[:1000]


class Retryable(ConnectorError):
    """Transient: 5xx, timeout, connection error, 429. ``retry_after`` is the platform's hint in seconds."""

    kind = "retryable"

    def __init__(self, message: str, *, retry_after: float | None = None, **kw: Any) -> None:
        super().__init__(message, **kw)
        self.retry_after = retry_after


class AuthExpired(ConnectorError):
    """The access token was refused: refresh once and retry, else the connection needs reconnecting."""

    kind = "auth"


class Permanent(ConnectorError):
    """The platform refused the request for good (validation, not found, forbidden)."""

    kind = "permanent"


def with_excerpt(exc: BaseException, excerpt: dict[str, Any] | None) -> BaseException:
    """Attach the failing call's redacted excerpt to a connector error (unless it has one); returns it."""
    if isinstance(exc, ConnectorError) and exc.excerpt is None and excerpt is not None:
        exc.excerpt = excerpt
    return exc
