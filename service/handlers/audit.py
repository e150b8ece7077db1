"""Audit endpoints (role ``auditor``): who changed what, when, and why."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Annotated, Any

from litestar import Controller, Request, get
from litestar.params import Parameter, QueryParameter

from service.handlers.common import AUDITOR, checked_database, identity, services
from service.handlers.queries import At, MinPosition
from service.handlers.restrict import redact_values, visible_codes

EventType = Annotated[
    str | None, QueryParameter(name="type", description="An event type, e.g. CustomersRemoved")
]
Since = Annotated[datetime | None, QueryParameter(description="Entries at or after this instant (UTC)")]
Until = Annotated[datetime | None, QueryParameter(description="Entries at or before this instant (UTC)")]


def _page(
    entries: list[dict[str, Any]],
    actor: str | None,
    event_type: str | None,
    since: datetime | None,
    until: datetime | None,
    limit: int,
    offset: int,
) -> dict[str, Any]:
    since, until = _utc(since), _utc(until)
    selected = [
        e
        for e in entries
        if (actor is None or e["actor"] == actor)
        and (event_type is None or e["type"] == event_type)
        and (since is None or datetime.fromisoformat(e["at"]) >= since)
        and (until is None or datetime.fromisoformat(e["at"]) <= until)
    ]
    return {"total": len(selected), "items": selected[offset : offset + limit]}


def _redact_entry(entry: dict[str, Any], visible: set[str] | None) -> dict[str, Any]:
    """An audit entry whose code rule names only customers the reader may see."""
    if entry["type"] != "CustomersRemoved":
        return entry
    return {**entry, "details": redact_values(entry["details"], visible)}


def _utc(instant: datetime | None) -> datetime | None:
    return instant.replace(tzinfo=UTC) if instant is not None and instant.tzinfo is None else instant


class AuditController(Controller):
    """The audit trail of a database, and its exclusions."""

    path = "/databases/{database:str}/audit"
    guards = AUDITOR
    tags = ["audit"]

    @get("/", summary="Every event of the database's configuration and data, oldest first")
    async def trail(
        self,
        request: Request[Any, Any, Any],
        database: str,
        actor: str | None = None,
        event_type: EventType = None,
        since: Since = None,
        until: Until = None,
        limit: int = Parameter(default=100, ge=1, le=1000),
        offset: int = Parameter(default=0, ge=0),
        min_position: MinPosition = None,
    ) -> dict[str, Any]:
        svc = services(request)
        await svc.read.wait_for(min_position)
        await svc.read.require_data(checked_database(database))
        entries = await svc.read.audit(database)
        visible = await visible_codes(svc, database, identity(request).restriction)
        if visible is not None:
            entries = [_redact_entry(e, visible) for e in entries]
        return _page(entries, actor, event_type, since, until, limit, offset)

    @get("/exclusions", summary="Who excluded which customers, when and why")
    async def exclusions(
        self,
        request: Request[Any, Any, Any],
        database: str,
        at: At = None,
        min_position: MinPosition = None,
    ) -> dict[str, Any]:
        svc = services(request)
        checked_database(database)
        await svc.read.wait_for(min_position)
        rules = await asyncio.to_thread(svc.app.exclusions, database, _utc(at))
        visible = await visible_codes(svc, database, identity(request).restriction)
        if visible is not None:
            rules = [
                {**redact_values(rule, visible), "customers": [c for c in rule["customers"] if c in visible]}
                for rule in rules
            ]
        return {
            "database": database,
            "at": None if at is None else _utc(at).isoformat(),  # type: ignore[union-attr]
            "rules": [
                {
                    k: rule[k]
                    for k in (
                        "rule_id",
                        "dimension",
                        "values",
                        "label",
                        "active",
                        "created_by",
                        "created_at",
                        "reason",
                        "restored_by",
                        "restored_at",
                        "restore_reason",
                        "customers",
                    )
                }
                for rule in rules
            ],
        }


class GlobalAuditController(Controller):
    """The audit trail across every database: what has this user changed?"""

    path = "/audit"
    guards = AUDITOR
    tags = ["audit"]

    @get("/", summary="Every event of every database, oldest first")
    async def trail(
        self,
        request: Request[Any, Any, Any],
        actor: str | None = None,
        event_type: EventType = None,
        since: Since = None,
        until: Until = None,
        limit: int = Parameter(default=100, ge=1, le=1000),
        offset: int = Parameter(default=0, ge=0),
        min_position: MinPosition = None,
    ) -> dict[str, Any]:
        svc = services(request)
        await svc.read.wait_for(min_position)
        entries = await svc.read.global_audit()
        restriction = identity(request).restriction
        if restriction:
            visible: dict[str, set[str] | None] = {}
            for entry in entries:
                if entry["database"] not in visible:
                    visible[entry["database"]] = await visible_codes(svc, entry["database"], restriction)
            entries = [_redact_entry(e, visible[e["database"]]) for e in entries]
        return _page(entries, actor, event_type, since, until, limit, offset)
