"""A merchant's mapping rules: stored as overrides of ``config/default_rules.yaml``, exported and imported
as YAML (``o2c mapping export|import``), validated before they are saved."""

from __future__ import annotations

from typing import Any

import yaml
from sqlalchemy.orm import Session

from hub.models import MappingRuleSet, utcnow
from mappings.rules import MappingRules, RulesError, default_rules_dict, load_rules

HEADER = """\
# O2C Hub mapping rules for merchant {merchant} (version {version}).
# Every setting is shown; edit and import with `o2c mapping import {merchant} FILE`.
# Settings equal to the defaults follow the defaults when those change.
"""


def rule_set(s: Session, merchant_id: int) -> MappingRuleSet | None:
    return s.get(MappingRuleSet, merchant_id)


def rules_for(s: Session, merchant_id: int) -> MappingRules:
    """The merchant's effective rules (defaults when it has no overrides)."""
    row = rule_set(s, merchant_id)
    return load_rules(row.overrides if row is not None else None)


def export_yaml(s: Session, merchant_id: int) -> str:
    row = rule_set(s, merchant_id)
    rules = rules_for(s, merchant_id)
    body = yaml.safe_dump(rules.to_dict(), sort_keys=False, allow_unicode=True, default_flow_style=False)
    return HEADER.format(merchant=merchant_id, version=row.version if row else 0) + body


def parse_yaml(text: str) -> dict[str, Any]:
    """The overrides in a rules file (a mapping of sections); ``RulesError`` when it is not one."""
    try:
        data = yaml.safe_load(text) if text.strip() else {}
    except yaml.YAMLError as exc:
        raise RulesError("(yaml)", f"not valid YAML: {exc}") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise RulesError("(rules)", "the file must be a mapping of sections (items:, tax:, …)")
    return data


def save_overrides(s: Session, merchant_id: int, data: dict[str, Any], *, by: str | None = None) -> MappingRules:
    """Validate ``data`` (overrides or a full export) and store what differs from the defaults.
    Raises ``RulesError`` naming the field; nothing is stored then."""
    rules = load_rules(data)
    diff = _diff(rules.to_dict(), default_rules_dict())
    overrides = {} if diff is _SAME else diff
    row = rule_set(s, merchant_id)
    if row is None:
        row = MappingRuleSet(merchant_id=merchant_id, overrides=overrides, version=1, updated_by=by)
        s.add(row)
    else:
        row.overrides = overrides
        row.version = (row.version or 0) + 1
        row.updated_by = by
        row.updated_at = utcnow()
        row.problems = None
        row.checked_at = None
    s.flush()
    return rules


_MISSING = object()
_SAME = object()


def _diff(value: Any, default: Any) -> Any:
    """What in ``value`` differs from ``default`` (nested mappings compared key by key); ``_SAME`` if nothing."""
    if isinstance(value, dict) and isinstance(default, dict):
        out = {}
        for key, v in value.items():
            d = _diff(v, default.get(key, _MISSING))
            if d is not _SAME:
                out[key] = d
        return out or _SAME
    if default is _MISSING:
        return value
    norm_default = list(default) if isinstance(default, tuple) else default
    return _SAME if value == norm_default else value
