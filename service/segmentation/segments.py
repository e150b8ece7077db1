"""Scores and segments (rules §4 and §6): from a customer's metrics and cut points to a label."""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Sequence
from decimal import Decimal

#: The ten segments of rules §6, in table order: (key, name).
SEGMENTS_10: tuple[tuple[str, str], ...] = (
    ("champion", "Champion"),
    ("loyalist", "Loyalist"),
    ("potential_loyalist", "Potential loyalist"),
    ("new_customer", "New customer"),
    ("promising", "Promising"),
    ("needs_attention", "Needs attention"),
    ("about_to_sleep", "About to sleep"),
    ("at_risk", "At risk"),
    ("cant_lose", "Can't lose"),
    ("hibernating", "Hibernating"),
)

#: The five segments of rules §6, in table order: (key, name, the ten-segment keys merged).
SEGMENTS_5: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("champion", "Champion", ("champion",)),
    ("loyalist", "Loyalist", ("loyalist", "potential_loyalist")),
    ("new_and_promising", "New & promising", ("new_customer", "promising")),
    ("at_risk", "At risk", ("needs_attention", "about_to_sleep", "at_risk", "cant_lose")),
    ("lost", "Lost", ("hibernating",)),
)

#: Ten-segment key -> five-segment key; grouping 5 only relabels, it never rescores.
TEN_TO_FIVE: dict[str, str] = {ten: five for five, _, merged in SEGMENTS_5 for ten in merged}


def segment_table(grouping: int) -> tuple[tuple[str, str], ...]:
    """The (key, name) rows of the segment table for ``grouping`` 10 or 5, in table order."""
    if grouping == 10:
        return SEGMENTS_10
    if grouping == 5:
        return tuple((key, name) for key, name, _ in SEGMENTS_5)
    raise ValueError(f"grouping must be 5 or 10, not {grouping!r}")


def relabel(key10: str, grouping: int) -> str:
    """The label of a ten-segment key under ``grouping``."""
    if grouping == 10:
        return key10
    if grouping == 5:
        return TEN_TO_FIVE[key10]
    raise ValueError(f"grouping must be 5 or 10, not {grouping!r}")


def exact_cut(cut: float | Decimal) -> Decimal:
    """A cut point as an exact Decimal of its shortest decimal text.

    A cut of 0.3 then means 0.3, not the binary float just below it, so a monetary value of
    exactly 0.30 falls in the lower band as the rule says.
    """
    return cut if isinstance(cut, Decimal) else Decimal(repr(cut))


def _above(value: int | Decimal, cuts: Sequence[float | Decimal]) -> int:
    # A value equal to a cut falls in the lower band ("more than 15 purchases"), hence the count
    # of cuts strictly below the value, which bisect_left gives on strictly increasing cuts.
    # Ints compare exactly with floats; Decimals are compared with exact cuts.
    if isinstance(value, Decimal):
        return bisect_left([exact_cut(c) for c in cuts], value)
    return bisect_left(cuts, value)


def frequency_score(frequency: int, cuts: Sequence[float | Decimal]) -> int:
    """F = 1 + number of cuts the frequency exceeds."""
    return 1 + _above(frequency, cuts)


def monetary_score(monetary: Decimal, cuts: Sequence[float | Decimal]) -> int:
    """M = 1 + number of cuts the exact monetary value exceeds.

    Pass the cuts through :func:`exact_cut` once when scoring many customers.
    """
    return 1 + _above(monetary, cuts)


def recency_score(recency_days: int, cuts: Sequence[float | Decimal]) -> int:
    """R = 5 - number of cuts the recency exceeds (recency <= c1 scores 5)."""
    return 5 - _above(recency_days, cuts)


def segment_10(r: int, f: int, m: int) -> str:
    """The ten-segment key of scores R, F, M (rules §6, with X = ceil((F + M) / 2))."""
    x = (f + m + 1) // 2
    if r == 5:
        if x >= 4:
            return "champion"
        return "potential_loyalist" if x >= 2 else "new_customer"
    if r == 4:
        if x >= 4:
            return "loyalist"
        return "potential_loyalist" if x >= 2 else "promising"
    if r == 3:
        if x >= 4:
            return "loyalist"
        return "needs_attention" if x == 3 else "about_to_sleep"
    if x == 5:
        return "cant_lose"
    return "at_risk" if x >= 3 else "hibernating"
