"""State and services shared by every entry point: settings, models and migrations, encryption, merchants,
users, audit. No Flask, no click. Importing it hands the mapping rules their defaults (``config``)."""

from __future__ import annotations

import config
from mappings import rules

rules.provide_defaults(config.default_rules())
