"""Which segmentation a query asks for, and where its answer comes from.

- The default view (no filter, no other reference date, now): stored by the projector.
- A filtered or re-dated view of now: computed from the read model's configuration and data
  documents, cached under a key naming their versions.
- A replay (``version`` or ``at``): the configuration at that version and the data imported by
  then, read from the event store; cached under the same kind of key. A key names exactly what
  the answer was computed from, so a cached answer is never stale and a replay never changes.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

import msgspec
from litestar.exceptions import InternalServerException

from service.aggregates.errors import NotFound
from service.handlers.common import Services, check_filter_columns
from service.handlers.restrict import require_visible_data
from service.projections.documents import (
    configuration_document,
    data_document,
    encode_rows,
    spec_from_document,
    summary_document,
)
from service.segmentation import compute

log = logging.getLogger(__name__)

#: A replay's answer never changes; it is kept long, but not forever, to bound Redis memory.
REPLAY_TTL = 30 * 86_400


@dataclass(frozen=True)
class ViewQuery:
    """What a query asks for: filters, a reference date, a past version or instant."""

    filters: dict[str, list[str]] = field(default_factory=dict)
    as_of: date | None = None
    version: int | None = None
    at: datetime | None = None
    restriction: dict[str, list[str]] = field(default_factory=dict)

    @property
    def historical(self) -> bool:
        return self.version is not None or self.at is not None

    @property
    def default(self) -> bool:
        return not self.filters and self.as_of is None and not self.historical and not self.restriction


@dataclass(frozen=True)
class View:
    """A resolved view: its summary (JSON bytes), the Redis key of its rows, its configuration."""

    summary: bytes
    rows_key: str
    config: dict[str, Any]
    configuration_version: int
    data_version: int


async def summary_of(svc: Services, database: str, query: ViewQuery, min_position: int | None) -> bytes:
    """The summary of a view: the default one straight from the read model (see
    ``ReadModel.summary``), any other one resolved."""
    if query.default:
        summary = await svc.read.summary(database, min_position)
        if summary is not None:
            return summary
    return (await resolve(svc, database, query)).summary


async def resolve(svc: Services, database: str, query: ViewQuery) -> View:
    """The view ``query`` asks for, from the read model or computed (and cached) once."""
    if query.version is not None and query.at is not None:
        raise NotFound("give version or at, not both")
    read = svc.read
    if query.default:
        keys, _, (config_raw, data_raw, summary, error) = await read.many(
            database, "config", "data", "summary", "error"
        )
        if error is not None:
            log.error(
                "segmentation of %s failed in the projector: %s", database, error.decode(errors="replace")
            )
            raise InternalServerException(
                detail=f"the segmentation of {database!r} could not be computed; the service logged why"
            )
        if config_raw is None or data_raw is None or summary is None:
            await read.require_config(database)
            raise NotFound(f"database {database!r} has no segmentation yet")
        config = msgspec.json.decode(config_raw)
        return View(
            summary=summary,
            rows_key=keys.db(database, "customers"),
            config=config,
            configuration_version=config["version"],
            data_version=msgspec.json.decode(data_raw)["data_version"],
        )
    if query.historical:
        keys = await read.keys()
        config_version, data_version, _ = await asyncio.to_thread(
            svc.app.versions_at, database, query.version, query.at
        )
        config = data = None
        ttl = REPLAY_TTL
    else:
        keys, _, (config_raw, data_raw) = await read.many(database, "config", "data")
        if config_raw is None or data_raw is None:
            await read.require_config(database)
            raise NotFound(f"database {database!r} is not configured")
        config, data = msgspec.json.decode(config_raw), msgspec.json.decode(data_raw)
        check_filter_columns(query.filters, data, config)
        config_version, data_version = config["version"], data["data_version"]
        ttl = svc.settings.view_cache_ttl

    # The key names the restriction too: a restricted reader's view is its own.
    key = keys.view(
        database,
        config_version,
        data_version,
        {"filters": query.filters, "as_of": str(query.as_of), "restriction": query.restriction},
    )
    summary, config_raw = await read.cached(key + ":summary"), await read.cached(key + ":config")
    if summary is not None and config_raw is not None and await read.exists(key + ":customers"):
        return View(
            summary, key + ":customers", msgspec.json.decode(config_raw), config_version, data_version
        )

    if config is None:
        config, data = await asyncio.to_thread(_documents_at, svc, database, config_version, data_version)
    assert data is not None
    check_filter_columns(query.filters, data, config)
    files = [str(svc.app.storage.path(f)) for f in data["files"]]
    require_visible_data(database, data, query.restriction)
    result = await asyncio.to_thread(
        compute, files, spec_from_document(config), query.filters, query.as_of, query.restriction or None
    )
    summary = msgspec.json.encode(summary_document(database, result, config_version, data_version))
    await read.cache(key + ":customers", encode_rows(result.customers), ttl)
    await read.cache(key + ":config", msgspec.json.encode(config), ttl)
    await read.cache(key + ":summary", summary, ttl)
    return View(summary, key + ":customers", config, config_version, data_version)


def _documents_at(
    svc: Services, database: str, config_version: int, data_version: int
) -> tuple[dict[str, Any], dict[str, Any]]:
    configuration = svc.app.configuration(database, version=config_version)
    if configuration is None or not configuration.configured:
        raise NotFound(f"database {database!r} was not configured at configuration version {config_version}")
    sales = svc.app.sales_database(database, version=data_version) if data_version else None
    if sales is None:
        raise NotFound(f"database {database!r} had no data at configuration version {config_version}")
    return configuration_document(configuration), data_document(sales)
