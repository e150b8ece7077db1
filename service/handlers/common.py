"""What every controller shares: the services, identity guards, and parameter parsing."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any

import msgspec
from litestar import Request, Response
from litestar.connection import ASGIConnection
from litestar.exceptions import NotAuthorizedException, PermissionDeniedException, ValidationException
from litestar.handlers.base import BaseRouteHandler
from litestar.params import HeaderParameter

from service.aggregates.errors import FieldError, InvalidCommand
from service.application import Accepted, Context
from service.auth import Identity, KeyStore
from service.handlers.errors import problem
from service.storage import validate_database_name

if TYPE_CHECKING:
    from service.application import SegmentationApplication
    from service.projections.reader import ReadModel
    from service.settings import Settings


@dataclass
class Services:
    """The long-lived parts the lifespan builds; handlers reach them through the app state."""

    settings: Settings
    app: SegmentationApplication
    read: ReadModel
    keys: KeyStore


def services(connection: ASGIConnection[Any, Any, Any, Any]) -> Services:
    """The services of the running app."""
    return connection.app.state.services  # type: ignore[no-any-return]


def requires(
    role: str,
) -> Callable[[ASGIConnection[Any, Any, Any, Any], BaseRouteHandler], Coroutine[Any, Any, None]]:
    """A guard: the request carries a known key (else 401) whose role includes ``role`` (else 403).
    Async, so Litestar runs it on the event loop: a sync guard would cost a thread hand-off on
    every request, and the lookup itself is a hash and a stat()."""

    async def guard(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
        scheme, _sep, key = connection.headers.get("authorization", "").partition(" ")
        challenge = {"WWW-Authenticate": 'Bearer realm="segmentation"'}
        if scheme.lower() != "bearer" or not key.strip():
            raise NotAuthorizedException(
                detail="an API key is required: Authorization: Bearer <key>", headers=challenge
            )
        identity = services(connection).keys.identify(key.strip())
        if identity is None:
            raise NotAuthorizedException(detail="unknown API key", headers=challenge)
        if not identity.may(role):
            raise PermissionDeniedException(detail=f"this needs the {role} role; the key has {identity.role}")
        if role == "admin" and identity.restrictions:
            raise PermissionDeniedException(detail="a key with a data restriction may not run commands")
        connection.state.identity = identity

    guard.__name__ = f"requires_{role}"
    return guard


ANALYST = [requires("analyst")]
AUDITOR = [requires("auditor")]
ADMIN = [requires("admin")]


def identity(request: Request[Any, Any, Any]) -> Identity:
    """The caller, set by the guard."""
    return request.state.identity  # type: ignore[no-any-return]


def checked_database(database: str) -> str:
    """A database name safe for paths and keys; a bad one is a 400."""
    try:
        validate_database_name(database)
    except InvalidCommand as exc:
        raise ValidationException(
            detail=str(exc), extra=[{"key": "database", "message": exc.errors[0].message}]
        ) from exc
    return database


IfMatch = Annotated[
    str | None,
    HeaderParameter(
        name="If-Match",
        description='The configuration version the client saw, e.g. "3" (for imports: the data version); '
        "a mismatch is 412 and nothing is written",
    ),
]
IdempotencyKey = Annotated[
    str | None,
    HeaderParameter(
        name="Idempotency-Key",
        description="A retry with the same key and body returns the first response and writes nothing",
        min_length=1,
        max_length=200,
    ),
]

_IF_MATCH = re.compile(r'^\s*(?:W/)?"?(\d+)"?\s*$')


def expected_version(header: str | None) -> int | None:
    """The version named by ``If-Match: "<version>"``; a malformed header is a 400."""
    if header is None or header.strip() == "*":
        return None
    match = _IF_MATCH.match(header)
    if match is None:
        raise ValidationException(
            detail='If-Match must be a configuration version in quotes, e.g. "3"',
            extra=[{"key": "If-Match", "message": "not a version"}],
        )
    return int(match.group(1))


def parse_filters(raw: list[str] | None) -> dict[str, list[str]]:
    """``column:value`` repeated: OR within a column, AND across columns."""
    filters: dict[str, list[str]] = {}
    for item in raw or []:
        column, sep, value = item.partition(":")
        if not sep or not column:
            raise ValidationException(
                detail=f"filter {item!r} must be column:value",
                extra=[{"key": "filter", "message": "must be column:value"}],
            )
        values = filters.setdefault(column, [])
        if value not in values:
            values.append(value)
    return filters


def check_filter_columns(filters: dict[str, list[str]], data: dict[str, Any], config: dict[str, Any]) -> None:
    """Filters are on dimensions: a column the database lacks, or its configured date or sales
    column, is a 422 naming it."""
    names = {c["name"] for c in data["columns"]}
    measures = {config.get("date_column"), config.get("sales_column")}
    errors = [FieldError(f"filter.{c}", f"column {c!r} does not exist") for c in filters if c not in names]
    errors += [
        FieldError(f"filter.{c}", f"column {c!r} is the date or sales column, not a dimension")
        for c in filters
        if c in measures
    ]
    if errors:
        raise InvalidCommand(errors)


def command_context(
    request: Request[Any, Any, Any],
    reason: str | None,
    body: bytes,
    if_match: str | None,
    idempotency_key: str | None,
) -> Context:
    """The terms of a command: actor, reason, the If-Match and Idempotency-Key headers (as the
    handler received them), and a fingerprint of the request (method, path, query, body, actor)
    so a reused key is recognised."""
    actor = identity(request).user
    fingerprint = hashlib.sha256(
        b"\n".join(
            [
                request.method.encode(),
                request.url.path.encode(),
                str(request.url.query).encode(),
                actor.encode(),
                body,
            ]
        )
    ).hexdigest()
    return Context(
        actor=actor,
        reason=reason,
        expected=expected_version(if_match),
        idempotency_key=idempotency_key,
        fingerprint=fingerprint,
    )


async def strict_body(request: Request[Any, Any, Any]) -> Response[Any] | None:
    """Decode a command's JSON body strictly before Litestar does.

    Litestar converts bodies leniently (``"5"`` becomes ``5``); a wrong JSON type must be a
    ``400`` naming the field, as the README promises, so the body is first decoded with
    msgspec's strict rules against the handler's own ``data`` type.
    """
    parameter = request.route_handler.parsed_fn_signature.parameters.get("data")
    body = await request.body()
    if parameter is None or not body:
        return None
    try:
        msgspec.json.decode(body, type=parameter.annotation)
    except (msgspec.ValidationError, msgspec.DecodeError) as exc:
        message = str(exc)
        at = re.search(r"at `\$\.?([^`]*)`", message) or re.search(r"field `([^`]+)`", message)
        field = re.sub(r"\[\.\.\.\]|\[\d+\]", "", at.group(1)) if at and at.group(1) else "body"
        if isinstance(exc, msgspec.DecodeError):
            message = f"malformed JSON: {message}"
        return problem(400, message, errors=[{"field": field, "message": message}])
    except RecursionError:
        return problem(
            400, "the JSON body is nested too deeply", errors=[{"field": "body", "message": "too deep"}]
        )
    return None


def accepted(result: Accepted) -> Response[Any]:
    """A command's success: its body and ``ETag: "<version>"``."""
    return Response(result.body, status_code=result.status, headers={"ETag": f'"{result.version}"'})


JSON = "application/json"


def raw_json(content: bytes) -> Response[bytes]:
    """Stored JSON bytes, sent as they are (no decode and re-encode)."""
    return Response(content=content, media_type=JSON)
