"""The engine on small hand-computed Parquet batches: one test per rule of segmentation-rules.md.

Unless a test says otherwise the reference date is 2017-12-31 and the period 12 months, so the
period is 2017-01-01 ... 2017-12-31. Rows are (cust, day, sales, purchase, region, kind, name).
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from service.segmentation import (
    TEN_TO_FIVE,
    RemovalRule,
    Segmentation,
    SegmentationSpec,
    ThresholdSetSpec,
    UnknownColumnError,
    compute,
    distinct_values,
    period_start,
    removal_matches,
    suggested_thresholds,
)

REF = date(2017, 12, 31)

#: The ``write`` fixture of conftest.py: rows -> the path of a new Parquet batch.
Writer = Callable[..., str]


def d(text: str) -> date:
    return date.fromisoformat(text)


def ago(days: int) -> date:
    """The date ``days`` days before the default reference date (its recency)."""
    return REF - timedelta(days=days)


def spec(**changes: Any) -> SegmentationSpec:
    fields: dict[str, Any] = {
        "customer_column": "cust",
        "date_column": "day",
        "sales_column": "sales",
        "purchase_column": "purchase",
        "name_column": "name",
        "reference_date": REF,
    }
    fields.update(changes)
    return SegmentationSpec(**fields)


def codes(result: Segmentation) -> list[str]:
    return [c.code for c in result.customers]


def by_code(result: Segmentation) -> dict[str, Any]:
    return {c.code: c for c in result.customers}


def cuts(result: Segmentation) -> dict[str, tuple[float, ...]]:
    assert result.thresholds is not None
    return {metric: t.cuts for metric, t in result.thresholds.items()}


EXPLICIT = {
    "frequency": (1, 2, 3, 4),
    "monetary": (100, 200, 300, 400),
    "recency": (10, 20, 30, 40),
}


# --------------------------------------------------------------------------- period (§2.4)


@pytest.mark.parametrize(
    ("reference", "months", "start"),
    [
        (d("2017-12-30"), 12, d("2016-12-31")),
        (d("2016-02-29"), 12, d("2015-03-01")),
        (d("2017-03-31"), 1, d("2017-03-01")),
        (d("2016-03-31"), 1, d("2016-03-01")),
        (d("2017-01-15"), 1, d("2016-12-16")),
        (d("2017-12-31"), 120, d("2008-01-01")),
    ],
)
def test_period_start(reference: date, months: int, start: date) -> None:
    assert period_start(reference, months) == start


def test_period_start_needs_a_month() -> None:
    with pytest.raises(ValueError, match="period_months"):
        period_start(REF, 0)


def test_period_includes_start_and_reference_date_only(write: Writer) -> None:
    batch = write(
        [
            ("start", d("2016-12-31"), 10, "o1"),
            ("before", d("2016-12-30"), 10, "o2"),
            ("ref", d("2017-12-30"), 10, "o3"),
            ("after", d("2017-12-31"), 10, "o4"),
        ]
    )
    result = compute([batch], spec(reference_date=d("2017-12-30")))
    assert (result.period_start, result.period_end) == (d("2016-12-31"), d("2017-12-30"))
    assert codes(result) == ["ref", "start"]
    assert by_code(result)["ref"].recency_days == 0
    assert by_code(result)["start"].recency_days == 364


@pytest.mark.parametrize(
    ("reference", "months", "outside", "inside"),
    [
        (d("2016-02-29"), 12, d("2015-02-28"), d("2015-03-01")),
        (d("2017-03-31"), 1, d("2017-02-28"), d("2017-03-01")),
    ],
)
def test_period_clamps_to_month_end(
    write: Writer, reference: date, months: int, outside: date, inside: date
) -> None:
    batch = write([("out", outside, 10, "o1"), ("in", inside, 10, "o2")])
    result = compute([batch], spec(reference_date=reference, period_months=months))
    assert result.period_start == inside
    assert codes(result) == ["in"]


def test_default_reference_date_is_latest_date_before_removals_and_filters(write: Writer) -> None:
    batch = write(
        [
            ("a", d("2017-06-01"), 10, "o1", "N"),
            ("b", d("2017-09-30"), 10, "o2", "S"),  # removed, and filtered out: still the latest
            ("c", d("2017-12-01"), None, "o3", "N"),  # no sales value: not a transaction
        ]
    )
    result = compute(
        [batch],
        spec(reference_date=None, removals=(RemovalRule("r1", None, ("b",)),)),
        filters={"region": ["N"]},
    )
    assert result.reference_date == d("2017-09-30")
    assert (result.period_start, result.period_end) == (d("2016-10-01"), d("2017-09-30"))
    assert by_code(result)["a"].recency_days == 121


def test_as_of_overrides_the_reference_date(write: Writer) -> None:
    batch = write([("a", d("2017-06-01"), 10, "o1"), ("b", d("2017-07-01"), 10, "o2")])
    result = compute([batch], spec(), as_of=d("2017-06-30"))
    assert result.reference_date == d("2017-06-30")
    assert codes(result) == ["a"]
    assert by_code(result)["a"].recency_days == 29


def test_timestamp_dates_use_their_date_part(write: Writer) -> None:
    batch = write(
        [
            ("first", datetime(2017, 1, 1, 0, 0), 10, "o1"),
            ("late", datetime(2017, 12, 31, 23, 59, 59), 10, "o2"),
            ("early", datetime(2016, 12, 31, 23, 59, 59), 10, "o3"),
        ],
        "cust VARCHAR, day TIMESTAMP, sales DOUBLE, purchase VARCHAR",
    )
    result = compute([batch], spec(name_column=None))
    assert codes(result) == ["first", "late"]
    assert by_code(result)["late"].recency_days == 0
    assert by_code(result)["late"].last_purchase == REF


# --------------------------------------------------------------------------- removals (§2.2)


def test_dimension_rule_removes_customer_with_any_matching_row_at_any_date(write: Writer) -> None:
    batch = write(
        [
            ("x", d("2010-01-01"), 10, "o1", "Gone"),  # years before the period
            ("x", d("2017-05-01"), 10, "o2", "N"),
            ("y", d("2017-05-01"), 10, "o3", "N"),
        ]
    )
    rule = RemovalRule("r1", "region", ("Gone",))
    assert codes(compute([batch], spec(removals=(rule,)))) == ["y"]
    assert removal_matches([batch], "cust", [rule]) == {"x": ("r1",)}


def test_code_rule_removes_codes_and_matches_only_codes_in_the_data(write: Writer) -> None:
    batch = write([("x", d("2017-05-01"), 10, "o1"), ("y", d("2017-05-01"), 10, "o2")])
    rule = RemovalRule("r2", None, ("y", "absent"))
    assert codes(compute([batch], spec(removals=(rule,)))) == ["x"]
    assert removal_matches([batch], "cust", [rule]) == {"y": ("r2",)}


def test_customer_matched_by_two_rules_is_removed_until_both_are_restored(write: Writer) -> None:
    batch = write(
        [
            ("x", d("2017-05-01"), 10, "o1", "S"),
            ("y", d("2017-05-01"), 10, "o2", "N"),
        ]
    )
    by_region = RemovalRule("r1", "region", ("S",))
    by_code_ = RemovalRule("r2", None, ("x",))
    assert removal_matches([batch], "cust", [by_region, by_code_]) == {"x": ("r1", "r2")}
    assert removal_matches([batch], "cust", [by_code_, by_region]) == {"x": ("r2", "r1")}
    assert codes(compute([batch], spec(removals=(by_region, by_code_)))) == ["y"]
    assert codes(compute([batch], spec(removals=(by_code_,)))) == ["y"]  # r1 restored
    assert codes(compute([batch], spec(removals=(by_region,)))) == ["y"]  # r2 restored
    assert codes(compute([batch], spec())) == ["x", "y"]


def test_removal_compares_values_as_text(write: Writer) -> None:
    batch = write(
        [
            ("x", d("2017-05-01"), 10, 7, d("2015-03-01")),
            ("y", d("2017-05-01"), 10, 8, d("2016-03-01")),
            ("z", d("2017-05-01"), 10, 9, d("2016-03-01")),
        ],
        "cust VARCHAR, day DATE, sales DOUBLE, store INTEGER, opened DATE",
    )
    rules = [RemovalRule("r1", "store", ("7",)), RemovalRule("r2", "opened", ("2016-03-01",))]
    assert removal_matches([batch], "cust", rules) == {"x": ("r1",), "y": ("r2",), "z": ("r2",)}
    result = compute([batch], spec(name_column=None, purchase_column=None, removals=(rules[0],)))
    assert codes(result) == ["y", "z"]


def test_removed_customers_are_left_out_of_automatic_cuts(write: Writer) -> None:
    rows: list[tuple[Any, ...]] = [(f"c{i}", d("2017-06-01"), 10 * i, f"o{i}") for i in range(1, 7)]
    rows.append(("big", d("2017-06-01"), 1_000_000, "o7", "VIP"))
    batch = write(rows)
    removed = spec(removals=(RemovalRule("r1", "region", ("VIP",)),))
    assert suggested_thresholds([batch], removed)["monetary"] == (20.0, 30.0, 40.0, 50.0)  # type: ignore[index]
    # With "big": n = 7, h = 1.2, 2.4, 3.6, 4.8 -> 22, 34, 46, 58.
    assert suggested_thresholds([batch], spec())["monetary"] == (22.0, 34.0, 46.0, 58.0)  # type: ignore[index]


def test_removal_matches_without_rules_or_batches(write: Writer) -> None:
    batch = write([("x", d("2017-05-01"), 10, "o1")])
    assert removal_matches([batch], "cust", []) == {}
    assert removal_matches([], "cust", [RemovalRule("r1", None, ("x",))]) == {}


# --------------------------------------------------------------------------- metrics (§3)


def test_purchases_are_grouped_by_the_purchase_column(write: Writer) -> None:
    batch = write(
        [
            ("a", d("2017-03-01"), 10, "o1"),
            ("a", d("2017-03-01"), 5, "o1"),
            ("a", d("2017-03-01"), 7, "o2"),  # same day, another order: another purchase
            ("a", d("2017-04-01"), 1, "o3"),
        ]
    )
    a = by_code(compute([batch], spec()))["a"]
    assert (a.frequency, a.monetary, a.last_purchase) == (3, 23.0, d("2017-04-01"))


def test_without_purchase_column_one_purchase_per_customer_per_date(write: Writer) -> None:
    batch = write(
        [
            ("a", d("2017-03-01"), 10, "o1"),
            ("a", d("2017-03-01"), 7, "o2"),
            ("a", d("2017-04-01"), 1, "o3"),
            ("b", d("2017-03-01"), 5, "o1"),  # same date, other customer: its own purchase
        ]
    )
    result = compute([batch], spec(purchase_column=None))
    assert by_code(result)["a"].frequency == 2
    assert by_code(result)["b"].frequency == 1


def test_lines_without_purchase_id_group_by_date(write: Writer) -> None:
    batch = write(
        [
            ("a", d("2017-03-01"), 10, None),
            ("a", d("2017-03-01"), 7, None),
            ("a", d("2017-04-01"), 1, None),
            ("a", d("2017-04-01"), 1, "o1"),
        ]
    )
    assert by_code(compute([batch], spec()))["a"].frequency == 3


def test_purchase_date_is_its_latest_line_date(write: Writer) -> None:
    batch = write([("a", d("2017-03-01"), 10, "o1"), ("a", d("2017-03-05"), 10, "o1")])
    a = by_code(compute([batch], spec()))["a"]
    assert (a.frequency, a.last_purchase, a.recency_days) == (1, d("2017-03-05"), 301)


def test_returns_and_zero_lines_count_in_monetary_only(write: Writer) -> None:
    batch = write(
        [
            ("a", d("2017-06-01"), 100, "o1"),
            ("a", d("2017-06-01"), 0, "o1"),  # zero line in a purchase
            ("a", d("2017-12-01"), 50, "o2"),
            ("a", d("2017-12-01"), -50, "o2"),  # net 0: not a purchase for F and R
            ("a", d("2017-12-20"), -30, "o3"),  # a return
            ("a", d("2017-12-21"), 0, "o4"),  # a zero purchase
            ("a", d("2017-08-01"), 30, "o5"),
            ("a", d("2017-08-01"), -10, "o5"),  # net 20 > 0: counts
        ]
    )
    a = by_code(compute([batch], spec()))["a"]
    assert (a.frequency, a.last_purchase, a.recency_days) == (2, d("2017-08-01"), 152)
    assert a.monetary == 90.0


def test_customer_with_only_returns_is_not_active(write: Writer) -> None:
    batch = write(
        [
            ("a", d("2017-06-01"), 100, "o1"),
            ("b", d("2017-06-01"), -20, "o2"),
            ("b", d("2017-07-01"), 0, "o3"),
            ("c", d("2016-06-01"), 500, "o4"),  # bought, but before the period
            ("c", d("2017-07-01"), -100, "o5"),
        ]
    )
    result = compute([batch], spec())
    assert codes(result) == ["a"]
    assert (result.active_customers, result.total_sales) == (1, 100.0)


def test_rows_with_null_customer_date_or_sales_are_ignored(write: Writer) -> None:
    batch = write(
        [
            ("a", d("2017-06-01"), 100, "o1"),
            (None, d("2017-06-01"), 100, "o2"),
            ("a", None, 1000, "o3"),
            ("a", d("2017-07-01"), None, "o4"),
            ("b", None, 10, "o5"),
        ]
    )
    result = compute([batch], spec())
    assert codes(result) == ["a"]
    a = result.customers[0]
    assert (a.frequency, a.monetary, a.last_purchase) == (1, 100.0, d("2017-06-01"))


def test_name_is_from_the_latest_line_ties_largest_nulls_skipped(write: Writer) -> None:
    batch = write(
        [
            ("a", d("2017-01-01"), 10, "o1", "N", "A", "Zed"),
            ("a", d("2017-05-01"), 10, "o2", "N", "A", "Alpha"),
            ("a", d("2017-05-01"), 10, "o3", "N", "A", "Beta"),
            ("a", d("2017-06-01"), 10, "o4", "N", "A", None),
            ("b", d("2017-06-01"), 10, "o5", "N", "A", None),
        ]
    )
    result = compute([batch], spec())
    assert [(c.code, c.name) for c in result.customers] == [("a", "Beta"), ("b", None)]
    assert {c.name for c in compute([batch], spec(name_column=None)).customers} == {None}


def test_money_is_summed_exactly_and_rounded_to_cents_half_up(write: Writer) -> None:
    rows = [("tenths", d("2017-06-01"), 0.1, "o1")] * 10
    rows += [
        ("third", d("2017-06-01"), 0.1, "o2"),
        ("third", d("2017-06-01"), 0.2, "o2"),
        ("half_cent", d("2017-06-01"), 1.005, "o3"),  # 1.00499999... as a double
        ("big", d("2017-06-01"), 123456789.125, "o4"),
    ]
    result = compute([write(rows)], spec())
    money = {c.code: c.monetary for c in result.customers}
    assert money == {"tenths": 1.0, "third": 0.3, "half_cent": 1.01, "big": 123456789.13}
    assert result.total_sales == 123456791.43  # 1 + 0.3 + 1.005 + 123456789.125, then cents


# --------------------------------------------------------------------------- scores (§4)


def test_explicit_cuts_value_equal_to_a_cut_falls_in_the_lower_band(write: Writer) -> None:
    batch = write(
        [
            ("eq", ago(10), 50, "o1"),
            ("eq", ago(20), 50, "o2"),  # F: 2 > 1 only; M: 100 is not > 100; R: 10 <= 10
            ("above", ago(11), 50, "o3"),
            ("above", ago(30), 50, "o4"),
            ("above", ago(40), 0.01, "o5"),
            ("old", ago(41), 400.5, "o6"),
            ("now", ago(0), 10, "o7"),
        ]
    )
    result = compute([batch], spec(thresholds=EXPLICIT))
    scores = {c.code: (c.r, c.f, c.m, c.segment) for c in result.customers}
    assert scores == {
        "eq": (5, 2, 1, "potential_loyalist"),
        "above": (4, 3, 2, "potential_loyalist"),
        "old": (1, 1, 5, "at_risk"),
        "now": (5, 1, 1, "new_customer"),
    }
    assert result.thresholds is not None
    assert {m: (t.source, t.automatic) for m, t in result.thresholds.items()} == {
        "frequency": ("explicit", False),
        "monetary": ("explicit", False),
        "recency": ("explicit", False),
    }


def test_monetary_equal_to_a_decimal_cut_is_compared_exactly(write: Writer) -> None:
    batch = write(
        [
            ("a", d("2017-06-01"), 0.1, "o1"),
            ("a", d("2017-06-01"), 0.2, "o1"),  # 0.1 + 0.2 is exactly 0.3 here
            ("b", d("2017-06-01"), 0.31, "o2"),
        ]
    )
    thresholds = {**EXPLICIT, "monetary": (0.3, 0.4, 0.5, 0.6)}
    result = compute([batch], spec(thresholds=thresholds))
    assert {c.code: c.m for c in result.customers} == {"a": 1, "b": 2}


def test_automatic_cuts_from_the_data(write: Writer) -> None:
    # Six customers: type-7 quantiles are exactly the 2nd to 5th smallest values.
    amounts = [1, 87.5, 424.9, 53417.2, 99999, 1_000_000]
    batch = write([(f"c{i}", ago(5 * i), amounts[i], f"o{i}") for i in range(6)])
    result = compute([batch], spec())
    assert cuts(result) == {
        "frequency": (1, 2, 3, 4),  # all 1, bumped
        "monetary": (88.0, 420.0, 53000.0, 100000.0),
        "recency": (5, 10, 15, 20),
    }
    assert result.thresholds is not None
    assert {(t.source, t.automatic) for t in result.thresholds.values()} == {("automatic", True)}
    scores = {c.code: (c.r, c.m) for c in result.customers}
    # c1: recency 5 == c1 -> R5; monetary 87.5 <= 88 -> M1.
    assert scores == {"c0": (5, 1), "c1": (5, 1), "c2": (4, 3), "c3": (3, 4), "c4": (2, 4), "c5": (1, 5)}


def test_explicit_and_automatic_metrics_mix(write: Writer) -> None:
    batch = write([(f"c{i}", ago(i), 10 * (i + 1), f"o{i}") for i in range(6)])
    result = compute([batch], spec(thresholds={"frequency": (5, 6, 7, 8), "recency": None}))
    assert cuts(result) == {
        "frequency": (5, 6, 7, 8),
        "monetary": (20.0, 30.0, 40.0, 50.0),
        "recency": (1, 2, 3, 4),
    }
    assert result.thresholds is not None
    assert result.thresholds["frequency"].source == "explicit"
    assert result.thresholds["monetary"].source == "automatic"


# --------------------------------------------------------------------------- filters and sets


def _regions(write: Writer) -> str:
    """Region N: n1..n6, customer ni with i purchases of 10 (only the first of kind A).
    Region S: s1..s6, customer sj with one purchase of 100 j (kind A).

    Unfiltered: frequency [1]*7 + [2..6] -> [1, 2, 3, 4]; monetary 10..60, 100..600 ->
    quantiles 32, 54, 160, 380; recency 25..30, 55..60 -> [27, 29, 55, 57].
    Region N: frequency 1..6 -> [2, 3, 4, 5]; monetary 10..60 -> [20, 30, 40, 50].
    """
    rows = [
        (f"n{i}", d(f"2017-12-{k + 1:02d}"), 10, f"n{i}-{k}", "N", "A" if k == 0 else "B")
        for i in range(1, 7)
        for k in range(i)
    ]
    rows += [(f"s{j}", d(f"2017-11-{j:02d}"), 100 * j, f"s{j}", "S", "A") for j in range(1, 7)]
    return write(rows)


UNFILTERED_CUTS = {
    "frequency": (1, 2, 3, 4),
    "monetary": (32.0, 54.0, 160.0, 380.0),
    "recency": (27, 29, 55, 57),
}


def test_filters_or_within_a_column_and_across_columns(write: Writer) -> None:
    batch = write(
        [
            ("a", d("2017-06-01"), 10, "o1", "N", "A"),
            ("b", d("2017-06-01"), 10, "o2", "S", "A"),
            ("c", d("2017-06-01"), 10, "o3", "N", "B"),
            ("d", d("2017-06-01"), 10, "o4", "W", "A"),
            ("e", d("2017-06-01"), 10, "o5", "N", "A"),
            ("e", d("2017-07-01"), 99, "o6", "S", "B"),
        ]
    )
    assert codes(compute([batch], spec(), {"region": ["N", "S"]})) == ["a", "b", "c", "e"]
    result = compute([batch], spec(), {"region": ["N", "S"], "kind": ["A"]})
    assert codes(result) == ["a", "b", "e"]
    assert result.filters == {"region": ("N", "S"), "kind": ("A",)}
    # Filters keep transactions, not customers: e's kind-B purchase is out of the view.
    e = by_code(result)["e"]
    assert (e.frequency, e.monetary) == (1, 10.0)


def test_default_automatic_cuts_come_from_the_unfiltered_population(write: Writer) -> None:
    batch = _regions(write)
    assert suggested_thresholds([batch], spec()) == UNFILTERED_CUTS
    assert suggested_thresholds([batch], spec(), {"region": ["N"]}) == {
        "frequency": (2, 3, 4, 5),
        "monetary": (20.0, 30.0, 40.0, 50.0),
        "recency": (26, 27, 28, 29),
    }
    filtered = compute([batch], spec(), {"region": ["N"]})
    assert codes(filtered) == ["n1", "n2", "n3", "n4", "n5", "n6"]
    assert cuts(filtered) == UNFILTERED_CUTS
    assert filtered.threshold_set is None


def test_suggested_thresholds_ignore_explicit_cuts_and_need_an_active_customer(
    write: Writer,
) -> None:
    batch = _regions(write)
    assert suggested_thresholds([batch], spec(thresholds=EXPLICIT)) == UNFILTERED_CUTS
    assert suggested_thresholds([batch], spec(), {"region": ["W"]}) is None
    assert suggested_thresholds([], spec()) is None


def test_set_automatic_metric_uses_its_criteria_population(write: Writer) -> None:
    batch = _regions(write)
    north = ThresholdSetSpec("north", "North", {"region": ("N",)}, {"frequency": None})
    result = compute([batch], spec(threshold_sets=(north,)), {"region": ["N"], "kind": ["A"]})
    assert result.threshold_set == ("north", "North")
    # Not the view's own (every n has frequency 1 on kind A: [1, 2, 3, 4]) nor the unfiltered.
    assert cuts(result)["frequency"] == (2, 3, 4, 5)
    # Metrics the set leaves out use the defaults, automatic over the unfiltered population.
    assert cuts(result)["monetary"] == UNFILTERED_CUTS["monetary"]
    assert result.thresholds is not None
    assert (result.thresholds["frequency"].source, result.thresholds["frequency"].automatic) == (
        "threshold_set",
        True,
    )
    assert result.thresholds["monetary"].source == "automatic"


def test_set_explicit_metric(write: Writer) -> None:
    batch = _regions(write)
    north = ThresholdSetSpec("north", "North", {"region": ("N", "S")}, {"monetary": (1, 2, 3, 4)})
    result = compute([batch], spec(threshold_sets=(north,)), {"region": ["S"]})
    assert result.thresholds is not None
    assert result.thresholds["monetary"].cuts == (1, 2, 3, 4)
    assert (result.thresholds["monetary"].source, result.thresholds["monetary"].automatic) == (
        "threshold_set",
        False,
    )
    assert {c.m for c in result.customers} == {5}
    assert cuts(result)["frequency"] == UNFILTERED_CUTS["frequency"]


def test_set_applies_only_to_matching_filters_and_the_most_specific_wins(write: Writer) -> None:
    batch = _regions(write)
    north = ThresholdSetSpec("north", "North", {"region": ("N",)}, {"frequency": (5, 6, 7, 8)})
    north_a = ThresholdSetSpec(
        "north-a",
        "North A",
        {"region": ("N",), "kind": ("A", "B")},
        {"frequency": (9, 10, 11, 12)},
        order=3,
    )
    sets = spec(threshold_sets=(north, north_a))
    assert compute([batch], sets).threshold_set is None
    assert compute([batch], sets, {"kind": ["A"]}).threshold_set is None
    assert compute([batch], sets, {"region": ["N", "S"]}).threshold_set is None
    assert compute([batch], sets, {"region": ["N"]}).threshold_set == ("north", "North")
    chosen = compute([batch], sets, {"region": ["N"], "kind": ["A"]})
    assert chosen.threshold_set == ("north-a", "North A")
    assert cuts(chosen)["frequency"] == (9, 10, 11, 12)


# --------------------------------------------------------------------------- segments (§6, §7)


def _mixed(write: Writer) -> str:
    rows = [
        ("champ", ago(1), 250, "o1"),
        ("champ", ago(2), 250, "o2"),
        ("champ", ago(3), 250, "o3"),
        ("loyal", ago(25), 150, "o4"),
        ("loyal", ago(26), 150, "o5"),
        ("loyal", ago(27), 150, "o6"),
        ("new", ago(2), 10, "o7"),
        ("sleepy", ago(35), 10, "o8"),
        ("sleepy2", ago(35), 20, "o9"),
    ]
    return write(rows)


def test_segments_listed_in_table_order_with_empty_ones(write: Writer) -> None:
    result = compute([_mixed(write)], spec(thresholds=EXPLICIT))
    assert [(s.key, s.name, s.customers, s.sales) for s in result.segments] == [
        ("champion", "Champion", 1, 750.0),
        ("loyalist", "Loyalist", 1, 450.0),
        ("potential_loyalist", "Potential loyalist", 0, 0.0),
        ("new_customer", "New customer", 1, 10.0),
        ("promising", "Promising", 0, 0.0),
        ("needs_attention", "Needs attention", 0, 0.0),
        ("about_to_sleep", "About to sleep", 0, 0.0),
        ("at_risk", "At risk", 0, 0.0),
        ("cant_lose", "Can't lose", 0, 0.0),
        ("hibernating", "Hibernating", 2, 30.0),
    ]
    assert result.active_customers == 5
    assert result.total_sales == 1240.0
    shares = {s.key: (s.customers_share, s.sales_share) for s in result.segments}
    assert shares["champion"] == (0.2, round(750 / 1240, 6))
    assert shares["hibernating"] == (0.4, round(30 / 1240, 6))
    assert shares["promising"] == (0.0, 0.0)


def test_five_groups_relabel_the_same_customers(write: Writer) -> None:
    batch = _mixed(write)
    ten = compute([batch], spec(thresholds=EXPLICIT))
    five = compute([batch], spec(thresholds=EXPLICIT, grouping=5))
    assert [(s.key, s.name, s.customers, s.sales) for s in five.segments] == [
        ("champion", "Champion", 1, 750.0),
        ("loyalist", "Loyalist", 1, 450.0),
        ("new_and_promising", "New & promising", 1, 10.0),
        ("at_risk", "At risk", 0, 0.0),
        ("lost", "Lost", 2, 30.0),
    ]
    assert [c.segment for c in five.customers] == [TEN_TO_FIVE[c.segment] for c in ten.customers]


def test_grouping_must_be_5_or_10(write: Writer) -> None:
    with pytest.raises(ValueError, match="grouping"):
        compute([_mixed(write)], spec(grouping=3))


def test_shares_are_rounded_and_sales_share_clamped(write: Writer) -> None:
    batch = write(
        [
            ("a", ago(0), 10, "o1"),
            ("a", ago(1), -100, "o2"),  # monetary -90, still active
            ("b", ago(0), 200, "o3"),
            ("c", ago(0), 60, "o4"),
        ]
    )
    thresholds = {**EXPLICIT, "monetary": (0, 100, 150, 175)}
    result = compute([batch], spec(thresholds=thresholds))
    assert result.total_sales == 170.0
    seg = {s.key: s for s in result.segments}
    assert (seg["new_customer"].customers, seg["new_customer"].sales) == (1, -90.0)
    assert seg["new_customer"].sales_share == 0.0  # -90 / 170 clamped to 0
    assert (seg["potential_loyalist"].customers, seg["potential_loyalist"].sales) == (2, 260.0)
    assert seg["potential_loyalist"].sales_share == 1.0  # 260 / 170 clamped to 1
    assert seg["potential_loyalist"].customers_share == 0.666667
    assert seg["new_customer"].customers_share == 0.333333

    negative = compute([batch], spec(thresholds=thresholds), {"cust": ["a"]})
    assert negative.total_sales == -90.0
    assert {s.sales_share for s in negative.segments} == {0.0}


def test_no_active_customer_means_no_thresholds_and_zero_segments(write: Writer) -> None:
    batch = write([("a", d("2017-06-01"), -10, "o1"), ("b", d("2015-06-01"), 10, "o2")])
    for result in (
        compute([batch], spec()),
        compute([batch], spec(grouping=5)),
        compute([batch], spec(), {"region": ["nowhere"]}),
    ):
        assert result.active_customers == 0
        assert result.total_sales == 0.0
        assert result.thresholds is None
        assert result.customers == ()
        assert {(s.customers, s.customers_share, s.sales, s.sales_share) for s in result.segments} == {
            (0, 0.0, 0.0, 0.0)
        }
    assert len(compute([batch], spec()).segments) == 10
    assert len(compute([batch], spec(grouping=5)).segments) == 5


def test_no_batches(write: Writer) -> None:
    result = compute([], spec(reference_date=None))
    assert (result.reference_date, result.period_start, result.active_customers) == (None, None, 0)
    dated = compute([], spec())
    assert (dated.reference_date, dated.period_start) == (REF, d("2017-01-01"))


def test_customers_are_sorted_by_code(write: Writer) -> None:
    batch = write([(c, d("2017-06-01"), 10, f"o{i}") for i, c in enumerate("bäBa")])
    assert codes(compute([batch], spec())) == ["B", "a", "b", "ä"]


def test_batches_are_read_together_by_column_name(write: Writer) -> None:
    old = write(
        [(d("2017-03-01"), "a", 10.0, "o1")],
        "day DATE, cust VARCHAR, sales DOUBLE, purchase VARCHAR",
    )
    new = write([("a", d("2017-04-01"), 5, "o2", "N"), ("b", d("2017-04-01"), 5, "o3", "S")])
    result = compute([old, new], spec())
    a = by_code(result)["a"]
    assert (a.frequency, a.monetary) == (2, 15.0)
    # The old batch has no region: its rows never match a region filter.
    assert by_code(compute([old, new], spec(), {"region": ["N"]}))["a"].frequency == 1


def test_unknown_columns_are_reported(write: Writer) -> None:
    batch = write([("a", d("2017-06-01"), 10, "o1")])
    with pytest.raises(UnknownColumnError) as error:
        compute([batch], spec(), {"colour": ["red"]})
    assert error.value.column == "colour"
    with pytest.raises(UnknownColumnError):
        compute([batch], spec(sales_column="revenue"))
    with pytest.raises(UnknownColumnError):
        removal_matches([batch], "cust", [RemovalRule("r", "colour", ("red",))])
    with pytest.raises(UnknownColumnError):
        distinct_values([batch], "colour")


def test_concurrent_computations_do_not_interfere(write: Writer) -> None:
    batch = _regions(write)
    expected = compute([batch], spec(), {"region": ["N"]})
    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(lambda _: compute([batch], spec(), {"region": ["N"]}), range(16)))
    assert all(r == expected for r in results)


# --------------------------------------------------------------------------- distinct values


def test_distinct_values_most_rows_first_then_value(write: Writer) -> None:
    batch = write(
        [
            ("a", d("2017-06-01"), 1, "o1", "North"),
            ("b", d("2017-06-01"), 1, "o2", "South"),
            ("c", d("2017-06-01"), 1, "o3", "South"),
            ("d", d("2017-06-01"), 1, "o4", "north%"),
            ("e", d("2017-06-01"), 1, "o5", "East"),
            ("f", d("2017-06-01"), 1, "o6", None),
        ]
    )
    assert distinct_values([batch], "region") == [
        ("South", 2),
        ("East", 1),
        ("North", 1),
        ("north%", 1),
    ]
    assert distinct_values([batch], "region", search="NORTH") == [("North", 1), ("north%", 1)]
    assert distinct_values([batch], "region", search="h%") == [("north%", 1)]
    assert distinct_values([batch], "region", search="_") == []
    assert distinct_values([batch], "region", limit=2) == [("South", 2), ("East", 1)]
    assert distinct_values([batch], "day") == [("2017-06-01", 6)]
    assert distinct_values([batch], "sales") == [("1.0", 6)]
    assert distinct_values([], "region") == []


# --------------------------------------------------------------------------- property


@st.composite
def _lines(draw: st.DrawFn) -> list[tuple[Any, ...]]:
    n = draw(st.integers(min_value=0, max_value=40))
    return [
        (
            draw(st.sampled_from(["a", "b", "c", "d", "e", "f", "g", "h"])),
            REF - timedelta(days=draw(st.integers(min_value=0, max_value=500))),
            draw(st.integers(min_value=-50, max_value=500)) / 4,
            draw(st.sampled_from(["o1", "o2", "o3", "o4", None])),
            draw(st.sampled_from(["N", "S"])),
        )
        for _ in range(n)
    ]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=_lines(), explicit=st.booleans())
def test_five_groups_only_relabel_ten(write: Writer, rows: list[tuple[Any, ...]], explicit: bool) -> None:
    batch = write(rows)  # a new file per example
    base = spec(thresholds=EXPLICIT if explicit else {})
    ten = compute([batch], base)
    five = compute([batch], spec(thresholds=base.thresholds, grouping=5))

    assert five.thresholds == ten.thresholds
    assert (five.active_customers, five.total_sales) == (ten.active_customers, ten.total_sales)
    assert [c.code for c in five.customers] == [c.code for c in ten.customers]
    for c5, c10 in zip(five.customers, ten.customers, strict=True):
        assert c5.segment == TEN_TO_FIVE[c10.segment]
        assert (c5.r, c5.f, c5.m, c5.monetary) == (c10.r, c10.f, c10.m, c10.monetary)
    merged_counts: dict[str, int] = {}
    merged_sales: dict[str, Decimal] = {}
    for s in ten.segments:
        key = TEN_TO_FIVE[s.key]
        merged_counts[key] = merged_counts.get(key, 0) + s.customers
        merged_sales[key] = merged_sales.get(key, Decimal(0)) + Decimal(repr(s.sales))
    assert {s.key: s.customers for s in five.segments} == merged_counts
    for s in five.segments:
        # Sales are quarters here, so cents are exact and merging loses nothing.
        assert Decimal(repr(s.sales)) == merged_sales[s.key]
    assert sum(s.customers for s in five.segments) == five.active_customers


def test_customers_beyond_nine_trillion_are_still_summed_exactly(write: Writer) -> None:
    # Millionths of 12 x 999,999,999,999.5 overflow a BIGINT: the exact path takes over.
    day = date(2024, 6, 1)
    rows = [("A", day, 999_999_999_999.5, f"o{i}") for i in range(12)] + [("B", day, 10.25, "b1")]
    batch = write(rows)

    result = compute([batch], SegmentationSpec("cust", "day", "sales", purchase_column="purchase"))

    big = next(c for c in result.customers if c.code == "A")
    assert big.monetary == 11_999_999_999_994.0
    assert result.total_sales == 11_999_999_999_994.0 + 10.25
    assert result.thresholds is not None
