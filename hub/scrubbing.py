"""No secret at rest: every text the hub stores from a platform's answer or an exception is scrubbed as it
is written, whichever code path writes it.

Two nets, applied together by ``scrub_text`` / ``scrub_value``:

* the secrets this process *holds*: the app secrets of the settings (pinned as they load) and every
  connection secret that passes through ``hub.crypto.SecretBox`` (registered when it is encrypted or
  decrypted, i.e. before any platform can echo it back). Recently used values are kept (at most
  ``RECENT_LIMIT``; the settings' are never dropped);
* what looks like a credential whoever it belongs to (``connectors.redact.scrub_secrets``).

The columns that hold outside text use the types below (``ScrubbedText``, ``ScrubbedString``,
``ScrubbedJSON``): SQLAlchemy runs ``process_bind_param`` on every value bound to them, in ORM flushes
and in Core ``insert``/``update`` statements alike, so no write path can forget the scrubbing. Stored rows
written before the hub scrubbed are cleaned by migration 0008. What the hub *shows* is scrubbed once more
(``hub.redaction``, the console's excerpts): the second fence.
"""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import quote

from sqlalchemy import JSON, String, Text
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator

from connectors.redact import REDACTED, is_secret_key, scrub_secrets

MIN_SECRET = 8          # shorter values are not searched for: they would cut ordinary words out of texts
MIN_EXTRA = 6           # the secrets a caller names itself (a merchant's, shown at display time)
RECENT_LIMIT = 4096     # connection secrets remembered per process (refreshed tokens push out old ones)
_SMALL = 48             # up to this many held values a plain search is fastest; beyond it, a prefix index


class _Registry:
    """The secrets held by this process (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pinned: set[str] = set()
        self._recent: OrderedDict[str, None] = OrderedDict()
        self._snapshot: tuple[tuple[str, ...], dict[str, tuple[str, ...]]] | None = None

    def hold(self, values: Iterable[Any], *, pinned: bool = False) -> None:
        forms = [f for v in values if isinstance(v, str) and len(v.strip()) >= MIN_SECRET for f in _forms(v)]
        if not forms:
            return
        with self._lock:
            changed = False
            for form in forms:
                if form in self._pinned:
                    continue
                if pinned:
                    self._pinned.add(form)
                    self._recent.pop(form, None)
                    changed = True
                elif form in self._recent:
                    self._recent.move_to_end(form)
                else:
                    self._recent[form] = None
                    changed = True
                    while len(self._recent) > RECENT_LIMIT:
                        self._recent.popitem(last=False)
            if changed:
                self._snapshot = None

    def snapshot(self) -> tuple[tuple[str, ...], dict[str, tuple[str, ...]]]:
        """Every held value (longest first) and the same by its first ``MIN_SECRET`` characters."""
        with self._lock:
            if self._snapshot is None:
                values = tuple(sorted(self._pinned | set(self._recent), key=len, reverse=True))
                index: dict[str, list[str]] = {}
                for value in values:
                    index.setdefault(value[:MIN_SECRET], []).append(value)
                self._snapshot = (values, {k: tuple(v) for k, v in index.items()})
            return self._snapshot

    def __len__(self) -> int:
        with self._lock:
            return len(self._pinned) + len(self._recent)


_held = _Registry()


def _forms(value: str) -> list[str]:
    """The value and the forms it takes inside a URL or a JSON string."""
    value = value.strip()
    forms = {value, quote(value, safe=""), json.dumps(value)[1:-1]}
    return [f for f in forms if len(f) >= MIN_SECRET]


def hold(*values: Any, pinned: bool = False) -> None:
    """Remember ``values`` as secrets to cut out of every stored text (non-strings and short ones are
    ignored). ``pinned``: never forgotten (the settings' app secrets)."""
    _held.hold(values, pinned=pinned)


def hold_mapping(secrets: Mapping[str, Any] | None) -> None:
    """Remember the secret values of a connection's secrets (``access_token``, ``consumer_secret``, …)."""
    if secrets:
        _held.hold(v for k, v in secrets.items() if is_secret_key(k))


def held_count() -> int:
    return len(_held)


def scrub_text(text: str, extra: Iterable[str] = ()) -> str:
    """``text`` with every held secret (and every value of ``extra``) and every credential-looking value
    replaced by ``[redacted]``. Idempotent; never raises."""
    if not text:
        return text
    for value in sorted((e for e in extra if e and len(e) >= MIN_EXTRA), key=len, reverse=True):
        text = text.replace(value, REDACTED)
    values, index = _held.snapshot()
    if len(values) <= _SMALL:
        for value in values:
            if value in text:
                text = text.replace(value, REDACTED)
    elif len(text) >= MIN_SECRET:
        text = _replace_indexed(text, index)
    return scrub_secrets(text)


def _replace_indexed(text: str, index: dict[str, tuple[str, ...]]) -> str:
    out: list[str] = []
    start = i = 0
    end = len(text) - MIN_SECRET
    while i <= end:
        for value in index.get(text[i:i + MIN_SECRET], ()):
            if text.startswith(value, i):
                out += (text[start:i], REDACTED)
                i = start = i + len(value)
                break
        else:
            i += 1
    if not out:
        return text
    out.append(text[start:])
    return "".join(out)


def scrub_value(value: Any, extra: Iterable[str] = ()) -> Any:
    """A copy of a JSON-like value: secret-named keys' values replaced, every string scrubbed."""
    extra = tuple(extra)
    if isinstance(value, dict):
        return {k: (REDACTED if is_secret_key(k) and v not in (None, "", REDACTED) else scrub_value(v, extra))
                for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [scrub_value(v, extra) for v in value]
    if isinstance(value, str):
        return scrub_text(value, extra)
    return value


# -- the column types of outside text -------------------------------------------------------------
class ScrubbedText(TypeDecorator[str]):
    """``Text`` whose every written value is scrubbed of secrets."""

    impl = Text
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> str | None:
        return None if value is None else scrub_text(str(value))


class ScrubbedString(TypeDecorator[str]):
    """``String(n)`` whose every written value is scrubbed of secrets (and still fits ``n``)."""

    impl = String
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> str | None:
        if value is None:
            return None
        text = scrub_text(str(value))
        length = getattr(self.impl, "length", None)
        return text[:length] if length else text


class ScrubbedJSON(TypeDecorator[Any]):
    """``JSON`` whose every written value is scrubbed: secret-named keys and secret strings at any depth."""

    impl = JSON
    cache_ok = True
    should_evaluate_none = True   # as JSON: a None set on purpose is JSON null, an unset column SQL NULL

    def process_bind_param(self, value: Any, dialect: Dialect) -> Any:
        return None if value is None else scrub_value(value)
