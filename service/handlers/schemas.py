"""The msgspec Structs of the HTTP edge: request bodies forbid unknown fields."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

import msgspec
from msgspec import UNSET, Meta, Struct, UnsetType

Reason = Annotated[str, Meta(max_length=500, description="Why; recorded on the event.")]
Column = Annotated[str, Meta(min_length=1, max_length=200)]
Value = Annotated[str, Meta(max_length=1000)]
Cuts = Annotated[list[int | float], Meta(description="Four strictly increasing cut points.")]
Thresholds = dict[str, Cuts | None]


class Body(Struct, forbid_unknown_fields=True, kw_only=True):
    """Base of every request body."""


class ConfigurationCreate(Body):
    """ConfigureDatabase: the fields of segmentation-rules §1."""

    customer_column: Column
    date_column: Column
    sales_column: Column
    name_column: Column | None = None
    purchase_column: Column | None = None
    grouping: int = 10
    period_months: int = 12
    reference_date: date | None = None
    thresholds: Thresholds | None = None
    scorecard_url: Annotated[str, Meta(max_length=2000)] | None = None
    reason: Reason | None = None


class ConfigurationUpdate(Body):
    """EditConfiguration: any subset of the fields; ``thresholds`` merge per metric."""

    customer_column: Column | UnsetType = UNSET
    date_column: Column | UnsetType = UNSET
    sales_column: Column | UnsetType = UNSET
    name_column: Column | UnsetType | None = UNSET
    purchase_column: Column | UnsetType | None = UNSET
    grouping: int | UnsetType = UNSET
    period_months: int | UnsetType = UNSET
    reference_date: date | UnsetType | None = UNSET
    thresholds: Thresholds | UnsetType = UNSET
    scorecard_url: Annotated[str, Meta(max_length=2000)] | UnsetType | None = UNSET
    reason: Reason | None = None


class ReasonBody(Body):
    """An optional reason, for deletions and restorations."""

    reason: Reason | None = None


class RemovalCreate(Body):
    """RemoveCustomers: ``dimension: null`` means ``values`` are customer codes."""

    dimension: Column | None
    values: Annotated[list[Value], Meta(min_length=1, max_length=100_000)]
    label: Annotated[str, Meta(max_length=200, pattern=r"^[^\x00-\x1f\x7f]*$")] | None = None
    reason: Reason | None = None


Criteria = Annotated[dict[Column, Annotated[list[Value], Meta(max_length=10_000)]], Meta(max_length=50)]
SetName = Annotated[str, Meta(min_length=1, max_length=100, pattern=r"^[^\x00-\x1f\x7f]+$")]


class ThresholdSetCreate(Body):
    """CreateThresholdSet."""

    name: SetName
    criteria: Criteria
    thresholds: Thresholds = msgspec.field(default_factory=dict)
    reason: Reason | None = None


class ThresholdSetUpdate(Body):
    """EditThresholdSet: any subset of name, criteria, thresholds (each replaced whole)."""

    name: SetName | UnsetType = UNSET
    criteria: Criteria | UnsetType = UNSET
    thresholds: Thresholds | UnsetType = UNSET
    reason: Reason | None = None


class CommandAccepted(Struct):
    """A command's result."""

    version: int
    position: int


class RemovalAccepted(Struct):
    rule_id: str
    version: int
    position: int


class ThresholdSetAccepted(Struct):
    threshold_set_id: str
    version: int
    position: int


class ColumnInfo(Struct):
    name: str
    type: str


class ImportAccepted(Struct):
    database: str
    batch_id: str
    rows: int
    columns: list[ColumnInfo]
    position: int
    data_version: int


def given_fields(body: Struct) -> dict[str, Any]:
    """The fields a PATCH body sets (``reason`` aside), JSON-ready."""
    return {
        name: _plain(value)
        for name in body.__struct_fields__
        if name != "reason" and (value := getattr(body, name)) is not UNSET
    }


def settings_of(body: ConfigurationCreate) -> dict[str, Any]:
    """The configuration fields of a PUT body (``reason`` aside), JSON-ready."""
    return {name: _plain(getattr(body, name)) for name in body.__struct_fields__ if name != "reason"}


def _plain(value: Any) -> Any:
    return msgspec.to_builtins(value)


class FieldProblem(Struct):
    field: str
    message: str


class Problem(Struct):
    """An error, as application/problem+json (RFC 9457)."""

    type: str
    title: str
    status: int
    detail: str
    errors: list[FieldProblem] | None = None
