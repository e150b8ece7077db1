"""Command endpoints (role ``admin``): decode, call one application method, encode.

The eventsourcing library is synchronous, so every handler that calls it runs in a worker
thread (``sync_to_thread=True``, or ``asyncio.to_thread`` for the streaming import).
"""

from __future__ import annotations

import asyncio
from typing import Any

from litestar import Controller, Request, Response, delete, get, patch, post, put
from litestar.exceptions import ClientException, HTTPException
from litestar.params import Body, Parameter

from service.handlers.common import (
    ADMIN,
    ANALYST,
    accepted,
    checked_database,
    expected_version,
    identity,
    raw_json,
    services,
)
from service.handlers.queries import At, MinPosition, Version, configuration_at
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
        "(application/vnd.apache.parquet).",
    )
    async def import_rows(
        self,
        request: Request[Any, Any, Any],
        database: str,
        mode: str = Parameter(default="append", pattern="^(append|replace)$"),
        date_format: str | None = Parameter(default=None, max_length=100),
        reason: str | None = Parameter(default=None, max_length=500),
    ) -> Response[ImportAccepted]:
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
            await _stream_to(request, upload, svc.settings.max_upload_bytes)
            result = await asyncio.to_thread(
                svc.app.import_batch, database, upload, fmt, mode, date_format, identity(request).user, reason
            )
        finally:
            remove_quietly(upload)
        body = ImportAccepted(
            database=result.database,
            batch_id=result.batch_id,
            rows=result.rows,
            columns=result.columns,  # type: ignore[arg-type]
            position=result.position,
            data_version=result.data_version,
        )
        return Response(body, status_code=201)


async def _stream_to(request: Request[Any, Any, Any], path: Any, limit: int) -> None:
    """Write the request body to ``path`` chunk by chunk, never holding it whole in memory."""
    size = 0
    with open(path, "wb") as out:
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise HTTPException(status_code=413, detail=f"the body is larger than {limit} bytes")
            await asyncio.to_thread(out.write, chunk)
    if size == 0:
        raise ClientException(detail="the body is empty; send the file's contents")


class ConfigurationController(Controller):
    """The configuration: read it (analyst); ConfigureDatabase, EditConfiguration,
    DeleteConfiguration (admin). One controller, because they share the path."""

    path = "/databases/{database:str}/configuration"
    tags = ["configuration"]

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
        return raw_json(raw)  # type: ignore[arg-type]

    @put("/", guards=ADMIN, status_code=201, sync_to_thread=True, summary="Configure a database")
    def configure(
        self, request: Request[Any, Any, Any], database: str, data: ConfigurationCreate
    ) -> Response[CommandAccepted]:
        result = services(request).app.configure(
            checked_database(database),
            settings_of(data),
            identity(request).user,
            data.reason,
            expected_version(request),
        )
        return accepted(CommandAccepted(result.version, result.position), 201, result.version)

    @patch("/", guards=ADMIN, status_code=200, sync_to_thread=True, summary="Edit the configuration")
    def edit(
        self, request: Request[Any, Any, Any], database: str, data: ConfigurationUpdate
    ) -> Response[CommandAccepted]:
        result = services(request).app.edit_configuration(
            checked_database(database),
            given_fields(data),
            identity(request).user,
            data.reason,
            expected_version(request),
        )
        return accepted(CommandAccepted(result.version, result.position), 200, result.version)

    @delete("/", guards=ADMIN, status_code=200, sync_to_thread=True, summary="Delete the configuration")
    def remove(
        self,
        request: Request[Any, Any, Any],
        database: str,
        data: ReasonBody | None = Body(default=None),
    ) -> Response[CommandAccepted]:
        result = services(request).app.delete_configuration(
            checked_database(database),
            identity(request).user,
            data.reason if data else None,
            expected_version(request),
        )
        return accepted(CommandAccepted(result.version, result.position), 200, result.version)


class RemovalController(Controller):
    """RemoveCustomers and RestoreCustomers."""

    path = "/databases/{database:str}/removals"
    guards = ADMIN
    tags = ["commands"]

    @post("/", status_code=201, sync_to_thread=True, summary="Remove customers")
    def remove_customers(
        self, request: Request[Any, Any, Any], database: str, data: RemovalCreate
    ) -> Response[RemovalAccepted]:
        rule_id, result = services(request).app.remove_customers(
            checked_database(database),
            data.dimension,
            list(data.values),
            data.label,
            identity(request).user,
            data.reason,
            expected_version(request),
        )
        return accepted(RemovalAccepted(rule_id, result.version, result.position), 201, result.version)

    @delete("/{rule_id:str}", status_code=200, sync_to_thread=True, summary="Restore removed customers")
    def restore_customers(
        self,
        request: Request[Any, Any, Any],
        database: str,
        rule_id: str,
        data: ReasonBody | None = Body(default=None),
    ) -> Response[CommandAccepted]:
        result = services(request).app.restore_customers(
            checked_database(database),
            rule_id,
            identity(request).user,
            data.reason if data else None,
            expected_version(request),
        )
        return accepted(CommandAccepted(result.version, result.position), 200, result.version)


class ThresholdSetController(Controller):
    """CreateThresholdSet, EditThresholdSet, DeleteThresholdSet."""

    path = "/databases/{database:str}/threshold-sets"
    guards = ADMIN
    tags = ["commands"]

    @post("/", status_code=201, sync_to_thread=True, summary="Create a threshold set")
    def create(
        self, request: Request[Any, Any, Any], database: str, data: ThresholdSetCreate
    ) -> Response[ThresholdSetAccepted]:
        set_id, result = services(request).app.create_threshold_set(
            checked_database(database),
            data.name,
            {k: list(v) for k, v in data.criteria.items()},
            given_fields(data).get("thresholds", {}),
            identity(request).user,
            data.reason,
            expected_version(request),
        )
        return accepted(ThresholdSetAccepted(set_id, result.version, result.position), 201, result.version)

    @patch("/{threshold_set_id:str}", status_code=200, sync_to_thread=True, summary="Edit a threshold set")
    def edit(
        self, request: Request[Any, Any, Any], database: str, threshold_set_id: str, data: ThresholdSetUpdate
    ) -> Response[CommandAccepted]:
        result = services(request).app.edit_threshold_set(
            checked_database(database),
            threshold_set_id,
            given_fields(data),
            identity(request).user,
            data.reason,
            expected_version(request),
        )
        return accepted(CommandAccepted(result.version, result.position), 200, result.version)

    @delete("/{threshold_set_id:str}", status_code=200, sync_to_thread=True, summary="Delete a threshold set")
    def remove(
        self,
        request: Request[Any, Any, Any],
        database: str,
        threshold_set_id: str,
        data: ReasonBody | None = Body(default=None),
    ) -> Response[CommandAccepted]:
        result = services(request).app.delete_threshold_set(
            checked_database(database),
            threshold_set_id,
            identity(request).user,
            data.reason if data else None,
            expected_version(request),
        )
        return accepted(CommandAccepted(result.version, result.position), 200, result.version)
