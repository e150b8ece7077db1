"""Audit endpoints (role ``auditor``): who changed what, when, and why."""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Annotated, Any

from litestar import Controller, Request, get
from litestar.params import Parameter, QueryParameter

from service.aggregates.errors import NotFound
from service.handlers.common import AUDITOR, checked_database, services
from service.handlers.queries import MinPosition
from service.segmentation import RemovalRule, removal_matches


class AuditController(Controller):
    """The audit trail of a database, and its exclusions."""

    path = "/databases/{database:str}/audit"
    guards = AUDITOR
    tags = ["audit"]

    @get("/", summary="Every event of the database, oldest first")
    async def trail(
        self,
        request: Request[Any, Any, Any],
        database: str,
        actor: str | None = None,
        event_type: Annotated[str | None, QueryParameter(name="type")] = None,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int = Parameter(default=100, ge=1, le=1000),
        offset: int = Parameter(default=0, ge=0),
        min_position: MinPosition = None,
    ) -> dict[str, Any]:
        read = services(request).read
        await read.wait_for(min_position)
        await read.require_data(checked_database(database))
        entries = [
            e
            for e in await read.audit(database)
            if (actor is None or e["actor"] == actor)
            and (event_type is None or e["type"] == event_type)
            and (since is None or datetime.fromisoformat(e["at"]) >= since)
            and (until is None or datetime.fromisoformat(e["at"]) <= until)
        ]
        return {"total": len(entries), "items": entries[offset : offset + limit]}

    @get("/exclusions", summary="Who excluded which customers")
    async def exclusions(
        self, request: Request[Any, Any, Any], database: str, min_position: MinPosition = None
    ) -> dict[str, Any]:
        svc = services(request)
        await svc.read.wait_for(min_position)
        checked_database(database)
        configuration = await asyncio.to_thread(svc.app.configuration, database, None)
        sales = await asyncio.to_thread(svc.app.sales_database, database, None)
        if sales is None:
            raise NotFound(f"database {database!r} does not exist")
        if configuration is None:
            return {"database": database, "rules": []}
        rules = list(configuration.rules.values())
        # A deleted configuration keeps its last settings, so its rules still resolve.
        customer_column = configuration.settings["customer_column"]
        files = [str(svc.app.storage.path(b["file"])) for b in sales.current]
        matches = await asyncio.to_thread(
            removal_matches,
            files,
            customer_column,
            [RemovalRule(r["rule_id"], r["dimension"], tuple(r["values"])) for r in rules],
        )
        by_rule: dict[str, list[str]] = {r["rule_id"]: [] for r in rules}
        for code, rule_ids in matches.items():
            for rule_id in rule_ids:
                by_rule[rule_id].append(code)
        return {
            "database": database,
            "rules": [
                {
                    "rule_id": r["rule_id"],
                    "dimension": r["dimension"],
                    "values": r["values"],
                    "label": r["label"],
                    "active": r["active"],
                    "created_by": r["created_by"],
                    "created_at": r["created_at"],
                    "reason": r["reason"],
                    "restored_by": r["restored_by"],
                    "restored_at": r["restored_at"],
                    "restore_reason": r["restore_reason"],
                    "customers": by_rule[r["rule_id"]],
                }
                for r in rules
            ],
        }
