"""Packaged configuration files, read here and handed to their users as data: ``default_rules()`` parses
``default_rules.yaml`` (the mapping rules' defaults, which ``mappings.rules`` receives)."""

from __future__ import annotations

import copy
from functools import lru_cache
from importlib import resources
from typing import Any

import yaml


@lru_cache(maxsize=1)
def _default_rules() -> dict[str, Any]:
    data = yaml.safe_load((resources.files("config") / "default_rules.yaml").read_text(encoding="utf-8"))
    if not isinstance(data, dict):
        raise ValueError("config/default_rules.yaml must be a mapping of sections")
    return data


def default_rules() -> dict[str, Any]:
    """The default mapping rules as plain data (a fresh copy)."""
    return copy.deepcopy(_default_rules())
