"""Calls into SegmentationApplication that survive the shape of its command methods.

The application's commands are changing (a ``ctx: Context`` argument replaces the trailing
``actor, reason, expected``); the bench only needs to import, configure, remove and restore,
so it adapts to whichever shape is installed rather than pin one.
"""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any

from service.application import SegmentationApplication

ACTOR = "bench"


def _takes_context(method: Any) -> bool:
    return "ctx" in inspect.signature(method).parameters


def _context() -> Any:
    from service import application

    return application.Context(actor=ACTOR)  # type: ignore[attr-defined]


def _position(result: Any) -> int:
    body = getattr(result, "body", None)
    if isinstance(body, dict):
        return int(body["position"])
    return int(result.position)


def import_csv(app: SegmentationApplication, database: str, path: Path) -> int:
    """Import a CSV file as the database's data; returns the event's position."""
    if _takes_context(app.import_batch):
        result = app.import_batch(database, path, "csv", "append", None, _context())  # type: ignore[call-arg]
    else:
        result = app.import_batch(database, path, "csv", "append", None, ACTOR, None)  # type: ignore[call-arg]
    return _position(result)


def configure(app: SegmentationApplication, database: str, settings: dict[str, Any]) -> int:
    """ConfigureDatabase; returns the event's position."""
    if _takes_context(app.configure):
        result = app.configure(database, settings, _context())  # type: ignore[call-arg]
    else:
        result = app.configure(database, settings, ACTOR, None)  # type: ignore[call-arg]
    return _position(result)


def remove_customers(app: SegmentationApplication, database: str, dimension: str, values: list[str]) -> str:
    """RemoveCustomers; returns the new rule's id."""
    if _takes_context(app.remove_customers):
        result: Any = app.remove_customers(database, dimension, values, None, _context())  # type: ignore[call-arg]
        return str(result.body["rule_id"])
    rule_id, _ = app.remove_customers(database, dimension, values, None, ACTOR, None)  # type: ignore[call-arg,misc]
    return str(rule_id)


def restore_customers(app: SegmentationApplication, database: str, rule_id: str) -> None:
    """RestoreCustomers."""
    if _takes_context(app.restore_customers):
        app.restore_customers(database, rule_id, _context())  # type: ignore[call-arg]
    else:
        app.restore_customers(database, rule_id, ACTOR, None)  # type: ignore[call-arg]


def append_config_events(
    app: SegmentationApplication, database: str, events: int, per_save: int = 100
) -> None:
    """Append ``events`` RemoveCustomers/RestoreCustomers events (alternating) to a configured
    database, straight on the aggregate, ``per_save`` events per save (the events are the same
    as the commands write; saving many at once only makes building long histories quick)."""
    sales = app.sales_database(database)
    configuration = app.configuration(database)
    assert sales is not None and configuration is not None
    columns = sales.column_types
    written = 0
    open_rule: str | None = None
    while written < events:
        for _ in range(min(per_save, events - written)):
            if open_rule is None:
                open_rule = f"r{configuration.version:07d}"
                configuration.remove_customers(open_rule, "Region", ["West"], None, columns, ACTOR, None)
            else:
                configuration.restore_customers(open_rule, ACTOR, None)
                open_rule = None
            written += 1
        app.save(configuration)
