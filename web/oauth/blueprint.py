"""The connect flows' blueprint: ``/connect/<platform>`` and ``/connect/<platform>/callback``."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("oauth", __name__)
