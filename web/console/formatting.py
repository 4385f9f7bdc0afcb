"""How the console writes times and JSON: UTC timestamps (as ``<time>`` elements in pages, which the
console's script shows in the viewer's zone), and pretty JSON whose money keeps its exact digits (Decimals
written as bare numbers, never through float)."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from markupsafe import Markup

_MARK = "\u0000dec:"
_MARKED = re.compile(r'"\\u0000dec:(-?[0-9]+(?:\.[0-9]+)?(?:E[+-]?[0-9]+)?)"')


def fmt_time(value: datetime | str | None) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value.replace("T", " ").rstrip("Z") + " UTC"
    return value.strftime("%Y-%m-%d %H:%M:%S") + " UTC"


def time_tag(value: datetime | str | None) -> Markup:
    """A ``<time>`` element: UTC text that the console's script shows in the viewer's zone, with "5 min ago"."""
    text = fmt_time(value)
    if not text:
        return Markup("")
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.rstrip("Z"))
        except ValueError:
            return Markup("{}").format(text)
    if value.tzinfo is not None:
        value = value.astimezone(UTC).replace(tzinfo=None)
    return Markup('<time datetime="{}Z">{}</time>').format(value.isoformat(timespec="seconds"), text)


def pretty_json(value: Any) -> str:
    """Indented JSON; Decimals appear as the numbers they are (``24.00``, not ``"24.00"``)."""
    return _MARKED.sub(r"\1", json.dumps(_mark(value), indent=2))


def _mark(value: Any) -> Any:
    if isinstance(value, Decimal):
        return _MARK + format(value, "f")
    if isinstance(value, dict):
        return {k: _mark(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_mark(v) for v in value]
    return value
