"""The pure segmentation engine: population, metrics, thresholds, scores, segments.

Nothing here imports Litestar, Redis, ``os`` or settings; the application and the projections
call these functions with Parquet batch paths and plain dataclasses.
"""

from __future__ import annotations

from service.segmentation.engine import (
    UnknownColumnError,
    compute,
    distinct_values,
    period_start,
    removal_matches,
    suggested_thresholds,
    visible_customers,
)
from service.segmentation.model import (
    METRICS,
    CustomerRow,
    Cuts,
    Metric,
    MetricThresholds,
    RemovalRule,
    Segmentation,
    SegmentationSpec,
    SegmentCount,
    ThresholdSetSpec,
)
from service.segmentation.segments import SEGMENTS_5, SEGMENTS_10, TEN_TO_FIVE

__all__ = [
    "METRICS",
    "SEGMENTS_5",
    "SEGMENTS_10",
    "TEN_TO_FIVE",
    "CustomerRow",
    "Cuts",
    "Metric",
    "MetricThresholds",
    "RemovalRule",
    "SegmentCount",
    "Segmentation",
    "SegmentationSpec",
    "ThresholdSetSpec",
    "UnknownColumnError",
    "compute",
    "distinct_values",
    "period_start",
    "removal_matches",
    "suggested_thresholds",
    "visible_customers",
]
