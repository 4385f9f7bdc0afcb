"""The console's blueprint: every page lives under ``/console`` and needs a signed-in user."""

from __future__ import annotations

from flask import Blueprint

from web.console import security
from web.console.formatting import time_tag

bp = Blueprint("console", __name__, url_prefix="/console")
bp.before_request(security.guard)
bp.add_app_template_filter(time_tag, "ts")


@bp.app_context_processor
def _template_helpers() -> dict[str, object]:
    return {"csrf_field": security.csrf_field}
