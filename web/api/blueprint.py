"""The API's blueprint: bearer-token auth on every route but the OpenAPI document, JSON errors, and no
session at all (no cookie is read or set under ``/api/``, so there is nothing for CSRF to forge)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from flask import Blueprint, Flask, current_app, g, jsonify, request
from flask.sessions import SessionInterface, SessionMixin
from werkzeug.exceptions import HTTPException, MethodNotAllowed
from werkzeug.wrappers import Response

from web.api import tokens
from web.console.security import CurrentUser

if TYPE_CHECKING:
    from hub.runtime import Hub

PREFIX = "/api/v1"
PUBLIC_ENDPOINTS = {"api.openapi"}

bp = Blueprint("api", __name__, url_prefix=PREFIX)


class ApiError(Exception):
    """An answer other than success: ``{"error": message}`` with ``status``."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def hub() -> Hub:
    return current_app.extensions["o2c"]


def user() -> CurrentUser:
    return g.api_user


def error(status: int, message: str) -> Response:
    response = jsonify(error=message)
    response.status_code = status
    if status == 401:
        response.headers["WWW-Authenticate"] = 'Bearer realm="o2c"'
    return response


@bp.before_request
def _authenticate() -> Response | None:
    g.api_user = None
    if request.endpoint in PUBLIC_ENDPOINTS:
        return None
    header = request.headers.get("Authorization", "")
    scheme, _, plain = header.partition(" ")
    if scheme.lower() != "bearer" or not plain.strip():
        return error(401, "send an API token: Authorization: Bearer <token>")
    with hub().session() as s:
        found = tokens.authenticate(s, plain.strip())
        if found is None:
            return error(401, "the API token is unknown, revoked or its user is disabled")
        token, row = found
        g.api_user = CurrentUser(row.id, row.email, row.role, row.merchant_id)
        g.api_token_id = token.id
    return None


@bp.after_request
def _no_store(response: Response) -> Response:
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.errorhandler(ApiError)
def _api_error(exc: ApiError) -> Response:
    return error(exc.status, exc.message)


def http_error(exc: HTTPException) -> Response | HTTPException:
    """Every HTTP error under ``/api/`` (unknown route and wrong method included) as JSON."""
    if not _is_api(request.path):
        return exc
    response = error(exc.code or 500, exc.description or exc.name)
    if isinstance(exc, MethodNotAllowed) and exc.valid_methods:  # RFC 9110: a 405 says what is allowed
        response.headers["Allow"] = ", ".join(exc.valid_methods)
    return response


def _is_api(path: str) -> bool:
    return path == PREFIX or path.startswith(PREFIX + "/")


class _NoSessionForApi(SessionInterface):
    """The app's session interface, except that API requests get none (no cookie read, none set)."""

    def __init__(self, inner: SessionInterface) -> None:
        self.inner = inner

    def open_session(self, app: Flask, request: Any) -> SessionMixin | None:
        if _is_api(request.path):
            return None  # Flask then uses a null session and saves nothing
        return self.inner.open_session(app, request)

    def save_session(self, app: Flask, session: SessionMixin, response: Response) -> None:
        self.inner.save_session(app, session, response)


def install(app: Flask) -> None:
    app.register_blueprint(bp)
    if not isinstance(app.session_interface, _NoSessionForApi):
        app.session_interface = _NoSessionForApi(app.session_interface)
