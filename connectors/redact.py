"""Redacted excerpts of a failing platform call, safe to store and show to support.

``excerpt(...)`` gives ``{"request": {"method", "url", "body"}, "response": {"status", "body"}}``:
URLs lose their credentials (query parameters like ``access_token``, ``consumer_secret``,
``oauth_signature``, any ``*token*``/``*secret*``/``*password*`` one, and ``user:password@``),
JSON keys that name a secret get ``"[redacted]"`` as their value, e-mail addresses are masked
(``a***@example.com``), ``Bearer`` tokens are cut out and bodies are cut to about 2,000 characters.
Headers are never taken. Pure functions, no I/O.

``scrub_secrets(text)`` and ``scrub_json(value)`` are the one place that knows what a credential looks like
in free text (``Bearer``/``Basic`` values, ``access_token=…`` parameters, ``"client_secret": "…"`` pairs,
``Authorization:`` headers, and tokens of the platforms' known formats: Shopify ``shpat_``/``shpss_``/…,
WooCommerce ``ck_``/``cs_``, Intuit ``AB11…`` refresh tokens and JWT access tokens, HubSpot ``pat-…`` and
OAuth tokens, the hub's own ``o2c_`` API tokens). ``hub.scrubbing`` adds the secrets the hub holds.
"""

from __future__ import annotations

import json
import re
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

REDACTED = "[redacted]"
BODY_LIMIT = 2000
PARSE_LIMIT = 1_000_000   # larger bodies are not parsed as JSON, only cut and scrubbed as text

# query or form parameters that carry a credential (compared lower-case)
SECRET_PARAMS = frozenset({
    "access_token", "refresh_token", "id_token", "consumer_key", "consumer_secret", "client_secret",
    "code", "oauth_signature", "oauth_nonce", "oauth_consumer_key", "oauth_token", "api_key", "apikey",
    "hapikey", "key", "signature", "sig", "password", "authorization",
})
SECRET_PARAM_WORDS = ("token", "secret", "password", "passwd")

# JSON keys whose value is a secret (compared lower-case, camelCase and dashes as snake_case): these, any
# key ending like SECRET_KEY_SUFFIXES, and any key with a word of SECRET_KEY_WORDS in it
SECRET_KEYS = frozenset({
    "access_token", "refresh_token", "id_token", "client_secret", "password", "consumer_secret",
    "consumer_key", "authorization", "api_key", "apikey", "hapikey", "token", "secret", "private_key",
    "signature", "cookie", "set_cookie", "credential", "credentials", "client_assertion",
})
SECRET_KEY_SUFFIXES = ("_token", "_secret", "_password", "_api_key", "_key_secret", "_signature")
SECRET_KEY_WORDS = ("token", "secret", "password", "passwd", "authorization", "authorisation", "credential",
                    "cookie", "api_key", "apikey", "signature", "consumer_key", "private_key")
# not credentials although named like one: QuickBooks' object version (needed to debug stale writes), and
# what is said *about* a token (its kind, when it expires, which one it is)
NOT_SECRET_KEYS = frozenset({"sync_token", "token_type", "token_expires_at", "expires_at"})
NOT_SECRET_KEY_SUFFIXES = ("_id", "_ids", "_type", "_at", "_count", "_name", "_kind", "_expires_in")

# tokens of the platforms' documented formats (and the hub's API tokens), wherever they stand
TOKEN_FORMATS = re.compile(
    r"\b(?:shp(?:at|ss|ca|pa|ua|rt)_[A-Za-z0-9_-]{8,}"             # Shopify tokens and app secrets
    r"|c[ks]_[A-Fa-f0-9]{32,64}"                                   # WooCommerce consumer key / secret
    r"|AB1[0-9][A-Za-z0-9]{30,}"                                   # Intuit refresh tokens (AB11…)
    r"|eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_.-]{16,}"                  # JWT / JWE (Intuit access tokens)
    r"|pat-[a-z]{2,3}[0-9]-[A-Fa-f0-9]{8}(?:-[A-Fa-f0-9]{4}){3}-[A-Fa-f0-9]{12}"  # HubSpot private app
    r"|(?:na|eu|ap)[0-9]-[A-Fa-f0-9]{4}(?:-[A-Fa-f0-9]{4}){3}-[A-Fa-f0-9]{12}"    # HubSpot refresh tokens
    r"|C[A-Z](?=[A-Za-z_-]*[0-9])[A-Za-z0-9_-]{50,}"               # HubSpot OAuth access tokens (CIS…, CJ…)
    r"|o2c_[A-Za-z0-9_-]{40,})"                                    # the hub's own API tokens
    r"(?![A-Za-z0-9_-])")
_EMAIL = re.compile(r"([A-Za-z0-9._%+-])[A-Za-z0-9._%+-]*(@|%40)([A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+)")
_BEARER = re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]{8,}")
_HEADER = re.compile(r"(?i)\b(x-shopify-access-token|x-api-key|x-hubspot-api-key|x-wc-webhook-signature"
                     r"|intuit-signature|x-hubspot-signature(?:-v3)?|authorization|cookie)(\s*[:=]\s*)"
                     r"(?!(?:bearer|basic)\s)(?!\[redacted\])([^\s,;\"'&<>]{6,})")
_JSON_PAIR = re.compile(r'"([^"\\]{1,80})"(\s*:\s*)("(?:[^"\\]|\\.)*"?|[^,}\]\s]+)')
_REPR_PAIR = re.compile(r"'([^'\\]{1,80})'(\s*:\s*)('(?:[^'\\]|\\.)*'?)")   # a Python dict in a message
_PARAM = re.compile(r"(?<![\w.%-])([A-Za-z_][\w.\-\[\]]{0,60})=(?!\[redacted\])([^&\s\"'<>;,]+)")
_LONG_RUN = re.compile(r"[A-Za-z0-9_-]{11,}")       # every token format is at least this long
_HEADER_WORDS = ("token", "api-key", "signature", "authori", "cookie")
# every secret parameter or key name has one of these words (SECRET_PARAMS, SECRET_KEYS, their suffixes)
_NAME_WORDS = ("token", "secret", "passw", "key", "code", "sig", "oauth", "authori", "credential", "cookie",
               "assertion")
_FORM = re.compile(r"^[\w.\-%\[\]]+=[^&\s]*(?:&[\w.\-%\[\]]+=[^&\s]*)*$")
_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")
_NUM = "\u0000num:"
_MARKED_NUM = re.compile(r'"\\u0000num:(-?[0-9]+(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?)"')


def is_secret_param(name: str) -> bool:
    low = name.lower()
    return low in SECRET_PARAMS or low.startswith("oauth_") or any(w in low for w in SECRET_PARAM_WORDS)


def is_secret_key(name: str) -> bool:
    key = _CAMEL.sub("_", str(name)).lower().replace("-", "_")
    if key in NOT_SECRET_KEYS:
        return False
    if key in SECRET_KEYS or key.endswith(SECRET_KEY_SUFFIXES):
        return True
    return any(w in key for w in SECRET_KEY_WORDS) and not key.endswith(NOT_SECRET_KEY_SUFFIXES)


def _secret_param_in_text(name: str) -> bool:
    key = _CAMEL.sub("_", name).lower().replace("-", "_")
    return key not in NOT_SECRET_KEYS and is_secret_param(name)


def scrub_secrets(text: str) -> str:
    """Free text with every credential-looking value replaced by ``[redacted]`` (e-mails are left alone:
    this is for what the hub stores; ``redact_body`` also masks them). Idempotent."""
    if not text:
        return text
    if _LONG_RUN.search(text):
        text = TOKEN_FORMATS.sub(REDACTED, text)
    low = text.lower()      # each pattern runs only where its words appear (most texts have none)
    if "bearer" in low or "basic" in low:
        text = _BEARER.sub(lambda m: f"{m.group(1)} {REDACTED}", text)
    if any(w in low for w in _HEADER_WORDS):
        text = _HEADER.sub(lambda m: f"{m.group(1)}{m.group(2)}{REDACTED}", text)
    if not any(w in low for w in _NAME_WORDS):
        return text
    if "=" in text:
        text = _PARAM.sub(lambda m: f"{m.group(1)}={REDACTED}" if _secret_param_in_text(m.group(1))
                          else m.group(0), text)
    if '"' in text:
        text = _JSON_PAIR.sub(lambda m: f'"{m.group(1)}"{m.group(2)}"{REDACTED}"' if is_secret_key(m.group(1))
                              else m.group(0), text)
    if "'" in text:
        text = _REPR_PAIR.sub(lambda m: f"'{m.group(1)}'{m.group(2)}'{REDACTED}'" if is_secret_key(m.group(1))
                              else m.group(0), text)
    return text


def scrub_json(value: Any) -> Any:
    """A copy of a JSON-like value: values of secret keys replaced, every string passed through
    ``scrub_secrets`` (e-mails left alone)."""
    if isinstance(value, dict):
        return {k: (REDACTED if is_secret_key(k) and v not in (None, "", REDACTED) else scrub_json(v))
                for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [scrub_json(v) for v in value]
    if isinstance(value, str):
        return scrub_secrets(value)
    return value


def mask_emails(text: str) -> str:
    """``ada@example.com`` → ``a***@example.com`` (also ``ada%40example.com``, as in a URL)."""
    return _EMAIL.sub(lambda m: f"{m.group(1)}***{m.group(2)}{m.group(3)}", text)


def redact_url(url: str | None) -> str | None:
    """The URL without credentials in its query or user part, without fragment, e-mails masked."""
    if not url:
        return url
    try:
        parts = urlsplit(str(url))
        host = parts.hostname or ""
        netloc = host if parts.port is None else f"{host}:{parts.port}"
    except ValueError:
        return mask_emails(_scrub_text(str(url)))[:BODY_LIMIT]
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if not is_secret_param(k)]
    clean = urlunsplit((parts.scheme, netloc, parts.path, urlencode(query, quote_via=quote), ""))
    return mask_emails(clean)[:BODY_LIMIT]


def redact_value(value: Any) -> Any:
    """A JSON value with the values of secret keys replaced, credential-looking strings scrubbed and
    e-mails masked."""
    if isinstance(value, dict):
        return {k: (REDACTED if is_secret_key(k) and v not in (None, "") else redact_value(v))
                for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [redact_value(v) for v in value]
    if isinstance(value, str):
        return mask_emails(scrub_secrets(value))
    return value


def redact_body(body: Any, limit: int = BODY_LIMIT) -> str | None:
    """A request or response body as redacted text of at most ``limit`` characters (plus a mark)."""
    if body is None:
        return None
    if isinstance(body, (bytes, bytearray)):
        body = bytes(body[:PARSE_LIMIT]).decode("utf-8", "replace")
    if isinstance(body, (dict, list, tuple)):
        text = dumps(redact_value(body))
    else:
        text = str(body)
        if not text:
            return ""
        text = _redact_text(text)
    return _cut(text, limit)


def excerpt(method: str | None, url: str | None, request_body: Any, status: int | None,
            response_body: Any) -> dict[str, Any]:
    """The stored shape of a failing call (never a header)."""
    return {"request": {"method": (method or "").upper() or None, "url": redact_url(url),
                        "body": redact_body(request_body)},
            "response": {"status": status, "body": redact_body(response_body)}}


def dumps(value: Any) -> str:
    """JSON text in which numbers keep the digits they came with (``48.00`` stays ``48.00``: money)."""
    return _MARKED_NUM.sub(r"\1", json.dumps(_mark_numbers(value), ensure_ascii=False, default=str))


def _mark_numbers(value: Any) -> Any:
    if isinstance(value, Decimal):
        return _NUM + str(value) if value.is_finite() else str(value)
    if isinstance(value, dict):
        return {k: _mark_numbers(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_mark_numbers(v) for v in value]
    return value


def _redact_text(text: str) -> str:
    stripped = text.strip()
    if stripped[:1] in ("{", "[") and len(stripped) <= PARSE_LIMIT:
        try:
            return dumps(redact_value(json.loads(stripped, parse_float=Decimal)))
        except ValueError:
            pass
    if "=" in stripped and _FORM.match(stripped):
        pairs = parse_qsl(stripped, keep_blank_values=True)
        return mask_emails(urlencode([(k, REDACTED if is_secret_param(k) else v) for k, v in pairs]))
    return mask_emails(_scrub_text(text[:PARSE_LIMIT]))


def _scrub_text(text: str) -> str:
    """Text that is not whole JSON (cut, or HTML around it): secret "key": value pairs and tokens."""
    return scrub_secrets(text)


def _cut(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    return text[:limit] + f"… [{len(text) - limit} more characters]"
