"""Command endpoints (role ``admin``): decode, call one application method, encode.

The eventsourcing library is synchronous, so every handler that calls it runs in a worker
thread (``sync_to_thread=True``, or ``asyncio.to_thread`` for the streaming import).
"""

from __future__ import annotations

import asyncio
import hashlib
from typing import Any

import msgspec
from litestar import Controller, Request, Response, delete, get, patch, post, put
from litestar.exceptions import ClientException, HTTPException
from litestar.openapi import ResponseSpec
from litestar.params import Body, Parameter

from service.handlers.common import (
    ADMIN,
    ANALYST,
    IdempotencyKey,
    IfMatch,
    accepted,
    checked_database,
    command_context,
    identity,
    raw_json,
    services,
    strict_body,
)
from service.handlers.queries import At, MinPosition, Version, configuration_at
from service.handlers.restrict import redact_values, visible_codes
from service.handlers.schemas import (
    CommandAccepted,
    ConfigurationCreate,
    ConfigurationUpdate,
    ImportAccepted,
    ReasonBody,
    RemovalAccepted,
    RemovalCreate,
    ThresholdSetAccepted,
    ThresholdSetCreate,
    ThresholdSetUpdate,
    given_fields,
    settings_of,
)
from service.storage import FORMATS, remove_quietly

# Handlers are thin: decode, call one application method (in a worker thread: the library is
# synchronous), encode. The body re-encoded by msgspec is what an Idempotency-Key fingerprints.
_encode = msgspec.json.encode


class _Versioned(msgspec.Struct):
    version: int


class UnsupportedMediaType(ClientException):
    status_code = 415


class ImportController(Controller):
    """Sales rows in: CSV, NDJSON or Parquet, validated whole before anything is recorded."""

    path = "/databases/{database:str}/imports"
    guards = ADMIN
    tags = ["commands"]

    @post(
        "/",
        status_code=201,
        request_max_body_size=None,
        summary="Import sales rows",
        description="Body: CSV (text/csv), NDJSON (application/x-ndjson) or Parquet "
        "(application/vnd.apache.parquet). If-Match and the ETag name the data version.",
        responses={201: ResponseSpec(ImportAccepted, description="The batch was stored and recorded")},
    )
    async def import_rows(
        self,
        request: Request[Any, Any, Any],
        database: str,
        mode: str = Parameter(default="append", pattern="^(append|replace)$"),
        date_format: str | None = Parameter(default=None, max_length=100),
        reason: str | None = Parameter(default=None, max_length=500),
        if_match: IfMatch = None,
        idempotency_key: IdempotencyKey = None,
    ) -> Response[Any]:
        checked_database(database)
        content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        fmt = FORMATS.get(content_type)
        if fmt is None:
            raise UnsupportedMediaType(
                detail=f"Content-Type {content_type or '(none)'} is not importable; use "
                "text/csv, application/x-ndjson or application/vnd.apache.parquet"
            )
        svc = services(request)
        upload = svc.app.storage.upload_path()
        try:
            digest = await _stream_to(request, upload, svc.settings.max_upload_bytes)
            ctx = command_context(request, reason, digest, if_match, idempotency_key)
            result = await asyncio.to_thread(
                svc.app.import_batch, database, upload, fmt, mode, date_format, ctx
            )
        finally:
            remove_quietly(upload)
        return accepted(result)


async def _stream_to(request: Request[Any, Any, Any], path: Any, limit: int) -> bytes:
    """Write the request body to ``path`` chunk by chunk, never holding it whole in memory;
    returns the body's SHA-256 (an Idempotency-Key's fingerprint)."""
    size = 0
    digest = hashlib.sha256()
    with open(path, "wb") as out:
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise HTTPException(status_code=413, detail=f"the body is larger than {limit} bytes")
            digest.update(chunk)
            await asyncio.to_thread(out.write, chunk)
    if size == 0:
        raise ClientException(detail="the body is empty; send the file's contents")
    return digest.digest()


class ConfigurationController(Controller):
    """The configuration: read it (analyst); ConfigureDatabase, EditConfiguration,
    DeleteConfiguration (admin). One controller, because they share the path."""

    path = "/databases/{database:str}/configuration"
    tags = ["configuration"]
    before_request = staticmethod(strict_body)  # type: ignore[assignment]

    @get("/", guards=ANALYST, summary="The configuration, removal rules and threshold sets")
    async def read(
        self,
        request: Request[Any, Any, Any],
        database: str,
        version: Version = None,
        at: At = None,
        min_position: MinPosition = None,
    ) -> Response[Any]:
        svc = services(request)
        checked_database(database)
        await svc.read.wait_for(min_position)
        if version is not None or at is not None:
            return await configuration_at(svc, database, version, at)
        raw = await svc.read.raw(database, "config")
        if raw is None:
            await svc.read.require_config(database)
        visible = await visible_codes(svc, database, identity(request).restriction)
        if visible is not None:
            document = msgspec.json.decode(raw)  # type: ignore[arg-type]
            document["removal_rules"] = [redact_values(r, visible) for r in document["removal_rules"]]
            raw = msgspec.json.encode(document)
        response = raw_json(raw)  # type: ignore[arg-type]
        version = msgspec.json.decode(raw, type=_Versioned).version  # type: ignore[arg-type]
        response.headers["ETag"] = f'"{version}"'
        return response

    @put(
        "/",
        guards=ADMIN,
        status_code=201,
        sync_to_thread=True,
        summary="Configure a database",
        responses={201: ResponseSpec(CommandAccepted, description="Configured")},
    )
    def configure(
        self,
        request: Request[Any, Any, Any],
        database: str,
        data: ConfigurationCreate,
        if_match: IfMatch = None,
        idempotency_key: IdempotencyKey = None,
    ) -> Response[Any]:
        ctx = command_context(request, data.reason, _encode(data), if_match, idempotency_key)
        return accepted(services(request).app.configure(checked_database(database), settings_of(data), ctx))

    @patch(
        "/",
        guards=ADMIN,
        status_code=200,
        sync_to_thread=True,
        summary="Edit the configuration",
        responses={200: ResponseSpec(CommandAccepted, description="Edited")},
    )
    def edit(
        self,
        request: Request[Any, Any, Any],
        database: str,
        data: ConfigurationUpdate,
        if_match: IfMatch = None,
        idempotency_key: IdempotencyKey = None,
    ) -> Response[Any]:
        ctx = command_context(request, data.reason, _encode(data), if_match, idempotency_key)
        return accepted(
            services(request).app.edit_configuration(checked_database(database), given_fields(data), ctx)
        )

    @delete(
        "/",
        guards=ADMIN,
        status_code=200,
        sync_to_thread=True,
        summary="Delete the configuration",
        responses={200: ResponseSpec(CommandAccepted, description="Deleted")},
    )
    def remove(
        self,
        request: Request[Any, Any, Any],
        database: str,
        data: ReasonBody | None = Body(default=None),
        if_match: IfMatch = None,
        idempotency_key: IdempotencyKey = None,
    ) -> Response[Any]:
        ctx = command_context(
            request, data.reason if data else None, _encode(data), if_match, idempotency_key
        )
        return accepted(services(request).app.delete_configuration(checked_database(database), ctx))


class RemovalController(Controller):
    """RemoveCustomers and RestoreCustomers."""

    path = "/databases/{database:str}/removals"
    guards = ADMIN
    tags = ["commands"]
    before_request = staticmethod(strict_body)  # type: ignore[assignment]

    @post(
        "/",
        status_code=201,
        sync_to_thread=True,
        summary="Remove customers",
        responses={201: ResponseSpec(RemovalAccepted, description="The removal rule was recorded")},
    )
    def remove_customers(
        self,
        request: Request[Any, Any, Any],
        database: str,
        data: RemovalCreate,
        if_match: IfMatch = None,
        idempotency_key: IdempotencyKey = None,
    ) -> Response[Any]:
        ctx = command_context(request, data.reason, _encode(data), if_match, idempotency_key)
        result = services(request).app.remove_customers(
            checked_database(database), data.dimension, list(data.values), data.label, ctx
        )
        return accepted(result)

    @delete(
        "/{rule_id:str}",
        status_code=200,
        sync_to_thread=True,
        summary="Restore removed customers",
        responses={200: ResponseSpec(CommandAccepted, description="The rule no longer applies")},
    )
    def restore_customers(
        self,
        request: Request[Any, Any, Any],
        database: str,
        rule_id: str,
        data: ReasonBody | None = Body(default=None),
        if_match: IfMatch = None,
        idempotency_key: IdempotencyKey = None,
    ) -> Response[Any]:
        ctx = command_context(
            request, data.reason if data else None, _encode(data), if_match, idempotency_key
        )
        return accepted(services(request).app.restore_customers(checked_database(database), rule_id, ctx))


class ThresholdSetController(Controller):
    """CreateThresholdSet, EditThresholdSet, DeleteThresholdSet."""

    path = "/databases/{database:str}/threshold-sets"
    guards = ADMIN
    tags = ["commands"]
    before_request = staticmethod(strict_body)  # type: ignore[assignment]

    @post(
        "/",
        status_code=201,
        sync_to_thread=True,
        summary="Create a threshold set",
        responses={201: ResponseSpec(ThresholdSetAccepted, description="Created")},
    )
    def create(
        self,
        request: Request[Any, Any, Any],
        database: str,
        data: ThresholdSetCreate,
        if_match: IfMatch = None,
        idempotency_key: IdempotencyKey = None,
    ) -> Response[Any]:
        ctx = command_context(request, data.reason, _encode(data), if_match, idempotency_key)
        result = services(request).app.create_threshold_set(
            checked_database(database),
            data.name,
            {k: list(v) for k, v in data.criteria.items()},
            given_fields(data).get("thresholds", {}),
            ctx,
        )
        return accepted(result)

    @patch(
        "/{id:str}",
        status_code=200,
        sync_to_thread=True,
        summary="Edit a threshold set",
        responses={200: ResponseSpec(CommandAccepted, description="Edited")},
    )
    def edit(
        self,
        request: Request[Any, Any, Any],
        database: str,
        id: str,  # the path names it {id} (http-api.md)
        data: ThresholdSetUpdate,
        if_match: IfMatch = None,
        idempotency_key: IdempotencyKey = None,
    ) -> Response[Any]:
        ctx = command_context(request, data.reason, _encode(data), if_match, idempotency_key)
        result = services(request).app.edit_threshold_set(
            checked_database(database), id, given_fields(data), ctx
        )
        return accepted(result)

    @delete(
        "/{id:str}",
        status_code=200,
        sync_to_thread=True,
        summary="Delete a threshold set",
        responses={200: ResponseSpec(CommandAccepted, description="Deleted")},
    )
    def remove(
        self,
        request: Request[Any, Any, Any],
        database: str,
        id: str,  # the path names it {id} (http-api.md)
        data: ReasonBody | None = Body(default=None),
        if_match: IfMatch = None,
        idempotency_key: IdempotencyKey = None,
    ) -> Response[Any]:
        ctx = command_context(
            request, data.reason if data else None, _encode(data), if_match, idempotency_key
        )
        return accepted(services(request).app.delete_threshold_set(checked_database(database), id, ctx))
