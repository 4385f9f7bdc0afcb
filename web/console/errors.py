"""The pages a browser gets for an HTTP error outside the API and the webhook receivers: styled like the
console, with its navigation, a plain sentence of what happened and where to go next.

The API keeps its JSON errors (``web.api``) and the receivers their short answers (platforms read the
status, nobody reads the body). Anything unexpected is logged with its traceback and shown as a 500 page
that names the time, so support can find it in the logs; never a traceback in the page.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from flask import Flask, g, render_template, request
from werkzeug.exceptions import HTTPException, InternalServerError, MethodNotAllowed
from werkzeug.wrappers import Response

from hub.models import utcnow
from web.console import security

log = logging.getLogger("o2c.web")
RECEIVER_PREFIXES = ("/webhooks/", "/healthz")

TITLES = {
    400: ("The request could not be used", "Something in the link or the form was not right."),
    401: ("Please sign in", "This needs a signed-in user."),
    403: ("Not allowed", "Your role does not allow this. An admin can change roles on the Staff page."),
    404: ("Not found", "There is nothing here, or it is not yours to see."),
    405: ("Not possible here", "This address does not take that kind of request."),
    413: ("Too large", "What was sent is larger than the hub accepts."),
    429: ("Too many requests", "Wait a moment and try again."),
    500: ("Something went wrong on our side", "The hub hit an unexpected error. It has been logged."),
}


def install(app: Flask, api_error: Callable[[HTTPException], Response | HTTPException]) -> None:
    """One handler for every HTTP error: JSON under /api/ (``api_error``), the bare answer for the
    receivers, an HTML page for everything else; and a 500 page for what nobody caught."""

    def http_error(exc: HTTPException) -> Response | HTTPException:
        answer = api_error(exc)
        if answer is not exc or request.path.startswith(RECEIVER_PREFIXES):
            return answer
        return page(exc)

    def unexpected(exc: Exception) -> Response | HTTPException:
        log.exception("unexpected error on %s %s", request.method, request.path)
        return http_error(InternalServerError())

    app.register_error_handler(HTTPException, http_error)
    app.register_error_handler(Exception, unexpected)


def page(exc: HTTPException) -> Response:
    code = exc.code or 500
    title, sentence = TITLES.get(code, (exc.name, ""))
    detail = exc.description if code in (400, 413) and exc.description else None
    if getattr(g, "user", None) is None:
        try:   # an unknown address never reached the console's guard: show the navigation when signed in
            g.user = security.session_user()
        except Exception:  # noqa: BLE001 - the error page must render even when the database is the problem
            g.user = None
    body = render_template("console/error.html", code=code, title=title, sentence=sentence, detail=detail,
                           when=utcnow().strftime("%Y-%m-%d %H:%M:%S UTC"))
    response = Response(body, status=code, mimetype="text/html")
    if isinstance(exc, MethodNotAllowed) and exc.valid_methods:
        response.headers["Allow"] = ", ".join(exc.valid_methods)
    return response
