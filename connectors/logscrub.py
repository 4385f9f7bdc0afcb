"""Keep tokens out of the logs the HTTP libraries write at DEBUG.

hubspot-api-client logs every preloaded response body (token responses included) on
``hubspot.*.rest``, and urllib3 logs request paths, which for HubSpot's token-info and refresh-token
endpoints hold the token itself. ``install()`` (idempotent) drops the former and masks the latter.
"""

from __future__ import annotations

import logging
import re

_TOKEN_PATH = re.compile(r"(/oauth/v1/(?:access|refresh)-tokens/)[^\s\"'?&/]+")
_SDK_BODY_LOGGERS = ("hubspot.oauth.rest", "hubspot.crm.contacts.rest")
_PATH_LOGGERS = ("urllib3.connectionpool", "werkzeug")


class _DropBodies(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("response body")


class _MaskTokenPaths(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - a broken record is not ours to fix
            return True
        if "/oauth/v1/" in message:
            record.msg, record.args = _TOKEN_PATH.sub(r"\1[redacted]", message), None
        return True


_installed = False


def install() -> None:
    """Add the filters to the libraries' loggers (once per process)."""
    global _installed
    if _installed:
        return
    for name in _SDK_BODY_LOGGERS:
        logging.getLogger(name).addFilter(_DropBodies())
    for name in _PATH_LOGGERS:
        logging.getLogger(name).addFilter(_MaskTokenPaths())
    _installed = True
