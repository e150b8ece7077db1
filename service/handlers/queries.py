"""Query endpoints (role ``analyst``): answers come from the Redis read model.

The unfiltered summary and the customer rows are stored by the projector and sent as stored. A
filtered view (or one at another reference date) is computed on demand in a worker thread and
cached in Redis under a key naming the configuration and data versions it was computed from.
"""

from __future__ import annotations

import asyncio
import csv
import io
from collections.abc import AsyncIterator
from datetime import date
from typing import Annotated, Any

import msgspec
from litestar import Controller, Request, Response, get
from litestar.exceptions import ValidationException
from litestar.params import Parameter, QueryParameter
from litestar.response import Stream

from service.aggregates.errors import FieldError, InvalidCommand, NotFound
from service.handlers.common import (
    ANALYST,
    Services,
    check_filter_columns,
    checked_database,
    parse_filters,
    raw_json,
    services,
)
from service.handlers.errors import problem
from service.projections.documents import (
    configuration_document,
    customer_rows,
    spec_from_document,
    summary_document,
)
from service.segmentation import (
    SEGMENTS_5,
    SEGMENTS_10,
    compute,
    distinct_values,
    suggested_thresholds,
)

FilterParam = Annotated[
    list[str] | None,
    QueryParameter(name="filter", description="column:value; repeat for OR within a column, AND across"),
]
MinPosition = Annotated[
    int | None,
    QueryParameter(ge=0, description="Wait (up to 5 s) until the read model has applied this position"),
]
SORTS = ("code", "monetary", "recency", "frequency", "name")


class DatabaseController(Controller):
    """Databases, their columns and values."""

    path = "/databases"
    guards = ANALYST
    tags = ["queries"]

    @get("/", summary="List databases")
    async def list_databases(self, request: Request[Any, Any, Any]) -> list[dict[str, Any]]:
        read = services(request).read
        answer = []
        for name in await read.database_names():
            data = await read.document(name, "data")
            config = await read.document(name, "config")
            meta = await read.document(name, "meta") or {}
            answer.append(
                {
                    "database": name,
                    "configured": config is not None,
                    "rows": data["rows"] if data else 0,
                    "batches": len(data["batches"]) if data else 0,
                    "version": meta.get("configuration_version", 0),
                    "data_version": meta.get("data_version", 0),
                }
            )
        return answer

    @get("/{database:str}", summary="One database: columns, rows and batches")
    async def get_database(
        self, request: Request[Any, Any, Any], database: str, min_position: MinPosition = None
    ) -> dict[str, Any]:
        read = services(request).read
        await read.wait_for(min_position)
        data = await read.require_data(checked_database(database))
        meta = await read.document(database, "meta") or {}
        config = await read.document(database, "config")
        return {
            "database": database,
            "columns": data["columns"],
            "rows": data["rows"],
            "batches": data["batches"],
            "configured": config is not None,
            "version": meta.get("configuration_version", 0),
            "data_version": data["data_version"],
        }

    @get("/{database:str}/columns/{column:str}/values", summary="Distinct values of a column")
    async def column_values(
        self,
        request: Request[Any, Any, Any],
        database: str,
        column: str,
        search: str | None = Parameter(default=None, max_length=200),
        limit: int = Parameter(default=100, ge=1, le=10_000),
    ) -> dict[str, Any]:
        data = await services(request).read.require_data(checked_database(database))
        if column not in {c["name"] for c in data["columns"]}:
            raise NotFound(f"database {database!r} has no column {column!r}")
        files = _files(services(request), data)
        values = await asyncio.to_thread(distinct_values, files, column, search, limit)
        return {
            "database": database,
            "column": column,
            "values": [{"value": v, "rows": n} for v, n in values],
        }


class SegmentationController(Controller):
    """Configuration, segmentation summary, customer rows, suggested thresholds."""

    path = "/databases/{database:str}"
    guards = ANALYST
    tags = ["queries"]

    @get("/segmentation", summary="The segmentation summary")
    async def summary(
        self,
        request: Request[Any, Any, Any],
        database: str,
        filters: FilterParam = None,
        as_of: date | None = Parameter(default=None, description="A reference date for this view"),
        min_position: MinPosition = None,
    ) -> Response[Any]:
        svc = services(request)
        checked_database(database)
        await svc.read.wait_for(min_position)
        view = parse_filters(filters)
        if not view and as_of is None:
            return raw_json(await _default_part(svc, database, "summary"))
        summary, _ = await _computed_view(svc, database, view, as_of)
        return raw_json(summary)

    @get("/segmentation/customers", summary="Per-customer rows")
    async def customers(
        self,
        request: Request[Any, Any, Any],
        database: str,
        segment: str | None = None,
        search: str | None = Parameter(default=None, max_length=200),
        filters: FilterParam = None,
        as_of: date | None = None,
        sort: str = Parameter(
            default="code", description="code, monetary, recency, frequency, name; - for descending"
        ),
        limit: int = Parameter(default=100, ge=0, le=1000),
        offset: int = Parameter(default=0, ge=0),
        min_position: MinPosition = None,
    ) -> dict[str, Any]:
        svc = services(request)
        checked_database(database)
        await svc.read.wait_for(min_position)
        rows = await _rows(svc, database, parse_filters(filters), as_of)
        selected = _select(rows, segment, search, sort)
        return {"total": len(selected), "items": selected[offset : offset + limit]}

    @get("/segmentation/customers.csv", summary="Per-customer rows as CSV", media_type="text/csv")
    async def customers_csv(
        self,
        request: Request[Any, Any, Any],
        database: str,
        segment: str | None = None,
        search: str | None = Parameter(default=None, max_length=200),
        filters: FilterParam = None,
        as_of: date | None = None,
        sort: str = "code",
        min_position: MinPosition = None,
    ) -> Stream:
        svc = services(request)
        checked_database(database)
        await svc.read.wait_for(min_position)
        rows = _select(await _rows(svc, database, parse_filters(filters), as_of), segment, search, sort)
        return Stream(
            _csv_chunks(rows),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="{database}-customers.csv"'},
        )

    @get("/customers/{code:str}", summary="One customer: metrics, segment, removals")
    async def customer(
        self, request: Request[Any, Any, Any], database: str, code: str, min_position: MinPosition = None
    ) -> dict[str, Any]:
        svc = services(request)
        checked_database(database)
        await svc.read.wait_for(min_position)
        config = await svc.read.require_config(database)
        row, rule_ids = await svc.read.customer(database, code)
        rules = {r["rule_id"]: r for r in config["removal_rules"]}
        removed_by = [rules[r] for r in rule_ids if r in rules]
        if row is None and not removed_by:
            data = await svc.read.require_data(database)
            known = await asyncio.to_thread(
                distinct_values, _files(svc, data), config["customer_column"], code, 10_000
            )
            if code not in {value for value, _ in known}:
                raise NotFound(f"no customer {code!r} in database {database!r}")
        answer: dict[str, Any] = (
            msgspec.json.decode(row)
            if row is not None
            else dict.fromkeys(
                ("name", "segment", "recency_days", "last_purchase", "frequency", "monetary", "r", "f", "m")
            )
        )
        answer["code"] = code
        answer["active"] = row is not None
        answer["removed"] = bool(removed_by)
        answer["removed_by"] = removed_by
        if config.get("scorecard_url"):
            answer["scorecard_url"] = config["scorecard_url"].replace("{customer}", code)
        return answer

    @get("/thresholds/suggested", summary="Automatic cut points for the current data")
    async def suggested(
        self,
        request: Request[Any, Any, Any],
        database: str,
        filters: FilterParam = None,
        min_position: MinPosition = None,
    ) -> dict[str, Any]:
        svc = services(request)
        checked_database(database)
        await svc.read.wait_for(min_position)
        config, data = await _config_and_data(svc, database)
        view = parse_filters(filters)
        check_filter_columns(view, data)
        cuts = await asyncio.to_thread(
            suggested_thresholds, _files(svc, data), spec_from_document(config), view or None
        )
        return {
            "database": database,
            "filters": view,
            "thresholds": None if cuts is None else {m: list(c) for m, c in cuts.items()},
            "configuration_version": config["version"],
            "data_version": data["data_version"],
        }


async def configuration_at(svc: Services, database: str, version: int) -> Response[Any]:
    configuration = await asyncio.to_thread(svc.app.configuration, database, None)
    if configuration is None:
        raise NotFound(f"database {database!r} has never been configured")
    if version > configuration.version:
        raise NotFound(f"configuration version {version} does not exist (latest is {configuration.version})")
    past = await asyncio.to_thread(svc.app.configuration, database, version)
    if past is None or not past.configured:
        return problem(404, f"at version {version} database {database!r} was not configured")
    return raw_json(msgspec.json.encode(configuration_document(past)))


async def _default_part(svc: Services, database: str, part: str) -> bytes:
    raw = await svc.read.raw(database, part)
    if raw is None:
        await svc.read.require_config(database)
        raise NotFound(f"database {database!r} has no segmentation yet")
    return raw


async def _config_and_data(svc: Services, database: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The configuration and data documents, read together so they belong to one projection."""
    config_raw, data_raw = await svc.read._call(
        "mget", [svc.read.keys.db(database, "config"), svc.read.keys.db(database, "data")]
    )
    if config_raw is None or data_raw is None:
        await svc.read.require_config(database)
        raise NotFound(f"database {database!r} is not configured")
    return msgspec.json.decode(config_raw), msgspec.json.decode(data_raw)


def _files(svc: Services, data: dict[str, Any]) -> list[str]:
    return [str(svc.app.storage.path(f)) for f in data["files"]]


async def _computed_view(
    svc: Services, database: str, view: dict[str, list[str]], as_of: date | None
) -> tuple[bytes, bytes]:
    """A filtered (or re-dated) view: from the cache, or computed once and cached."""
    config, data = await _config_and_data(svc, database)
    check_filter_columns(view, data)
    key = svc.read.keys.view(
        database, config["version"], data["data_version"], {"filters": view, "as_of": str(as_of)}
    )
    summary = await svc.read.cached(key + ":summary")
    rows = await svc.read.cached(key + ":customers")
    if summary is not None and rows is not None:
        return summary, rows
    result = await asyncio.to_thread(compute, _files(svc, data), spec_from_document(config), view, as_of)
    summary = msgspec.json.encode(summary_document(database, result, config["version"], data["data_version"]))
    rows = msgspec.json.encode(customer_rows(result))
    ttl = svc.settings.view_cache_ttl
    await svc.read.cache(key + ":summary", summary, ttl)
    await svc.read.cache(key + ":customers", rows, ttl)
    return summary, rows


async def _rows(
    svc: Services, database: str, view: dict[str, list[str]], as_of: date | None
) -> list[dict[str, Any]]:
    if not view and as_of is None:
        raw = await _default_part(svc, database, "customers")
    else:
        _, raw = await _computed_view(svc, database, view, as_of)
    return msgspec.json.decode(raw)  # type: ignore[no-any-return]


_SEGMENT_KEYS = {row[0] for row in (*SEGMENTS_10, *SEGMENTS_5)}


def _select(
    rows: list[dict[str, Any]], segment: str | None, search: str | None, sort: str
) -> list[dict[str, Any]]:
    """Rows of one segment, matching a search, in the asked order (ties by code)."""
    if segment is not None:
        if segment not in _SEGMENT_KEYS:
            raise ValidationException(
                detail=f"unknown segment {segment!r}",
                extra=[{"key": "segment", "message": "not a segment key"}],
            )
        rows = [r for r in rows if r["segment"] == segment]
    if search:
        needle = search.casefold()
        rows = [r for r in rows if needle in r["code"].casefold() or needle in (r["name"] or "").casefold()]
    descending = sort.startswith("-")
    field = sort.lstrip("-")
    if field not in SORTS:
        raise InvalidCommand([FieldError("sort", f"must be one of {', '.join(SORTS)}, optionally with -")])
    if field == "code":
        return sorted(rows, key=lambda r: r["code"], reverse=descending)
    if field == "name":
        ordered = sorted(rows, key=lambda r: r["code"])
        return sorted(ordered, key=lambda r: (r["name"] or "").casefold(), reverse=descending)
    ordered = sorted(rows, key=lambda r: r["code"])
    return sorted(ordered, key=lambda r: r[field], reverse=descending)


_CSV_FIELDS = (
    "code",
    "name",
    "segment",
    "recency_days",
    "last_purchase",
    "frequency",
    "monetary",
    "r",
    "f",
    "m",
)


async def _csv_chunks(rows: list[dict[str, Any]]) -> AsyncIterator[str]:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(_CSV_FIELDS)
    for i, row in enumerate(rows, 1):
        writer.writerow([row[f] for f in _CSV_FIELDS])
        if i % 2000 == 0:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()
