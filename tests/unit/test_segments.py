"""Scores (rules §4) and the segment tables (rules §6), pure functions."""

from __future__ import annotations

import math
from decimal import Decimal

import pytest

from service.segmentation.segments import (
    SEGMENTS_5,
    SEGMENTS_10,
    TEN_TO_FIVE,
    frequency_score,
    monetary_score,
    recency_score,
    relabel,
    segment_10,
    segment_table,
)

# Rules §6, transcribed as (key, R values, X values).
TABLE = [
    ("champion", {5}, {4, 5}),
    ("loyalist", {3, 4}, {4, 5}),
    ("potential_loyalist", {4, 5}, {2, 3}),
    ("new_customer", {5}, {1}),
    ("promising", {4}, {1}),
    ("needs_attention", {3}, {3}),
    ("about_to_sleep", {3}, {1, 2}),
    ("at_risk", {1, 2}, {3, 4}),
    ("cant_lose", {1, 2}, {5}),
    ("hibernating", {1, 2}, {1, 2}),
]


@pytest.mark.parametrize("r", range(1, 6))
@pytest.mark.parametrize("f", range(1, 6))
@pytest.mark.parametrize("m", range(1, 6))
def test_every_score_triple_lands_in_exactly_the_table_segment(r: int, f: int, m: int) -> None:
    x = math.ceil((f + m) / 2)
    matches = [key for key, rs, xs in TABLE if r in rs and x in xs]
    assert len(matches) == 1
    assert segment_10(r, f, m) == matches[0]


def test_frequency_equal_to_a_cut_falls_in_the_lower_band() -> None:
    cuts = (1, 2, 3, 4)
    assert [frequency_score(v, cuts) for v in (1, 2, 3, 4, 5, 99)] == [1, 2, 3, 4, 5, 5]


def test_recency_at_or_below_c1_scores_5() -> None:
    cuts = (10, 20, 30, 40)
    assert [recency_score(v, cuts) for v in (0, 10, 11, 20, 21, 40, 41)] == [5, 5, 4, 4, 3, 2, 1]


def test_monetary_compares_exactly_with_the_cut_as_written() -> None:
    cuts = (0.3, 200.0, 300.0, 53000.0)
    assert monetary_score(Decimal("0.3"), cuts) == 1  # 0.3 the float is just below 0.3
    assert monetary_score(Decimal("0.300001"), cuts) == 2
    assert monetary_score(Decimal("53000"), cuts) == 4
    assert monetary_score(Decimal("53000.01"), cuts) == 5


def test_five_groups_merge_the_ten_in_table_order() -> None:
    assert [key for key, _ in segment_table(10)] == [key for key, *_ in TABLE]
    assert [key for key, _ in segment_table(5)] == [
        "champion",
        "loyalist",
        "new_and_promising",
        "at_risk",
        "lost",
    ]
    assert sorted(TEN_TO_FIVE) == sorted(key for key, _ in SEGMENTS_10)
    assert [name for _, name, _ in SEGMENTS_5] == [
        "Champion",
        "Loyalist",
        "New & promising",
        "At risk",
        "Lost",
    ]
    assert relabel("cant_lose", 5) == "at_risk"
    assert relabel("cant_lose", 10) == "cant_lose"


def test_grouping_must_be_5_or_10() -> None:
    with pytest.raises(ValueError, match="grouping"):
        segment_table(7)
