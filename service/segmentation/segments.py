"""Scores and segments (rules §4 and §6): from a customer's metrics and cut points to a label."""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from decimal import Decimal

import numpy as np

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


#: Monetary values are scored as whole millionths: the engine sums sales as exact
#: DECIMAL(18, 6), so every monetary value is a whole number of millionths.
MICRO = 1_000_000


# Scores count the cuts strictly below a value (a value equal to a cut falls in the lower band:
# "more than 15 purchases"), which is searchsorted(side="left") on strictly increasing cuts.


def frequency_scores(frequency: np.ndarray, cuts: Sequence[float | Decimal]) -> np.ndarray:
    """F = 1 + number of cuts each frequency exceeds."""
    return 1 + np.searchsorted(np.asarray(cuts, dtype=np.float64), frequency)


def recency_scores(recency_days: np.ndarray, cuts: Sequence[float | Decimal]) -> np.ndarray:
    """R = 5 - number of cuts each recency exceeds (recency <= c1 scores 5)."""
    return 5 - np.searchsorted(np.asarray(cuts, dtype=np.float64), recency_days)


def monetary_scores(micro: np.ndarray, cuts: Sequence[float | Decimal]) -> np.ndarray:
    """M = 1 + number of cuts each monetary value (in whole millionths) exceeds.

    A whole number of millionths exceeds a cut exactly when it exceeds floor(cut * 10^6), the
    cut taken as written (:func:`exact_cut`), so the comparison is exact for any decimal cut.
    """
    floors = [math.floor(exact_cut(c) * MICRO) for c in cuts]
    return 1 + np.searchsorted(np.asarray(floors, dtype=micro.dtype), micro)


def frequency_score(frequency: int, cuts: Sequence[float | Decimal]) -> int:
    """F of one customer."""
    return int(frequency_scores(np.asarray([frequency]), cuts)[0])


def recency_score(recency_days: int, cuts: Sequence[float | Decimal]) -> int:
    """R of one customer."""
    return int(recency_scores(np.asarray([recency_days]), cuts)[0])


def monetary_score(monetary: Decimal, cuts: Sequence[float | Decimal]) -> int:
    """M of one customer; ``monetary`` has at most six decimals, as the engine's sums do."""
    micro = monetary * MICRO
    if micro != micro.to_integral_value():
        raise ValueError(f"{monetary} has more than six decimals")
    return int(monetary_scores(np.asarray([int(micro)], dtype=object), cuts)[0])


@functools.cache
def segment_index(grouping: int) -> np.ndarray:
    """The segment of every score triple, as an index into ``segment_table(grouping)``:
    ``segment_index(grouping)[r, f, m]`` (scores 1-5; index 0 unused)."""
    keys = [key for key, _ in segment_table(grouping)]
    table = np.zeros((6, 6, 6), dtype=np.int64)
    for r in range(1, 6):
        for f in range(1, 6):
            for m in range(1, 6):
                table[r, f, m] = keys.index(relabel(segment_10(r, f, m), grouping))
    table.setflags(write=False)
    return table


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
