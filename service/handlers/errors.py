"""Every error as ``application/problem+json`` (RFC 9457)."""

from __future__ import annotations

import logging
import re
from http import HTTPStatus
from typing import Any

from litestar import Request, Response
from litestar.exceptions import HTTPException, ValidationException

from service.aggregates.errors import Conflict, DomainError, InvalidCommand, NotFound, VersionMismatch
from service.projections.reader import ReadModelUnavailable
from service.segmentation import UnknownColumnError

log = logging.getLogger(__name__)

PROBLEM_JSON = "application/problem+json"


def problem(
    status: int,
    detail: str,
    errors: list[dict[str, str]] | None = None,
    headers: dict[str, str] | None = None,
) -> Response[dict[str, Any]]:
    """A problem+json response."""
    title = HTTPStatus(status).phrase
    body: dict[str, Any] = {
        "type": f"https://httpstatuses.io/{status}",
        "title": title,
        "status": status,
        "detail": detail,
    }
    if errors is not None:
        body["errors"] = errors
    return Response(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


def on_http_exception(_: Request[Any, Any, Any], exc: HTTPException) -> Response[dict[str, Any]]:
    """Litestar's own exceptions (401, 403, 404, 405, 413, validation) as problems."""
    if isinstance(exc, ValidationException):
        errors = [
            {"field": _field_name(item), "message": str(item.get("message", ""))}
            for item in (exc.extra if isinstance(exc.extra, list) else [])
            if isinstance(item, dict)
        ]
        detail = "; ".join(f"{e['field']}: {e['message']}" for e in errors) or str(exc.detail)
        return problem(400, detail, errors=errors or None)
    detail = exc.detail if exc.detail else HTTPStatus(exc.status_code).phrase
    return problem(exc.status_code, detail, headers=exc.headers)


def _field_name(item: dict[str, Any]) -> str:
    """The field a validation message is about; Litestar says ``data`` for the whole body."""
    key = str(item.get("key", item.get("source", "body")))
    if key == "data":
        match = re.search(r"field `([^`]+)`", str(item.get("message", "")))
        return match.group(1) if match else "body"
    return key


def on_domain_error(_: Request[Any, Any, Any], exc: DomainError) -> Response[dict[str, Any]]:
    """Rules broken by a command or a query."""
    if isinstance(exc, InvalidCommand):
        errors = [{"field": e.field, "message": e.message} for e in exc.errors]
        return problem(422, str(exc), errors=errors)
    if isinstance(exc, NotFound):
        return problem(404, str(exc))
    if isinstance(exc, VersionMismatch):
        return problem(412, str(exc), headers={"ETag": f'"{exc.actual}"'})
    if isinstance(exc, Conflict):
        return problem(409, str(exc))
    return problem(400, str(exc))


def on_read_model_unavailable(
    _: Request[Any, Any, Any], exc: ReadModelUnavailable
) -> Response[dict[str, Any]]:
    """Redis down, the read model being built, or behind ``min_position``: a 503 to retry."""
    return problem(503, exc.detail, headers={"Retry-After": str(exc.retry_after)})


def on_unknown_column(_: Request[Any, Any, Any], exc: UnknownColumnError) -> Response[dict[str, Any]]:
    """A column a computation needs is in none of the batches (a safety net: the edge checks)."""
    return problem(422, str(exc), errors=[{"field": exc.column, "message": "column does not exist"}])


def on_unexpected(_: Request[Any, Any, Any], exc: Exception) -> Response[dict[str, Any]]:
    """A bug: logged with its traceback, answered without internals."""
    log.error("unhandled error", exc_info=exc)
    return problem(500, "internal error; the service logged the details")


EXCEPTION_HANDLERS: dict[Any, Any] = {
    HTTPException: on_http_exception,
    DomainError: on_domain_error,
    ReadModelUnavailable: on_read_model_unavailable,
    UnknownColumnError: on_unknown_column,
    Exception: on_unexpected,
}

__all__ = ["EXCEPTION_HANDLERS", "PROBLEM_JSON", "problem"]
