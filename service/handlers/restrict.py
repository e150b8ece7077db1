"""What a key with a data restriction may see of rules that name customers.

A removal rule on codes lists customers by name; for a restricted reader those lists keep only
the customers it may see (those with a row inside its restriction), so no endpoint reveals a
customer it could not otherwise find.
"""

from __future__ import annotations

import asyncio
from typing import Any

import msgspec

from service.aggregates.errors import NotFound
from service.handlers.common import Services
from service.segmentation import UnknownColumnError, visible_customers


async def visible_codes(svc: Services, database: str, restriction: dict[str, list[str]]) -> set[str] | None:
    """The customers a restricted reader may see; None when it is not restricted."""
    if not restriction:
        return None
    _, _, (config_raw, data_raw) = await svc.read.many(database, "config", "data")
    if config_raw is None or data_raw is None:
        return set()
    config, data = msgspec.json.decode(config_raw), msgspec.json.decode(data_raw)
    files = [str(svc.app.storage.path(f)) for f in data["files"]]
    try:
        return await asyncio.to_thread(visible_customers, files, config["customer_column"], restriction)
    except UnknownColumnError:  # the restriction's column is not in this database: nothing shows
        return set()


def redact_values(rule: dict[str, Any], visible: set[str] | None) -> dict[str, Any]:
    """A code rule keeping only the visible customers, in its values and in its label (a
    generated label lists codes too)."""
    if visible is None or rule.get("dimension"):
        return rule
    values = [v for v in rule.get("values", []) if v in visible]
    redacted = {**rule, "values": values}
    if "label" in rule:
        redacted["label"] = "Customers: " + ", ".join(values)
    return redacted


def require_visible_data(database: str, data: dict[str, Any], restriction: dict[str, list[str]]) -> None:
    """A key restricted on a column this database lacks may see none of its rows."""
    names = {c["name"] for c in data["columns"]}
    if any(column not in names for column in restriction):
        raise NotFound(f"this key may see no data of database {database!r}")
