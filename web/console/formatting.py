"""How the console writes times and JSON: UTC timestamps, and pretty JSON whose money keeps its exact
digits (Decimals written as bare numbers, never through float)."""

from __future__ import annotations

import json
import re
from datetime import datetime
from decimal import Decimal
from typing import Any

_MARK = "\u0000dec:"
_MARKED = re.compile(r'"\\u0000dec:(-?[0-9]+(?:\.[0-9]+)?(?:E[+-]?[0-9]+)?)"')


def fmt_time(value: datetime | str | None) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value.replace("T", " ").rstrip("Z") + " UTC"
    return value.strftime("%Y-%m-%d %H:%M:%S") + " UTC"


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
