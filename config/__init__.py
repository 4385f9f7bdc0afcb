"""Packaged configuration files, read here and handed to their users as data: ``default_rules()`` parses
``default_rules.yaml`` (the mapping rules' defaults, which ``mappings.rules`` receives) and
``default_rule_comments()`` gives the comment that explains each of its settings."""

from __future__ import annotations

import copy
from functools import lru_cache
from importlib import resources
from typing import Any

import yaml


def _text() -> str:
    return (resources.files("config") / "default_rules.yaml").read_text(encoding="utf-8")


@lru_cache(maxsize=1)
def _default_rules() -> dict[str, Any]:
    data = yaml.safe_load(_text())
    if not isinstance(data, dict):
        raise ValueError("config/default_rules.yaml must be a mapping of sections")
    return data


def default_rules() -> dict[str, Any]:
    """The default mapping rules as plain data (a fresh copy)."""
    return copy.deepcopy(_default_rules())


@lru_cache(maxsize=1)
def _comments() -> dict[str, str]:
    from config.comments import comments_by_key

    return comments_by_key(_text())


def default_rule_comments() -> dict[str, str]:
    """``section.setting`` → the comment that explains it in ``default_rules.yaml`` (a fresh copy)."""
    return dict(_comments())
