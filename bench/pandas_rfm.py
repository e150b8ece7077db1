"""A straightforward pandas implementation of segmentation-rules §2-7, the engine's yardstick.

Written the way an analyst would: read the Parquet file, filter, group by, quantile, map. It
keeps to the rules (removals, filters, period, purchases, automatic cut points with the
2-significant-figure rounding and the bump, scores, ten or five segments, the summary) but not to
the engine's exact decimal arithmetic: sums are floats, which on realistic data gives the same
cut points and segments (the bench asserts so against the engine on a sample).
"""

from __future__ import annotations

import calendar
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import numpy as np
import pandas as pd

from service.segmentation.segments import SEGMENTS_10, TEN_TO_FIVE

_SEGMENT_KEYS = [key for key, _ in SEGMENTS_10]


@dataclass
class Result:
    reference_date: date
    active_customers: int
    total_sales: float
    thresholds: dict[str, tuple[float, ...]]
    segments: dict[str, tuple[int, float]]  # key -> (customers, sales)
    customers: pd.DataFrame  # code, name, frequency, recency, last_purchase, monetary, r, f, m, segment


def _period_start(reference: date, months: int) -> date:
    total = reference.year * 12 + reference.month - 1 - months
    year, month0 = divmod(total, 12)
    day = min(reference.day, calendar.monthrange(year, month0 + 1)[1])
    return date(year, month0 + 1, day) + timedelta(days=1)


def _round_significant(value: float) -> Decimal:
    if value == 0:
        return Decimal(0)
    exact = Decimal(repr(float(value)))
    exponent = exact.adjusted() - 1  # keep two significant figures
    return exact.scaleb(-exponent).quantize(Decimal(1), ROUND_HALF_UP).scaleb(exponent)


def _bump(cuts: list[Any], unit: Any) -> list[Any]:
    for i in range(1, len(cuts)):
        if cuts[i] <= cuts[i - 1]:
            cuts[i] = cuts[i - 1] + unit
    return cuts


def automatic_cuts(metric: str, values: pd.Series) -> tuple[float, ...]:
    quantiles = np.quantile(values.to_numpy(dtype=float), [0.2, 0.4, 0.6, 0.8])
    if metric == "monetary":
        money = _bump([_round_significant(q) for q in quantiles], Decimal("0.01"))
        return tuple(float(c) for c in money)
    return tuple(_bump([math.floor(q) for q in quantiles], 1))


def _metrics(lines: pd.DataFrame, reference: date) -> pd.DataFrame:
    """Frequency, recency, monetary, last purchase and name of each active customer (§3)."""
    has_purchase = lines["purchase"].notna()
    lines = lines.assign(key=lines["purchase"].where(has_purchase, lines["date"].astype(str)))
    purchases = lines.groupby(["code", "key"], sort=False).agg(net=("sales", "sum"), day=("date", "max"))
    purchases = purchases.reset_index()
    positive = purchases[purchases["net"] > 0]
    per = positive.groupby("code").agg(frequency=("net", "size"), last_purchase=("day", "max"))
    per["monetary"] = purchases.groupby("code")["net"].sum()
    per["recency"] = (pd.Timestamp(reference) - per["last_purchase"]).dt.days
    named = lines[lines["name"].notna()].sort_values(["date", "name"])
    per["name"] = named.groupby("code")["name"].last()
    return per.reset_index().sort_values("code", kind="stable").reset_index(drop=True)


def _segments(r: np.ndarray, x: np.ndarray) -> np.ndarray:
    conditions = [
        (r == 5) & (x >= 4),
        (r >= 3) & (r <= 4) & (x >= 4),
        (r >= 4) & (x >= 2) & (x <= 3),
        (r == 5) & (x == 1),
        (r == 4) & (x == 1),
        (r == 3) & (x == 3),
        (r == 3) & (x <= 2),
        (r <= 2) & (x >= 3) & (x <= 4),
        (r <= 2) & (x == 5),
        (r <= 2) & (x <= 2),
    ]
    return np.select(conditions, _SEGMENT_KEYS, default="?")


def segment(
    path: str,
    customer_column: str,
    date_column: str,
    sales_column: str,
    name_column: str | None = None,
    purchase_column: str | None = None,
    grouping: int = 10,
    period_months: int = 12,
    removals: Sequence[tuple[str, Sequence[str]]] = (),
    filters: Mapping[str, Sequence[str]] | None = None,
) -> Result:
    """Segment the customers of one Parquet file (rules §2-7), automatic cut points only."""
    df = pd.read_parquet(path)
    lines = pd.DataFrame(
        {
            "code": df[customer_column].astype(str),
            "date": pd.to_datetime(df[date_column]),
            "sales": df[sales_column].astype(float),
            "purchase": df[purchase_column].astype(str) if purchase_column else None,
            "name": df[name_column].astype(str) if name_column else None,
        }
    )
    usable = df[customer_column].notna() & df[sales_column].notna()
    reference = lines.loc[usable, "date"].max().date()
    start = _period_start(reference, period_months)

    # §2.2: a customer with any row (any date) matching a rule is removed.
    removed = pd.Series(False, index=df.index)
    for column, values in removals:
        removed |= df[column].astype(str).isin(list(values))
    keep = usable & ~lines["code"].isin(lines.loc[removed, "code"].unique())
    in_period = (lines["date"] >= pd.Timestamp(start)) & (lines["date"] <= pd.Timestamp(reference))
    population = lines[keep & in_period]
    everyone = _metrics(population, reference)
    everyone = everyone[everyone["frequency"] >= 1]

    view = everyone
    if filters:
        selected = pd.Series(True, index=df.index)
        for column, values in filters.items():
            selected &= df[column].astype(str).isin(list(values))
        view = _metrics(lines[keep & in_period & selected], reference)
        view = view[view["frequency"] >= 1]

    # §4: automatic cut points over the unfiltered population's active customers.
    cuts = {m: automatic_cuts(m, everyone[m]) for m in ("frequency", "monetary", "recency")}
    view = view.copy()
    view["f"] = 1 + np.searchsorted(np.array(cuts["frequency"]), view["frequency"].to_numpy(), side="left")
    view["m"] = 1 + np.searchsorted(np.array(cuts["monetary"]), view["monetary"].to_numpy(), side="left")
    view["r"] = 5 - np.searchsorted(np.array(cuts["recency"]), view["recency"].to_numpy(), side="left")
    x = (view["f"].to_numpy() + view["m"].to_numpy() + 1) // 2
    labels = _segments(view["r"].to_numpy(), x)
    view["segment"] = labels if grouping == 10 else pd.Series(labels).map(TEN_TO_FIVE).to_numpy()

    grouped = view.groupby("segment")["monetary"].agg(["size", "sum"])
    keys = _SEGMENT_KEYS if grouping == 10 else list(dict.fromkeys(TEN_TO_FIVE.values()))
    segments = {
        k: (int(grouped.loc[k, "size"]), float(grouped.loc[k, "sum"])) if k in grouped.index else (0, 0.0)
        for k in keys
    }
    return Result(reference, len(view), float(view["monetary"].sum()), cuts, segments, view)
