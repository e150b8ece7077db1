"""Cut points: automatic ones from the data (rules §4) and the choice of a threshold set (§5).

Everything here is exact arithmetic on plain Python values; no DuckDB.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from decimal import Decimal
from fractions import Fraction
from typing import Any

from service.segmentation.model import Metric, ThresholdSetSpec

#: The quantile levels of the four cut points, as exact fractions so that ``h = (n-1) q``
#: never suffers binary rounding (0.6 * 5 is 3.0000000000000004 in floats).
QUANTILE_LEVELS: tuple[Fraction, ...] = tuple(Fraction(k, 5) for k in range(1, 5))

_CENT = Decimal("0.01")


def type7_quantile(sorted_values: Sequence[int | Decimal | Fraction], q: Fraction) -> Fraction:
    """The linear-interpolation quantile (R type 7, numpy's default) of non-empty sorted values.

    Exact: ints, Decimals and Fractions convert to Fractions without loss, and only the two
    order statistics the quantile needs are converted.
    """
    if not sorted_values:
        raise ValueError("quantile of no values")
    h = (len(sorted_values) - 1) * q
    lo = math.floor(h)
    below = Fraction(sorted_values[lo])
    if lo + 1 >= len(sorted_values):
        return below
    return below + (h - lo) * (Fraction(sorted_values[lo + 1]) - below)


def round_significant(value: Fraction, digits: int = 2) -> Decimal:
    """Round ``value`` to ``digits`` significant figures, halves away from zero, exactly.

    53417.2 -> 53000, 87.5 -> 88, -87.5 -> -88, 0.125 -> 0.13.
    """
    if value == 0:
        return Decimal(0)
    sign = -1 if value < 0 else 1
    magnitude = abs(value)
    # Find e with 10**e <= magnitude < 10**(e+1) from the float guess, then correct it exactly:
    # the float logarithm can be off by one right at a power of ten.
    exponent = math.floor(math.log10(magnitude))
    while Fraction(10) ** exponent > magnitude:
        exponent -= 1
    while Fraction(10) ** (exponent + 1) <= magnitude:
        exponent += 1
    unit_exponent = exponent - digits + 1
    scaled = magnitude / Fraction(10) ** unit_exponent
    rounded = math.floor(scaled + Fraction(1, 2))
    return Decimal(sign * rounded).scaleb(unit_exponent)


def _bump(cuts: list[Decimal], unit: Decimal) -> list[Decimal]:
    # Rules §4: cut points must be strictly increasing, so a cut that does not exceed the one
    # before becomes that one plus the metric's unit; done left to right so bumps cascade.
    for i in range(1, len(cuts)):
        if cuts[i] <= cuts[i - 1]:
            cuts[i] = cuts[i - 1] + unit
    return cuts


def automatic_cuts(
    metric: Metric, values: Sequence[int | Decimal | Fraction]
) -> tuple[float, float, float, float]:
    """The automatic cut points of one metric over the active customers' values (rules §4).

    Frequency and recency: floor of each quantile, as ints. Monetary: each quantile rounded to
    two significant figures (halves away from zero), as floats. Then bumped to strictly increase.
    """
    # Sorting the native values is an order of magnitude faster than sorting Fractions.
    return automatic_cuts_sorted(metric, sorted(values))


def automatic_cuts_sorted(metric: Metric, ordered: Any, scale: int = 1) -> tuple[float, float, float, float]:
    """:func:`automatic_cuts` of values already sorted (a list, or a numpy array of ints),
    each standing for ``value / scale`` (monetary arrives in whole millionths)."""
    quantiles = [Fraction(type7_quantile(_Exact(ordered), q)) / scale for q in QUANTILE_LEVELS]
    if metric == "monetary":
        money = _bump([round_significant(q) for q in quantiles], _CENT)
        c1, c2, c3, c4 = (float(c) for c in money)
        return (c1, c2, c3, c4)
    counts = _bump([Decimal(math.floor(q)) for q in quantiles], Decimal(1))
    i1, i2, i3, i4 = (int(c) for c in counts)
    return (i1, i2, i3, i4)


class _Exact(Sequence[Fraction]):
    """A view of numeric values as exact numbers (numpy ints become Python ints)."""

    def __init__(self, values: Sequence[Any]) -> None:
        self.values = values

    def __len__(self) -> int:
        return len(self.values)

    def __getitem__(self, index: Any) -> Any:
        value = self.values[index]
        return int(value) if hasattr(value, "dtype") and value.dtype.kind in "iu" else value


def matching_threshold_set(
    sets: Sequence[ThresholdSetSpec], filters: Mapping[str, Sequence[str]]
) -> ThresholdSetSpec | None:
    """The threshold set that applies to a view with these filters, or None (rules §5).

    A set applies when every criteria column is filtered with a subset of the criteria values;
    filters on other columns do not matter. Ties: most criteria columns, then fewest criteria
    values in total, then the earliest ``order`` (then the set id, only to be deterministic).
    """
    if not filters:
        return None
    applicable = [
        s
        for s in sets
        if s.criteria
        and all(
            column in filters and set(filters[column]) <= set(values) for column, values in s.criteria.items()
        )
    ]
    if not applicable:
        return None
    return min(
        applicable,
        key=lambda s: (
            -len(s.criteria),
            sum(len(set(v)) for v in s.criteria.values()),
            s.order,
            s.set_id,
        ),
    )
