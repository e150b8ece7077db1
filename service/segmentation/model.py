"""Plain values the engine works on and returns.

The engine never sees aggregates, Redis or HTTP: the application and the projections translate
their state into these frozen dataclasses, and turn the results back into JSON.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Literal

import msgspec

Metric = Literal["frequency", "monetary", "recency"]
METRICS: tuple[Metric, ...] = ("frequency", "monetary", "recency")

#: Four strictly increasing cut points, or ``None`` for "automatic from the data".
Cuts = tuple[float, float, float, float] | None


@dataclass(frozen=True)
class RemovalRule:
    """Removes customers: by a dimension's values, or (``dimension is None``) by customer code."""

    rule_id: str
    dimension: str | None
    values: tuple[str, ...]


@dataclass(frozen=True)
class ThresholdSetSpec:
    """Alternative cut points that apply when a view filters to the set's criteria (rules §5).

    ``thresholds`` holds only the metrics the set defines; each is explicit cuts or ``None``
    (automatic over the set's criteria population). A metric absent from it uses the defaults.
    ``order`` is the creation order (lower = created earlier), the last tie-breaker.
    """

    set_id: str
    name: str
    criteria: dict[str, tuple[str, ...]]
    thresholds: dict[Metric, Cuts]
    order: int = 0


@dataclass(frozen=True)
class SegmentationSpec:
    """Everything of a configuration that the computation depends on (rules §1)."""

    customer_column: str
    date_column: str
    sales_column: str
    name_column: str | None = None
    purchase_column: str | None = None
    grouping: int = 10
    period_months: int = 12
    reference_date: date | None = None
    thresholds: dict[Metric, Cuts] = field(default_factory=dict)
    removals: tuple[RemovalRule, ...] = ()
    threshold_sets: tuple[ThresholdSetSpec, ...] = ()


@dataclass(frozen=True)
class MetricThresholds:
    """The cut points used for one metric and where they came from."""

    cuts: tuple[float, float, float, float]
    source: Literal["automatic", "explicit", "threshold_set"]
    automatic: bool


@dataclass(frozen=True)
class SegmentCount:
    key: str
    name: str
    customers: int
    customers_share: float
    sales: float
    sales_share: float


class CustomerRow(msgspec.Struct, frozen=True):
    """One active customer's metrics, scores and segment (rules §7). A msgspec Struct: a
    computation builds one per customer, and the read model encodes them as they are."""

    code: str
    name: str | None
    segment: str
    recency_days: int
    last_purchase: date
    frequency: int
    monetary: float
    r: int
    f: int
    m: int


@dataclass(frozen=True)
class Segmentation:
    """The result of one computation (rules §7); customers are sorted by code."""

    reference_date: date | None
    period_start: date | None
    period_end: date | None
    active_customers: int
    total_sales: float
    thresholds: dict[Metric, MetricThresholds] | None
    threshold_set: tuple[str, str] | None  # (id, name)
    filters: dict[str, tuple[str, ...]]
    segments: tuple[SegmentCount, ...]
    customers: tuple[CustomerRow, ...]
