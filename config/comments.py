"""The comments of a rules file, by the setting they stand above: ``comments_by_key(text)`` reads
``default_rules.yaml``'s explanation of each setting (``items.when_missing`` → "no matching item: create
one | use fallback_item | fail the sync") so the console can show it beside the setting."""

from __future__ import annotations

import re

_KEY = re.compile(r"^(?P<indent> *)(?P<key>[A-Za-z_][A-Za-z0-9_]*):(?:\s|$)")
_COMMENT = re.compile(r"^ *# ?(?P<text>.*)$")


def comments_by_key(text: str) -> dict[str, str]:
    """``section.setting`` (and deeper, e.g. ``payments.deposit_accounts.gift_card``) → the comment lines
    right above it, joined into one text. A blank line ends a comment that belongs to nothing."""
    found: dict[str, str] = {}
    pending: list[str] = []
    path: list[tuple[int, str]] = []
    for line in text.splitlines():
        if not line.strip():
            pending = []
            continue
        comment = _COMMENT.match(line)
        if comment:
            pending.append(comment.group("text").strip())
            continue
        key = _KEY.match(line)
        if key is None:   # a list item or a continued value: not a setting
            pending = []
            continue
        indent = len(key.group("indent"))
        path = [(i, k) for i, k in path if i < indent] + [(indent, key.group("key"))]
        if pending:
            found[".".join(k for _, k in path)] = _joined(pending)
        pending = []
    return found


def _joined(lines: list[str]) -> str:
    """Comment lines as one text: a line that starts a new alternative (``line: …``, ``unit_price: …``)
    begins a new sentence on its own line."""
    out: list[str] = []
    for line in lines:
        if out and not re.match(r"^[a-z_]+: ", line):
            out[-1] = f"{out[-1]} {line}"
        else:
            out.append(line)
    return "\n".join(out)
