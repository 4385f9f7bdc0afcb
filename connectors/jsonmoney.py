"""JSON with exact money: Decimals are written as JSON numbers (never through float) and read back as
Decimals."""

from __future__ import annotations

import json
import re
from decimal import Decimal
from typing import Any

_MARK = "\u0000dec:"
_MARKED = re.compile(r'"\\u0000dec:(-?[0-9]+(?:\.[0-9]+)?)"')


def _mark(value: Any) -> Any:
    if isinstance(value, Decimal):
        return _MARK + format(value, "f")
    if isinstance(value, dict):
        return {k: _mark(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_mark(v) for v in value]
    if isinstance(value, float):
        raise TypeError("money must not be a float")
    return value


def dumps(obj: Any) -> str:
    """``json.dumps`` that writes every Decimal as a bare JSON number with its exact digits."""
    return _MARKED.sub(r"\1", json.dumps(_mark(obj)))


def loads(text: str | bytes) -> Any:
    """``json.loads`` that reads every non-integer number as a Decimal."""
    return json.loads(text, parse_float=Decimal)
