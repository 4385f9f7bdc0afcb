"""One strict reader for every identifier, date and free text that comes from outside the hub (a path, a
query string, a header, a JSON body, a webhook). Pure: no I/O.

* Identifiers are ASCII digits only (``str.isdigit()`` also takes "²" and "١٢٣", which ``int()`` then
  refuses or reads as another number), or a JSON integer (never a bool), inside the range of the column
  or the platform field they are looked up in: the hub's row ids are INTEGER columns, so 2^31 - 1 at most.
* Dates and date-times are ISO 8601 and must stay something Python can convert and compare:
  ``0001-01-01T00:00:00+01:00`` is valid ISO but lies before ``datetime.min`` once taken to UTC.
* Free text loses what no database can store: lone surrogates (``"\\ud800"`` decoded from JSON) become
  U+FFFD and NUL characters (which PostgreSQL refuses in text) are dropped.

Every refusal raises ``InvalidInput`` with a one-line message that names the parameter.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, date, datetime, time
from typing import Any

INTEGER_MAX = 2**31 - 1      # an INTEGER column: every row id of the hub's own tables
BIGINT_MAX = 2**63 - 1       # a BIGINT column
UINT64_MAX = 2**64 - 1       # a platform's unsigned 64-bit id (Shopify's legacyResourceId, WordPress post ids)
ROW_ID_MAX = INTEGER_MAX

_ASCII_SPACE = " \t\r\n"
_MAX_DIGITS = 20             # 2^64 has 20 digits: anything longer is out of every range without reading it
_SURROGATE = re.compile("[\ud800-\udfff]")
_MAX_SHOWN = 40


class InvalidInput(ValueError):
    """A value from outside that the hub does not take; ``str()`` is a one-line message naming it."""

    def __init__(self, name: str, message: str) -> None:
        super().__init__(f"{name} {message}")
        self.name = name


def shown(raw: Any) -> str:
    """The value as an error message quotes it: short, one line, printable, in double quotes; a value that
    is not text is written as JSON writes it (``true``, ``null``, ``12``), never as a Python repr."""
    if isinstance(raw, str):
        text = raw
    else:
        try:
            text = json.dumps(raw, default=str, ensure_ascii=False)
        except (TypeError, ValueError):
            text = str(raw)
    full = len(text)
    text = clean_text(text)
    text = "".join(c if c.isprintable() else "?" for c in text[:_MAX_SHOWN])
    return f'"{text}{"…" if full > _MAX_SHOWN else ""}"'



def is_ascii_digits(text: str) -> bool:
    """True for a non-empty run of ``0``–``9`` only."""
    return bool(text) and text.isascii() and text.isdigit()


def parse_id(raw: Any, *, name: str = "id", low: int = 1, high: int = ROW_ID_MAX) -> int:
    """An identifier from outside: ASCII digits (surrounding ASCII blanks allowed) or a JSON integer, from
    ``low`` to ``high`` (the range of the column it is looked up in)."""
    if isinstance(raw, bool) or not isinstance(raw, int | str):
        raise InvalidInput(name, f"must be a whole number, not {shown(raw)}")
    if isinstance(raw, str):
        text = raw.strip(_ASCII_SPACE)
        if not is_ascii_digits(text):
            raise InvalidInput(name, f"must be a whole number (digits 0-9 only), not {shown(raw)}")
        if len(text.lstrip("0")) > _MAX_DIGITS:
            raise InvalidInput(name, f"must be at most {high}, not {shown(raw)}")
        value = int(text)
    else:
        value = raw
    if value < low or value > high:
        raise InvalidInput(name, f"must be from {low} to {high}, not {shown(raw)}")
    return value


def parse_optional_id(raw: Any, *, name: str = "id", low: int = 1, high: int = ROW_ID_MAX) -> int | None:
    """``parse_id``, with None or blank text meaning "not given"."""
    if raw is None or (isinstance(raw, str) and not raw.strip(_ASCII_SPACE)):
        return None
    return parse_id(raw, name=name, low=low, high=high)


def parse_date(raw: Any, *, name: str = "date") -> date:
    """An ISO calendar date (``2026-01-31``)."""
    text = _iso_text(raw, name, "a date like 2026-01-31")
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise InvalidInput(name, f"must be a date like 2026-01-31, not {shown(raw)}") from None


def parse_datetime(raw: Any, *, name: str = "date-time") -> datetime:
    """An ISO date (midnight UTC) or date-time (``Z`` or an offset; none means UTC), as a naive UTC
    ``datetime`` like the stored times. Refused when it cannot be taken to UTC (before year 1 or after
    year 9999 there)."""
    wanted = "a date (2026-01-31) or a date-time (2026-01-31T12:00:00Z)"
    text = _iso_text(raw, name, wanted)
    try:
        if len(text) <= 10:
            return datetime.combine(date.fromisoformat(text), time.min)
        value = datetime.fromisoformat(text[:-1] + "+00:00" if text[-1:] in ("Z", "z") else text)
    except ValueError:
        raise InvalidInput(name, f"must be {wanted}, not {shown(raw)}") from None
    if value.tzinfo is None:
        return value
    try:
        return value.astimezone(UTC).replace(tzinfo=None)
    except OverflowError:
        raise InvalidInput(name, f"is out of range once taken to UTC: {shown(raw)}") from None


def parse_optional_datetime(raw: Any, *, name: str = "date-time") -> datetime | None:
    """``parse_datetime``, with None or blank text meaning "not given"."""
    if raw is None or (isinstance(raw, str) and not raw.strip(_ASCII_SPACE)):
        return None
    return parse_datetime(raw, name=name)


def clean_text(value: str) -> str:
    """The text with lone surrogates replaced by U+FFFD and NUL characters dropped: storable anywhere."""
    if value.isascii():
        return value.replace("\x00", "") if "\x00" in value else value
    return _SURROGATE.sub("\ufffd", value).replace("\x00", "")


def clean_json(value: Any) -> Any:
    """A decoded JSON value with every string in it (object keys too) passed through ``clean_text``.
    Containers are cleaned in place (without recursion, however deep they nest) and returned."""
    if isinstance(value, str):
        return clean_text(value)
    stack = [value] if isinstance(value, dict | list) else []
    while stack:
        node = stack.pop()
        if isinstance(node, list):
            for i, item in enumerate(node):
                if isinstance(item, str):
                    node[i] = clean_text(item)
                elif isinstance(item, dict | list):
                    stack.append(item)
            continue
        items = list(node.items())
        node.clear()
        for key, item in items:
            if isinstance(item, str):
                item = clean_text(item)
            elif isinstance(item, dict | list):
                stack.append(item)
            node[clean_text(key) if isinstance(key, str) else key] = item
    return value


def _iso_text(raw: Any, name: str, wanted: str) -> str:
    if not isinstance(raw, str):
        raise InvalidInput(name, f"must be {wanted}, not {shown(raw)}")
    text = raw.strip(_ASCII_SPACE)
    if not text or not text.isascii() or len(text) > 40:
        raise InvalidInput(name, f"must be {wanted}, not {shown(raw)}")
    return text
