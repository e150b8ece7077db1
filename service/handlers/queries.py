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
from datetime import UTC, date, datetime
from typing import Annotated, Any

import msgspec
from litestar import Controller, Request, Response, get
from litestar.exceptions import ValidationException
from litestar.params import Parameter, QueryParameter
from litestar.response import Stream

from service.aggregates.errors import NotFound
from service.handlers.common import (
    ANALYST,
    Services,
    check_filter_columns,
    checked_database,
    identity,
    parse_filters,
    raw_json,
    services,
)
from service.handlers.restrict import require_visible_data
from service.handlers.views import View, ViewQuery, resolve, summary_of
from service.projections.documents import configuration_document, spec_from_document
from service.segmentation import SEGMENTS_5, SEGMENTS_10, distinct_values, suggested_thresholds

FilterParam = Annotated[
    list[str] | None,
    QueryParameter(name="filter", description="column:value; repeat for OR within a column, AND across"),
]
AsOf = Annotated[date | None, QueryParameter(description="A reference date for this view (YYYY-MM-DD)")]
Version = Annotated[
    int | None,
    QueryParameter(ge=1, le=10**12, description="Answer as at this configuration version (a replay)"),
]
At = Annotated[
    datetime | None, QueryParameter(description="Answer as at this instant, ISO 8601 UTC (a replay)")
]
MinPosition = Annotated[
    int | None,
    QueryParameter(ge=0, description="Wait (up to 5 s) until the read model has applied this position"),
]


SORTS = ("code", "monetary", "recency", "frequency", "name")
SORT_HELP = "code, monetary, recency, frequency or name; prefix - for descending"


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
        min_position: MinPosition = None,
    ) -> dict[str, Any]:
        await services(request).read.wait_for(min_position)
        data = await services(request).read.require_data(checked_database(database))
        if column not in {c["name"] for c in data["columns"]}:
            raise NotFound(f"database {database!r} has no column {column!r}")
        files = _files(services(request), data)
        restriction = identity(request).restriction
        require_visible_data(database, data, restriction)
        values = await asyncio.to_thread(distinct_values, files, column, search, limit, restriction or None)
        return {
            "database": database,
            "column": column,
            "values": [{"value": v, "rows": n} for v, n in values],
        }


class SegmentationController(Controller):
    """Segmentation summary, customer rows, one customer, movement, suggested thresholds."""

    path = "/databases/{database:str}"
    guards = ANALYST
    tags = ["queries"]

    @get("/segmentation", summary="The segmentation summary (rules §7)")
    async def summary(
        self,
        request: Request[Any, Any, Any],
        database: str,
        filters: FilterParam = None,
        as_of: AsOf = None,
        version: Version = None,
        at: At = None,
        min_position: MinPosition = None,
    ) -> Response[Any]:
        svc = services(request)
        query = await _view_query(request, database, filters, as_of, version, at, min_position)
        return raw_json(await summary_of(svc, database, query, min_position))

    @get("/segmentation/customers", summary="Per-customer rows")
    async def customers(
        self,
        request: Request[Any, Any, Any],
        database: str,
        segment: str | None = None,
        search: str | None = Parameter(default=None, max_length=200),
        filters: FilterParam = None,
        as_of: AsOf = None,
        version: Version = None,
        at: At = None,
        sort: str = Parameter(default="code", description=SORT_HELP),
        limit: int = Parameter(default=100, ge=0, le=1000),
        offset: int = Parameter(default=0, ge=0),
        min_position: MinPosition = None,
    ) -> dict[str, Any]:
        svc = services(request)
        query = await _view_query(request, database, filters, as_of, version, at, min_position)
        view = await resolve(svc, database, query)
        rows = msgspec.json.decode(await svc.read.cached(view.rows_key) or b"[]")
        selected = _sorted(_matching(rows, segment, search), sort)
        return {
            "total": len(selected),
            "items": selected[offset : offset + limit],
            "configuration_version": view.configuration_version,
            "data_version": view.data_version,
        }

    @get("/segmentation/customers.csv", summary="Per-customer rows as CSV, streamed", media_type="text/csv")
    async def customers_csv(
        self,
        request: Request[Any, Any, Any],
        database: str,
        segment: str | None = None,
        search: str | None = Parameter(default=None, max_length=200),
        filters: FilterParam = None,
        as_of: AsOf = None,
        version: Version = None,
        at: At = None,
        min_position: MinPosition = None,
    ) -> Stream:
        svc = services(request)
        query = await _view_query(request, database, filters, as_of, version, at, min_position)
        view = await resolve(svc, database, query)
        _check_segment(segment)
        return Stream(
            _csv_chunks(svc, view.rows_key, segment, search),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="{database}-customers.csv"'},
        )

    @get("/customers/{code:path}", summary="One customer: metrics, segment, the rules that excluded it")
    async def customer(
        self,
        request: Request[Any, Any, Any],
        database: str,
        code: str,
        version: Version = None,
        at: At = None,
        min_position: MinPosition = None,
    ) -> dict[str, Any]:
        svc = services(request)
        code = code.removeprefix("/")  # a path parameter, so that codes may contain "/"
        query = await _view_query(request, database, None, None, version, at, min_position)
        view = await resolve(svc, database, query)
        if query.restriction and not await _visible(svc, database, view, code, query.restriction):
            raise NotFound(f"no customer {code!r} in database {database!r}")
        row = await _customer_row(svc, database, view, query, code)
        active_rules = {r["rule_id"]: r for r in view.config["removal_rules"]}
        ever = await asyncio.to_thread(svc.app.rules_that_excluded, database, code)
        if query.historical:
            ever = [r for r in ever if r["rule_id"] in active_rules or _created_by(r, view)]
        removed_by = [
            {
                **active_rules[r["rule_id"]],
                "values": r["values"] if r["dimension"] or not query.restriction else [code],
            }
            for r in ever
            if r["rule_id"] in active_rules
        ]
        if row is None and not ever:
            data = await svc.read.require_data(database)
            known = await asyncio.to_thread(
                distinct_values, _files(svc, data), view.config["customer_column"], code, 10_000
            )
            if code not in {value for value, _ in known}:
                raise NotFound(f"no customer {code!r} in database {database!r}")
        answer: dict[str, Any] = row if row is not None else dict.fromkeys(_ROW_FIELDS)
        answer.update(
            code=code,
            active=row is not None,
            removed=bool(removed_by),
            removed_by=removed_by,
            exclusions=[
                {
                    "rule_id": r["rule_id"],
                    "dimension": r["dimension"],
                    # A rule on codes names other customers too: a restricted reader sees only this one.
                    **_only(r, code, query.restriction),
                    "created_by": r["created_by"],
                    "created_at": r["created_at"],
                    "reason": r["reason"],
                    "in_force": r["rule_id"] in active_rules,
                    "restored_by": r["restored_by"],
                    "restored_at": r["restored_at"],
                }
                for r in ever
            ],
            configuration_version=view.configuration_version,
            data_version=view.data_version,
        )
        if view.config.get("scorecard_url"):
            answer["scorecard_url"] = view.config["scorecard_url"].replace("{customer}", code)
        return answer

    @get("/segmentation/movement", summary="How customers moved between segments from one point to another")
    async def movement(
        self,
        request: Request[Any, Any, Any],
        database: str,
        from_: Annotated[
            str, QueryParameter(name="from", description="A configuration version or an instant")
        ],
        to: Annotated[str, QueryParameter(description="A configuration version or an instant")],
        filters: FilterParam = None,
        segment_from: str | None = Parameter(default=None, description="A segment key, or none"),
        segment_to: str | None = Parameter(default=None, description="A segment key, or none"),
        limit: int = Parameter(default=1000, ge=0, le=100_000),
        offset: int = Parameter(default=0, ge=0),
        min_position: MinPosition = None,
    ) -> dict[str, Any]:
        svc = services(request)
        checked_database(database)
        await svc.read.wait_for(min_position)
        view_filters = parse_filters(filters)
        views = []
        for name, point in (("from", from_), ("to", to)):
            version, at = _point(name, point)
            views.append(
                await resolve(
                    svc,
                    database,
                    ViewQuery(
                        filters=view_filters,
                        version=version,
                        at=at,
                        restriction=identity(request).restriction,
                    ),
                )
            )
        sides: list[dict[str, dict[str, Any]]] = []
        for v in views:
            rows = msgspec.json.decode(await svc.read.cached(v.rows_key) or b"[]")
            sides.append({r["code"]: r for r in rows})
        before, after = sides
        ends = [
            {
                "configuration_version": v.configuration_version,
                "data_version": v.data_version,
                "reference_date": msgspec.json.decode(v.summary)["reference_date"],
            }
            for v in views
        ]
        if segment_from is not None or segment_to is not None:
            wanted_from, wanted_to = _cell_key(segment_from), _cell_key(segment_to)
            members = [
                {
                    "code": code,
                    "name": (after.get(code) or before.get(code) or {}).get("name"),
                    "segment_from": before[code]["segment"] if code in before else None,
                    "segment_to": after[code]["segment"] if code in after else None,
                    "monetary_from": before[code]["monetary"] if code in before else None,
                    "monetary_to": after[code]["monetary"] if code in after else None,
                }
                for code in sorted(before.keys() | after.keys())
                if (segment_from is None or (before.get(code) or {}).get("segment") == wanted_from)
                and (segment_to is None or (after.get(code) or {}).get("segment") == wanted_to)
            ]
            return {
                "from": ends[0],
                "to": ends[1],
                "total": len(members),
                "customers": members[offset : offset + limit],
            }
        cells: dict[tuple[str | None, str | None], dict[str, Any]] = {}
        for code in before.keys() | after.keys():
            old, new = before.get(code), after.get(code)
            key = (old["segment"] if old else None, new["segment"] if new else None)
            cell = cells.setdefault(
                key, {"from": key[0], "to": key[1], "customers": 0, "sales_from": 0.0, "sales_to": 0.0}
            )
            cell["customers"] += 1
            cell["sales_from"] += old["monetary"] if old else 0.0
            cell["sales_to"] += new["monetary"] if new else 0.0
        for cell in cells.values():
            cell["sales_from"] = round(cell["sales_from"], 2)
            cell["sales_to"] = round(cell["sales_to"], 2)
        ordered = sorted(cells.values(), key=lambda c: (_order(c["from"]), _order(c["to"])))
        return {
            "from": ends[0],
            "to": ends[1],
            "active_in_either": len(before.keys() | after.keys()),
            "stayed": sum(c["customers"] for c in ordered if c["from"] == c["to"]),
            "moved": sum(c["customers"] for c in ordered if c["from"] and c["to"] and c["from"] != c["to"]),
            "entered": sum(c["customers"] for c in ordered if c["from"] is None),
            "left": sum(c["customers"] for c in ordered if c["to"] is None),
            "cells": ordered,
        }

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
        _, _, (config_raw, data_raw) = await svc.read.many(database, "config", "data")
        if config_raw is None or data_raw is None:
            await svc.read.require_config(database)
            raise NotFound(f"database {database!r} is not configured")
        config, data = msgspec.json.decode(config_raw), msgspec.json.decode(data_raw)
        view = parse_filters(filters)
        check_filter_columns(view, data, config)
        restriction = identity(request).restriction
        require_visible_data(database, data, restriction)
        cuts = await asyncio.to_thread(
            suggested_thresholds,
            _files(svc, data),
            spec_from_document(config),
            view or None,
            None,
            restriction or None,
        )
        return {
            "database": database,
            "filters": view,
            "thresholds": None if cuts is None else {m: list(c) for m, c in cuts.items()},
            "configuration_version": config["version"],
            "data_version": data["data_version"],
        }


async def _view_query(
    request: Request[Any, Any, Any],
    database: str,
    filters: list[str] | None,
    as_of: date | None,
    version: int | None,
    at: datetime | None,
    min_position: int | None,
) -> ViewQuery:
    checked_database(database)
    if version is not None and at is not None:
        raise ValidationException(
            detail="give version or at, not both", extra=[{"key": "at", "message": "conflicts with version"}]
        )
    await services(request).read.wait_for(min_position)
    return ViewQuery(
        filters=parse_filters(filters),
        as_of=as_of,
        version=version,
        at=_utc(at),
        restriction=identity(request).restriction,
    )


def _utc(at: datetime | None) -> datetime | None:
    """An instant without a zone is taken as UTC (http-api.md: instants are UTC)."""
    if at is not None and at.tzinfo is None:
        return at.replace(tzinfo=UTC)
    return at


def _point(name: str, text: str) -> tuple[int | None, datetime | None]:
    """A movement end: a configuration version (digits) or an ISO 8601 instant."""
    if text.isdigit() and 1 <= int(text) <= 10**12:
        return int(text), None
    try:
        if text.isdigit():
            raise ValueError(text)
        return None, _utc(datetime.fromisoformat(text.replace("Z", "+00:00")))
    except ValueError:
        raise ValidationException(
            detail=f"{name} must be a configuration version (1 to 10^12) or an ISO instant, not {text!r}",
            extra=[{"key": name, "message": "not a version or an instant"}],
        ) from None


def _cell_key(segment: str | None) -> str | None:
    if segment is None or segment == "none":
        return None
    _check_segment(segment)
    return segment


def _order(segment: str | None) -> int:
    return _SEGMENT_ORDER.get(segment, len(_SEGMENT_ORDER)) if segment else -1


def _created_by(rule: dict[str, Any], view: View) -> bool:
    """Whether a rule existed by the configuration version a replay used."""
    return datetime.fromisoformat(rule["created_at"]) <= datetime.fromisoformat(view.config["modified_at"])


def _only(rule: dict[str, Any], code: str, restriction: dict[str, list[str]]) -> dict[str, Any]:
    """A rule's values and label as a reader may see them: a restricted reader sees, of a rule
    on codes, only the customer it asked about."""
    if rule["dimension"] or not restriction:
        return {"values": rule["values"], "label": rule["label"]}
    return {"values": [code], "label": f"Customers: {code}"}


async def _visible(
    svc: Services, database: str, view: View, code: str, restriction: dict[str, list[str]]
) -> bool:
    """Whether a restricted reader may see this customer (any row within its restriction)."""
    data = await svc.read.require_data(database)
    known = await asyncio.to_thread(
        distinct_values, _files(svc, data), view.config["customer_column"], code, 10_000, restriction
    )
    return code in {value for value, _ in known}


async def _customer_row(
    svc: Services, database: str, view: View, query: ViewQuery, code: str
) -> dict[str, Any] | None:
    if query.default:
        row, _ = await svc.read.customer(database, code)
        return None if row is None else msgspec.json.decode(row)
    rows = msgspec.json.decode(await svc.read.cached(view.rows_key) or b"[]")
    return next((r for r in rows if r["code"] == code), None)


async def configuration_at(
    svc: Services, database: str, version: int | None, at: datetime | None
) -> Response[Any]:
    """The configuration as it was at a version or an instant."""
    config_version, _, _ = await asyncio.to_thread(svc.app.versions_at, database, version, _utc(at))
    past = await asyncio.to_thread(svc.app.configuration, database, config_version)
    if past is None or not past.configured:
        raise NotFound(f"database {database!r} was not configured at version {config_version}")
    return raw_json(msgspec.json.encode(configuration_document(past)))


def _files(svc: Services, data: dict[str, Any]) -> list[str]:
    return [str(svc.app.storage.path(f)) for f in data["files"]]


_SEGMENT_ORDER: dict[str, int] = {
    key: i for i, key in enumerate(dict.fromkeys(str(row[0]) for row in (*SEGMENTS_10, *SEGMENTS_5)))
}
_ROW_FIELDS = ("name", "segment", "recency_days", "last_purchase", "frequency", "monetary", "r", "f", "m")


def _check_segment(segment: str | None) -> None:
    if segment is not None and segment not in _SEGMENT_ORDER:
        raise ValidationException(
            detail=f"unknown segment {segment!r}; one of {', '.join(_SEGMENT_ORDER)}",
            extra=[{"key": "segment", "message": "not a segment key"}],
        )


def _matching(rows: list[dict[str, Any]], segment: str | None, search: str | None) -> list[dict[str, Any]]:
    """Rows of one segment whose code or name contains ``search`` (case-insensitive)."""
    _check_segment(segment)
    needle = search.casefold() if search else None
    return [
        r
        for r in rows
        if (segment is None or r["segment"] == segment)
        and (needle is None or needle in r["code"].casefold() or needle in (r["name"] or "").casefold())
    ]


def _sorted(rows: list[dict[str, Any]], sort: str) -> list[dict[str, Any]]:
    """Rows in the asked order; ties by code (rows arrive sorted by code, and sorts are stable)."""
    descending = sort.startswith("-")
    field = sort.removeprefix("-")
    if field not in SORTS:
        raise ValidationException(
            detail=f"sort must be one of {', '.join(SORTS)}, optionally with -",
            extra=[{"key": "sort", "message": "not a sort order"}],
        )
    if field == "code":
        return sorted(rows, key=lambda r: r["code"], reverse=descending)
    if field == "name":
        return sorted(rows, key=lambda r: (r["name"] or "").casefold(), reverse=descending)
    return sorted(rows, key=lambda r: r[field], reverse=descending)


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


def _cell(value: Any) -> Any:
    """Text that a spreadsheet would run as a formula is prefixed with an apostrophe (OWASP's
    advice against CSV injection); numbers are written as they are."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


async def _csv_chunks(
    svc: Services, rows_key: str, segment: str | None, search: str | None
) -> AsyncIterator[str]:
    """The rows as CSV, read from Redis a chunk at a time: memory stays constant."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(_CSV_FIELDS)
    needle = search.casefold() if search else None
    count = 0
    async for row in svc.read.stream_rows(rows_key):
        if segment is not None and row["segment"] != segment:
            continue
        if (
            needle is not None
            and needle not in row["code"].casefold()
            and needle not in (row["name"] or "").casefold()
        ):
            continue
        writer.writerow([_cell(row[f]) for f in _CSV_FIELDS])
        count += 1
        if count % 2000 == 0:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()
