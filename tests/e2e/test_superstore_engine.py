"""The worked example of segmentation-rules §8, on the real Superstore sample, through the engine."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import duckdb
import pytest

from service.segmentation import SegmentationSpec, compute, suggested_thresholds

SUPERSTORE = Path(__file__).resolve().parents[2].parent / "shared/data/superstore.csv"

pytestmark = pytest.mark.skipif(
    not SUPERSTORE.exists(),
    reason=f"needs the Superstore sample at {SUPERSTORE} (shared/data beside the project root)",
)

SPEC = SegmentationSpec(
    customer_column="Customer ID",
    name_column="Customer Name",
    date_column="Order Date",
    sales_column="Sales",
    purchase_column="Order ID",
)


@pytest.fixture(scope="module")
def batch(tmp_path_factory: pytest.TempPathFactory) -> str:
    """The CSV as one Parquet batch, dates read as month/day/year."""
    path = tmp_path_factory.mktemp("superstore") / "superstore.parquet"
    with duckdb.connect() as con:
        con.execute(
            f"COPY (SELECT * FROM read_csv('{SUPERSTORE}', header = true, "
            f"dateformat = '%m/%d/%Y')) TO '{path}' (FORMAT parquet)"
        )
    return str(path)


def test_worked_example(batch: str) -> None:
    result = compute([batch], SPEC)
    assert result.reference_date == date(2017, 12, 30)
    assert (result.period_start, result.period_end) == (date(2016, 12, 31), date(2017, 12, 30))
    assert result.active_customers == 693
    assert result.total_sales == 733947.02
    assert result.thresholds is not None
    assert {metric: t.cuts for metric, t in result.thresholds.items()} == {
        "frequency": (1, 2, 3, 4),
        "monetary": (130.0, 420.0, 840.0, 1600.0),
        "recency": (22, 43, 82, 145),
    }
    assert {t.source for t in result.thresholds.values()} == {"automatic"}
    segments = {s.key: s.customers for s in result.segments}
    assert segments["champion"] == 68
    assert sum(segments.values()) == 693
    assert result.threshold_set is None


def test_suggested_thresholds_match_the_defaults(batch: str) -> None:
    assert suggested_thresholds([batch], SPEC) == {
        "frequency": (1, 2, 3, 4),
        "monetary": (130.0, 420.0, 840.0, 1600.0),
        "recency": (22, 43, 82, 145),
    }


def test_five_groups_keep_the_champions(batch: str) -> None:
    result = compute([batch], SegmentationSpec(**{**SPEC.__dict__, "grouping": 5}))
    assert [s.key for s in result.segments] == [
        "champion",
        "loyalist",
        "new_and_promising",
        "at_risk",
        "lost",
    ]
    assert result.segments[0].customers == 68
    assert result.active_customers == 693
