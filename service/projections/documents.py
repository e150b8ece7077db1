"""The JSON documents of the read model, built from aggregates and engine results.

Both the projector (for the default view) and the query side (for filtered views computed on
demand) build their answers here, so a cached answer and a fresh one have the same shape.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime
from typing import Any

import msgspec

from service.aggregates.configuration import Configuration
from service.aggregates.sales_database import SalesDatabase
from service.segmentation.model import (
    CustomerRow,
    RemovalRule,
    Segmentation,
    SegmentationSpec,
    ThresholdSetSpec,
)


def data_document(sales: SalesDatabase) -> dict[str, Any]:
    """The database's columns and batches (``GET /databases/{database}``) and its batch files."""
    return {
        "database": sales.database,
        "columns": sales.columns,
        "rows": sales.rows,
        "batches": [
            {k: batch[k] for k in ("batch_id", "rows", "mode", "imported_at", "imported_by")}
            for batch in sales.current
        ],
        "files": [batch["file"] for batch in sales.current],
        "data_version": sales.version,
    }


def configuration_document(configuration: Configuration) -> dict[str, Any]:
    """``GET .../configuration``: the settings, active removal rules, live threshold sets."""
    return {
        "database": configuration.database,
        **configuration.settings,
        "removal_rules": [_rule_view(rule) for rule in configuration.active_rules],
        "threshold_sets": [_threshold_set_view(s) for s in configuration.live_threshold_sets],
        "version": configuration.version,
        "modified_at": configuration.modified_on.isoformat(),
    }


def _rule_view(rule: dict[str, Any]) -> dict[str, Any]:
    return {
        k: rule[k] for k in ("rule_id", "dimension", "values", "label", "created_by", "created_at", "reason")
    }


def _threshold_set_view(threshold_set: dict[str, Any]) -> dict[str, Any]:
    return {
        "threshold_set_id": threshold_set["threshold_set_id"],
        "name": threshold_set["name"],
        "criteria": threshold_set["criteria"],
        "thresholds": threshold_set["thresholds"],
        "created_by": threshold_set["created_by"],
        "created_at": threshold_set["created_at"],
        "order": threshold_set["order"],
    }


def spec_from_document(document: dict[str, Any]) -> SegmentationSpec:
    """The engine's input from a configuration document."""
    reference = document.get("reference_date")
    thresholds = document.get("thresholds") or {}
    return SegmentationSpec(
        customer_column=document["customer_column"],
        date_column=document["date_column"],
        sales_column=document["sales_column"],
        name_column=document.get("name_column"),
        purchase_column=document.get("purchase_column"),
        grouping=document.get("grouping", 10),
        period_months=document.get("period_months", 12),
        reference_date=date.fromisoformat(reference) if reference else None,
        thresholds={m: _cuts(c) for m, c in thresholds.items()},  # type: ignore[misc]
        removals=tuple(
            RemovalRule(rule["rule_id"], rule["dimension"], tuple(rule["values"]))
            for rule in document.get("removal_rules", [])
        ),
        threshold_sets=tuple(
            ThresholdSetSpec(
                set_id=s["threshold_set_id"],
                name=s["name"],
                criteria={k: tuple(v) for k, v in s["criteria"].items()},
                thresholds={m: _cuts(c) for m, c in s["thresholds"].items()},  # type: ignore[misc]
                order=s["order"],
            )
            for s in document.get("threshold_sets", [])
        ),
    )


def _cuts(cuts: list[float] | None) -> tuple[float, float, float, float] | None:
    return None if cuts is None else (cuts[0], cuts[1], cuts[2], cuts[3])


def summary_document(
    database: str, result: Segmentation, configuration_version: int, data_version: int
) -> dict[str, Any]:
    """The summary of segmentation-rules §7 in the shape of http-api.md."""
    return {
        "database": database,
        "reference_date": _iso(result.reference_date),
        "period_start": _iso(result.period_start),
        "period_end": _iso(result.period_end),
        "active_customers": result.active_customers,
        "total_sales": result.total_sales,
        "thresholds": None
        if result.thresholds is None
        else {
            metric: {"cuts": [_number(c) for c in t.cuts], "source": t.source, "automatic": t.automatic}
            for metric, t in result.thresholds.items()
        },
        "threshold_set": None
        if result.threshold_set is None
        else {"id": result.threshold_set[0], "name": result.threshold_set[1]},
        "filters": {k: list(v) for k, v in result.filters.items()},
        "segments": [
            {
                "key": s.key,
                "name": s.name,
                "customers": s.customers,
                "customers_share": s.customers_share,
                "sales": s.sales,
                "sales_share": s.sales_share,
            }
            for s in result.segments
        ],
        "configuration_version": configuration_version,
        "data_version": data_version,
        "computed_at": datetime.now(UTC).isoformat(),
    }


def encode_rows(rows: Sequence[CustomerRow]) -> bytes:
    """The per-customer rows of §7 (sorted by code) as a JSON array with one row per line:
    decodable whole, and streamable line by line (``ReadModel.stream_rows``) without holding
    the whole array in memory."""
    encode = msgspec.json.encode
    return b"[" + b",\n".join(encode(row) for row in rows) + b"]"


def _number(value: float) -> float | int:
    """A cut point as JSON shows it best: 130, not 130.0; 0.25 stays 0.25."""
    return int(value) if float(value).is_integer() else value


def _iso(value: date | None) -> str | None:
    return None if value is None else value.isoformat()


def audit_entry(database: str, event: Any, position: int) -> dict[str, Any]:
    """One line of the audit trail: who did what, when, why, and what changed."""
    kind = "configuration" if isinstance(event, Configuration.Event) else "data"
    return {
        "database": database,
        "version": event.originator_version,
        "position": position,
        "aggregate": kind,
        "type": type(event).__name__,
        "actor": getattr(event, "actor", None),
        "at": event.timestamp.isoformat(),
        "reason": getattr(event, "reason", None),
        "details": _details(event),
    }


def _details(event: Any) -> dict[str, Any]:
    if isinstance(event, Configuration.DatabaseConfigured | Configuration.DatabaseReconfigured):
        return {"settings": event.settings}
    if isinstance(event, Configuration.ConfigurationEdited | Configuration.ThresholdSetEdited):
        changes = {k: {"old": event.previous.get(k), "new": v} for k, v in event.changes.items()}
        if isinstance(event, Configuration.ThresholdSetEdited):
            return {"threshold_set_id": event.threshold_set_id, "changes": changes}
        return {"changes": changes}
    if isinstance(event, Configuration.CustomersRemoved):
        return {
            "rule_id": event.rule_id,
            "dimension": event.dimension,
            "values": event.values,
            "label": event.label,
        }
    if isinstance(event, Configuration.CustomersRestored):
        return {"rule_id": event.rule_id}
    if isinstance(event, Configuration.ThresholdSetCreated):
        return {
            "threshold_set_id": event.threshold_set_id,
            "name": event.name,
            "criteria": event.criteria,
            "thresholds": event.thresholds,
        }
    if isinstance(event, Configuration.ThresholdSetDeleted):
        return {"threshold_set_id": event.threshold_set_id}
    if isinstance(event, SalesDatabase.BatchImported):
        return {
            "batch_id": event.batch_id,
            "rows": event.rows,
            "mode": event.mode,
            "columns": len(event.columns),
        }
    return {}
