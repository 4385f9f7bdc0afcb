"""A merchant's mapping rules: stored as overrides of ``config/default_rules.yaml``, exported and imported
as YAML (``o2c mapping export|import``; the export carries the defaults' comment above each setting),
validated before they are saved. Every save is a new version (``MappingRuleVersion``: the overrides, who
and how), so the history can be listed, two versions compared and an earlier one restored as a new one."""

from __future__ import annotations

import difflib
import textwrap
from typing import Any

import yaml
from sqlalchemy import select
from sqlalchemy.orm import Session

import config
from hub.models import MappingRuleSet, MappingRuleVersion, utcnow
from mappings.rules import MappingRules, RulesError, default_rules_dict, load_rules

SOURCES = ("console", "cli", "rollback")

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
    return HEADER.format(merchant=merchant_id, version=row.version if row else 0) + commented_yaml(rules.to_dict())


def commented_yaml(data: dict[str, Any]) -> str:
    """``data`` (a full rules dict) as YAML with the defaults' comment above each setting it explains."""
    comments = config.default_rule_comments()
    out: list[str] = []
    for section, settings in data.items():
        if out:
            out.append("")
        if not isinstance(settings, dict):
            out.append(_dump({section: settings}))
            continue
        out.append(f"{section}:")
        for key, value in settings.items():
            for line in comments.get(f"{section}.{key}", "").splitlines():
                out.extend(f"  # {part}" for part in textwrap.wrap(line, 96, subsequent_indent="  "))
            out.extend("  " + line for line in _dump({key: value}).splitlines())
    return "\n".join(out) + "\n"


def plain_yaml(data: dict[str, Any]) -> str:
    return _dump(data) + "\n"


def _dump(data: dict[str, Any]) -> str:
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True, default_flow_style=False, width=100).rstrip("\n")


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


def save_overrides(s: Session, merchant_id: int, data: dict[str, Any], *, by: str | None = None,
                   source: str = "console", note: str | None = None) -> MappingRules:
    """Validate ``data`` (overrides or a full export) and store what differs from the defaults, as a new
    version saved ``by`` someone through ``source`` (console, cli, rollback). Raises ``RulesError`` naming
    the field; nothing is stored then (the caller commits)."""
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
    s.add(MappingRuleVersion(merchant_id=merchant_id, version=row.version, overrides=overrides,
                             author=(by or None) and by[:254], source=source, note=(note or None) and note[:255]))
    s.flush()
    return rules


def versions(s: Session, merchant_id: int) -> list[MappingRuleVersion]:
    """The merchant's saved versions, newest first."""
    return list(s.scalars(select(MappingRuleVersion).where(MappingRuleVersion.merchant_id == merchant_id)
                          .order_by(MappingRuleVersion.version.desc())))


def version_of(s: Session, merchant_id: int, version: int) -> MappingRuleVersion | None:
    return s.scalar(select(MappingRuleVersion).where(MappingRuleVersion.merchant_id == merchant_id,
                                                     MappingRuleVersion.version == version))


def version_yaml(overrides: dict[str, Any] | None) -> str:
    """The effective rules of a version's overrides as plain YAML (what a diff compares)."""
    try:
        return plain_yaml(load_rules(overrides or {}).to_dict())
    except RulesError:   # a version the rules of today no longer accept: its overrides as they were saved
        return plain_yaml(overrides or {})


def diff_lines(old: MappingRuleVersion | None, new: MappingRuleVersion) -> list[str]:
    """A unified diff of the effective rules from ``old`` (None: the defaults) to ``new``."""
    before = version_yaml(old.overrides if old is not None else None).splitlines()
    after = version_yaml(new.overrides).splitlines()
    label = f"version {old.version}" if old is not None else "the defaults"
    return list(difflib.unified_diff(before, after, fromfile=label, tofile=f"version {new.version}", lineterm="",
                                     n=2))


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
