"""Automatic cut points (rules §4) and threshold-set matching (rules §5), pure functions."""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction

import pytest

from service.segmentation.model import ThresholdSetSpec
from service.segmentation.thresholds import (
    automatic_cuts,
    matching_threshold_set,
    round_significant,
    type7_quantile,
)


@pytest.mark.parametrize(
    ("q", "expected"),
    [
        (Fraction(1, 5), Fraction(28, 10)),
        (Fraction(2, 5), Fraction(46, 10)),
        (Fraction(3, 5), Fraction(64, 10)),
        (Fraction(4, 5), Fraction(82, 10)),
    ],
)
def test_type7_interpolates_linearly(q: Fraction, expected: Fraction) -> None:
    # numpy.quantile(range(1, 11), [.2, .4, .6, .8]) == [2.8, 4.6, 6.4, 8.2]
    assert type7_quantile(list(range(1, 11)), q) == expected


def test_type7_is_exact_where_floats_are_not() -> None:
    # n = 6, q = 0.6: h = 3 exactly (5 * 0.6 is 3.0000000000000004 in floats).
    assert type7_quantile([0, 0, 0, 10, 20, 30], Fraction(3, 5)) == 10
    assert type7_quantile([7], Fraction(4, 5)) == 7


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (Fraction("53417.2"), Decimal("53000")),
        (Fraction("87.5"), Decimal("88")),
        (Fraction("-87.5"), Decimal("-88")),
        (Fraction("1250"), Decimal("1300")),
        (Fraction("1249.999999"), Decimal("1200")),
        (Fraction("99.5"), Decimal("100")),
        (Fraction("0.125"), Decimal("0.13")),
        (Fraction("130"), Decimal("130")),
        (Fraction("7"), Decimal("7")),
        (Fraction(0), Decimal(0)),
        (Fraction("1000"), Decimal("1000")),
    ],
)
def test_two_significant_figures_half_away_from_zero(value: Fraction, expected: Decimal) -> None:
    assert round_significant(value) == expected


def test_frequency_and_recency_cuts_are_floored_ints() -> None:
    cuts = automatic_cuts("frequency", list(range(1, 11)))
    assert cuts == (2, 4, 6, 8)
    assert all(type(c) is int for c in cuts)
    assert automatic_cuts("recency", [0, 10, 20, 30, 40, 50]) == (10, 20, 30, 40)


def test_monetary_cuts_are_rounded_floats() -> None:
    # n = 6: h = 5q = 1, 2, 3, 4, so the cuts are the 2nd to 5th smallest values, rounded.
    values = [Decimal(v) for v in ("1", "87.5", "424.9", "53417.2", "99999", "1e6")]
    cuts = automatic_cuts("monetary", values)
    assert cuts == (88.0, 420.0, 53000.0, 100000.0)
    assert all(type(c) is float for c in cuts)


def test_all_customers_with_frequency_one_bump_to_1_2_3_4() -> None:
    assert automatic_cuts("frequency", [1] * 7) == (1, 2, 3, 4)


def test_recency_bumps_by_one_day() -> None:
    assert automatic_cuts("recency", [0, 0, 0, 0, 0, 9]) == (0, 1, 2, 3)


def test_monetary_bumps_by_one_cent_after_rounding() -> None:
    # Quantiles 101, 102, 103, 104 all round to 100: the later ones are bumped by a cent each.
    assert automatic_cuts("monetary", [Decimal(v) for v in (100, 101, 102, 103, 104, 999)]) == (
        100.0,
        100.01,
        100.02,
        100.03,
    )


def test_bumps_cascade_only_where_needed() -> None:
    # Quantiles floor to 1, 1, 5, 5 -> 1, 2, 5, 6.
    assert automatic_cuts("frequency", [1, 1, 1, 5, 5, 9]) == (1, 2, 5, 6)


def _set(set_id: str, criteria: dict[str, tuple[str, ...]], order: int = 0) -> ThresholdSetSpec:
    return ThresholdSetSpec(set_id, set_id.upper(), criteria, {}, order)


def test_set_applies_when_filter_values_are_a_subset_of_criteria() -> None:
    west = _set("west", {"region": ("West", "East")})
    assert matching_threshold_set([west], {"region": ("West",)}) == west
    assert matching_threshold_set([west], {"region": ("West", "East")}) == west
    assert matching_threshold_set([west], {"region": ("West", "South")}) is None


def test_filters_on_other_columns_do_not_prevent_a_match() -> None:
    west = _set("west", {"region": ("West",)})
    assert matching_threshold_set([west], {"region": ("West",), "kind": ("A",)}) == west


def test_every_criteria_column_must_be_filtered() -> None:
    both = _set("both", {"region": ("West",), "kind": ("A",)})
    assert matching_threshold_set([both], {"region": ("West",)}) is None


def test_no_filter_no_set() -> None:
    assert matching_threshold_set([_set("west", {"region": ("West",)})], {}) is None


def test_most_criteria_columns_win_then_fewer_values_then_earliest() -> None:
    filters = {"region": ("West",), "kind": ("A",)}
    one_column = _set("one", {"region": ("West",)}, order=0)
    two_columns = _set("two", {"region": ("West", "East"), "kind": ("A", "B")}, order=5)
    assert matching_threshold_set([one_column, two_columns], filters) == two_columns

    narrow = _set("narrow", {"region": ("West",), "kind": ("A", "B")}, order=9)
    assert matching_threshold_set([two_columns, narrow], filters) == narrow

    early = _set("early", {"region": ("West",), "kind": ("A", "C")}, order=1)
    late = _set("late", {"region": ("West",), "kind": ("A", "B")}, order=2)
    assert matching_threshold_set([late, early], filters) == early
