"""The segmentation engine: Parquet batches + a spec in, a :class:`Segmentation` out.

Pure functions: each call opens its own in-memory DuckDB connection and closes it, so calls
share nothing and may run on any thread. The heavy lifting (per-customer metrics over every
population a computation needs) is one SQL query; cut points, scores and segments are then
computed in Python on exact values (Decimal sums, Fraction quantiles).
"""

from __future__ import annotations

import calendar
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any, Literal, NamedTuple

import duckdb
import numpy as np

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
from service.segmentation.segments import (
    MICRO,
    frequency_scores,
    monetary_scores,
    recency_scores,
    segment_index,
    segment_table,
)
from service.segmentation.thresholds import automatic_cuts_sorted, matching_threshold_set

_CENT = Decimal("0.01")
_SHARE = Decimal("0.000001")

Filters = dict[str, tuple[str, ...]]
Source = Literal["automatic", "explicit", "threshold_set"]


class UnknownColumnError(ValueError):
    """A column named by the spec, a filter or a removal rule is in none of the batches."""

    def __init__(self, column: str) -> None:
        super().__init__(f"unknown column: {column!r}")
        self.column = column


def period_start(reference_date: date, period_months: int) -> date:
    """The first day of the period of ``period_months`` months ending on ``reference_date``.

    The same day of month ``period_months`` months earlier, clamped to that month's last day,
    plus one day (rules §2.4): 2017-12-30 and 12 -> 2016-12-31; 2016-02-29 and 12 -> 2015-03-01.
    """
    if period_months < 1:
        raise ValueError(f"period_months must be at least 1, not {period_months}")
    months = reference_date.year * 12 + reference_date.month - 1 - period_months
    year, month0 = divmod(months, 12)
    if year < 1:  # a period reaching before year 1 starts at the first representable day
        return date.min
    last_day = calendar.monthrange(year, month0 + 1)[1]
    return date(year, month0 + 1, min(reference_date.day, last_day)) + timedelta(days=1)


# --------------------------------------------------------------------------- SQL building


def _ident(column: str) -> str:
    return '"' + column.replace('"', '""') + '"'


def _text(column: str) -> str:
    # Dimensions are compared as text (rules: "its values are compared as text").
    return f"CAST({_ident(column)} AS VARCHAR)"


_SOURCE = "read_parquet($files, union_by_name = true)"


class _Params:
    """Named query parameters, so that no value is ever spliced into SQL text."""

    def __init__(self, files: list[str]) -> None:
        self.values: dict[str, Any] = {"files": files}

    def add(self, value: Any) -> str:
        name = f"p{len(self.values)}"
        self.values[name] = value
        return f"${name}"


def _filter_sql(filters: Filters, params: _Params) -> str:
    # OR within a column (list membership), AND across columns; NULL never matches.
    terms = [
        f"coalesce(list_contains({params.add(list(values))}::VARCHAR[], {_text(column)}), false)"
        for column, values in filters.items()
    ]
    return " AND ".join(terms) if terms else "true"


def _removal_flags(customer_column: str, removals: Sequence[RemovalRule], params: _Params) -> list[str]:
    flags = []
    for rule in removals:
        subject = _text(customer_column) if rule.dimension is None else _text(rule.dimension)
        values = params.add(list(rule.values))
        flags.append(f"coalesce(list_contains({values}::VARCHAR[], {subject}), false)")
    return flags


def _removed_sql(customer_column: str, removals: Sequence[RemovalRule], params: _Params) -> str:
    """SQL of the codes removed by ``removals`` (rules §2.2), over every row at any date."""
    parts = []
    dimension_rules = [r for r in removals if r.dimension is not None]
    if dimension_rules:
        flags = " OR ".join(_removal_flags(customer_column, dimension_rules, params))
        parts.append(
            f"SELECT {_text(customer_column)} AS code FROM {_SOURCE} "
            f"WHERE {_ident(customer_column)} IS NOT NULL AND ({flags})"
        )
    codes = [code for r in removals if r.dimension is None for code in r.values]
    if codes:
        # Codes need no scan: removing a code absent from the data removes nobody anyway.
        parts.append(f"SELECT unnest({params.add(codes)}::VARCHAR[]) AS code")
    if not parts:
        return "SELECT NULL::VARCHAR AS code WHERE false"
    return " UNION ".join(parts)


_DATABASE: duckdb.DuckDBPyConnection | None = None
_DATABASE_LOCK = threading.Lock()


def _connect() -> duckdb.DuckDBPyConnection:
    """A connection of its own for one call. Opening an in-memory database costs ~15 ms, so
    calls share one and each takes a cursor: DuckDB's way to use a database from many threads."""
    global _DATABASE
    with _DATABASE_LOCK:
        if _DATABASE is None:
            _DATABASE = duckdb.connect()
            # The date part of a TIMESTAMPTZ must not depend on the host's zone.
            _DATABASE.execute("SET GLOBAL TimeZone = 'UTC'")
        return _DATABASE.cursor()


def _check_columns(con: duckdb.DuckDBPyConnection, files: list[str], columns: set[str]) -> None:
    rows = con.execute(f"DESCRIBE SELECT * FROM {_SOURCE}", {"files": files}).fetchall()
    # DuckDB resolves identifiers case-insensitively, so the check does too.
    present = {str(row[0]).lower() for row in rows}
    for column in sorted(columns):
        if column.lower() not in present:
            raise UnknownColumnError(column)


def _latest_date(
    con: duckdb.DuckDBPyConnection, files: list[str], spec: SegmentationSpec, restriction: Filters
) -> date | None:
    # The default reference date: latest date of a usable transaction, before removals/filters
    # (of the rows a restricted reader may see: for them those rows are the database).
    params = _Params(files)
    row = con.execute(
        f"SELECT max(CAST({_ident(spec.date_column)} AS DATE)) FROM {_SOURCE} "
        f"WHERE {_ident(spec.customer_column)} IS NOT NULL "
        f"AND {_ident(spec.sales_column)} IS NOT NULL AND {_filter_sql(restriction, params)}",
        params.values,
    ).fetchone()
    return row[0] if row else None


#: Monetary values travel from SQL to Python as whole millionths (BIGINT): exact, and fast to
#: sort, compare and sum in numpy. Sales are read as DECIMAL(18, 6), so no precision is lost.
_MICRO = MICRO


class _Population(NamedTuple):
    """The active customers of one population, as columns sorted by code."""

    code: np.ndarray
    frequency: np.ndarray
    recency: np.ndarray
    last_purchase: np.ndarray
    micro: np.ndarray  # monetary in millionths (int64)
    cents: np.ndarray  # monetary rounded to cents (float64)
    name: np.ndarray

    def __len__(self) -> int:
        return len(self.code)


def _empty_population() -> _Population:
    empty = np.array([], dtype=object)
    ints = np.array([], dtype=np.int64)
    return _Population(empty, ints, ints, np.array([], dtype="datetime64[D]"), ints, np.array([]), empty)


def _metrics(
    con: duckdb.DuckDBPyConnection,
    files: list[str],
    spec: SegmentationSpec,
    start: date,
    end: date,
    populations: list[Filters],
    restriction: Filters | None = None,
    exact_text: bool = False,
) -> list[_Population]:
    """Active customers' metrics for each population (a set of line filters), in one query.

    Every line is tagged with the populations it belongs to, so one scan of the period's lines
    serves the view, the unfiltered defaults and a threshold set's criteria at once.
    """
    params = _Params(files)
    customer = _ident(spec.customer_column)
    day = f"CAST({_ident(spec.date_column)} AS DATE)"
    # Millionths fit a BIGINT up to about 9.2 trillion per customer; beyond that (NULL from
    # TRY_CAST) the query runs again with the exact sums as text, read into Python ints.
    micro = "CAST(sum(net) AS VARCHAR)" if exact_text else "TRY_CAST(sum(net) * 1000000 AS BIGINT)"
    purchase = _text(spec.purchase_column) if spec.purchase_column else "NULL::VARCHAR"
    name = _text(spec.name_column) if spec.name_column else "NULL::VARCHAR"
    flags = ", ".join(f"{_filter_sql(filters, params)} AS in{i}" for i, filters in enumerate(populations))
    tags = " OR ".join(f"(pid = {i} AND in{i})" for i in range(len(populations)))
    pids = ", ".join(f"({i})" for i in range(len(populations)))
    # One purchase per purchase id; lines without one (or no purchase column at all) fall back
    # to "one purchase per customer per date".
    purchase_key = "p, CASE WHEN p IS NULL THEN d END"
    # No removal: no anti-join at all (an anti-join against an empty set still costs a pass).
    removed = ""
    if spec.removals:
        removed = (
            f"AND {_text(spec.customer_column)} NOT IN "
            f"({_removed_sql(spec.customer_column, spec.removals, params)})"
        )
    # A reader's restriction keeps only the rows it may see, after removals were decided on all.
    visible = _filter_sql(restriction or {}, params)
    start_p, end_p = params.add(start), params.add(end)
    if len(populations) == 1:
        # One population (the usual default view): no tagging of lines with populations.
        tagged = "SELECT 0 AS pid, code, d, s, p, nm FROM lines WHERE in0"
    else:
        tagged = f"""
            SELECT pid, code, d, s, p, nm
            FROM lines CROSS JOIN (VALUES {pids}) AS pops(pid)
            WHERE {tags}"""
    sql = f"""
        WITH lines AS (
            SELECT {_text(spec.customer_column)} AS code, {day} AS d,
                   -- DECIMAL so that sums of cents are exact, whatever the column's type.
                   CAST({_ident(spec.sales_column)} AS DECIMAL(18, 6)) AS s,
                   {purchase} AS p, {name} AS nm, {flags}
            FROM {_SOURCE}
            WHERE {customer} IS NOT NULL
              AND {_ident(spec.sales_column)} IS NOT NULL
              AND {day} BETWEEN {start_p}::DATE AND {end_p}::DATE
              {removed}
              AND {visible}
        ),
        tagged AS ({tagged}),
        purchases AS (
            -- A purchase's name is the largest of its lines'; the customer's name is then the
            -- one on its latest purchase (ties: the largest), found over purchases, not lines.
            SELECT pid, code, sum(s) AS net, max(d) AS day, max(nm) AS pn
            FROM tagged
            GROUP BY pid, code, {purchase_key}
        )
        SELECT pid, code,
               count(*) FILTER (WHERE net > 0) AS frequency,
               date_diff('day', max(day) FILTER (WHERE net > 0), {end_p}::DATE) AS recency,
               max(day) FILTER (WHERE net > 0) AS last_purchase,
               {micro} AS micro,
               -- Rounded to cents in SQL: DuckDB rounds DECIMAL halves away from zero, and
               -- the DOUBLE of a cent value equals Python's float of it (a unit test pins it).
               CAST(round(sum(net), 2) AS DOUBLE) AS monetary_cents,
               max({{'d': day, 'n': pn}}) FILTER (WHERE pn IS NOT NULL).n AS name
        FROM purchases
        GROUP BY pid, code
        HAVING count(*) FILTER (WHERE net > 0) >= 1
        ORDER BY pid, code  -- binary collation: the code-point order of Python's sort
    """
    columns = con.execute(sql, params.values).fetchnumpy()
    if exact_text:
        millionths = np.array(
            [int(Decimal(text) * _MICRO) for text in np.asarray(columns["micro"]).tolist()], dtype=object
        )
    elif np.ma.is_masked(columns["micro"]):
        return _metrics(con, files, spec, start, end, populations, restriction, exact_text=True)
    else:
        millionths = np.asarray(columns["micro"], dtype=np.int64)
    whole = _Population(
        code=np.asarray(columns["code"]),
        frequency=np.asarray(columns["frequency"], dtype=np.int64),
        recency=np.asarray(columns["recency"], dtype=np.int64),
        last_purchase=np.asarray(columns["last_purchase"]).astype("datetime64[D]"),
        micro=millionths,
        cents=np.asarray(columns["monetary_cents"], dtype=np.float64),
        name=np.asarray(columns["name"], dtype=object),
    )
    if len(populations) == 1:
        return [whole]
    pid = np.asarray(columns["pid"])
    result = [_Population(*(column[pid == i] for column in whole)) for i in range(len(populations))]
    return result


# --------------------------------------------------------------------------- orchestration


def _normalise_filters(filters: Mapping[str, Sequence[str]] | None) -> Filters:
    # A column with no selected value is treated as not filtered (the API cannot send one).
    out: Filters = {}
    for column, values in (filters or {}).items():
        kept = tuple(dict.fromkeys(str(v) for v in values))
        if kept:
            out[column] = kept
    return out


def _cuts_of(population: _Population, metric: Metric) -> tuple[float, float, float, float]:
    if metric == "frequency":
        return automatic_cuts_sorted(metric, np.sort(population.frequency))
    if metric == "recency":
        return automatic_cuts_sorted(metric, np.sort(population.recency))
    return automatic_cuts_sorted(metric, np.sort(population.micro), scale=_MICRO)


@dataclass(frozen=True)
class _Plan:
    """Where each metric's cut points come from, and the populations to compute metrics on."""

    explicit: dict[Metric, tuple[float, float, float, float]]
    automatic_on: dict[Metric, int]  # metric -> index of the population its cuts come from
    source: dict[Metric, Source]
    populations: list[Filters]


def _plan(spec: SegmentationSpec, view: Filters, tset: ThresholdSetSpec | None) -> _Plan:
    populations: list[Filters] = [view]

    def population(filters: Filters) -> int:
        key = {c: frozenset(v) for c, v in filters.items()}
        for i, existing in enumerate(populations):
            if {c: frozenset(v) for c, v in existing.items()} == key:
                return i
        populations.append(filters)
        return len(populations) - 1

    explicit: dict[Metric, tuple[float, float, float, float]] = {}
    automatic_on: dict[Metric, int] = {}
    source: dict[Metric, Source] = {}
    for metric in METRICS:
        cuts: Cuts
        if tset is not None and metric in tset.thresholds:
            cuts, source[metric] = tset.thresholds[metric], "threshold_set"
            criteria: Filters = {c: tuple(v) for c, v in tset.criteria.items()}
        else:
            cuts = spec.thresholds.get(metric)
            source[metric] = "automatic" if cuts is None else "explicit"
            criteria = {}  # rules §4: defaults come from the unfiltered population
        if cuts is None:
            automatic_on[metric] = population(criteria)
        else:
            c1, c2, c3, c4 = cuts
            explicit[metric] = (c1, c2, c3, c4)
    return _Plan(explicit, automatic_on, source, populations)


def _resolve_reference(
    con: duckdb.DuckDBPyConnection,
    files: list[str],
    spec: SegmentationSpec,
    as_of: date | None,
    restriction: Filters | None = None,
) -> date | None:
    if as_of is not None:
        return as_of
    if spec.reference_date is not None:
        return spec.reference_date
    return _latest_date(con, files, spec, restriction or {}) if files else None


def _spec_columns(spec: SegmentationSpec, view: Filters) -> set[str]:
    columns = {spec.customer_column, spec.date_column, spec.sales_column, *view}
    columns.update(c for c in (spec.name_column, spec.purchase_column) if c)
    columns.update(r.dimension for r in spec.removals if r.dimension is not None)
    return columns


def _cents(value: Decimal) -> float:
    return float(value.quantize(_CENT, ROUND_HALF_UP))


def _share(part: Decimal, whole: Decimal) -> float:
    if whole <= 0:
        return 0.0
    ratio = min(max(part / whole, Decimal(0)), Decimal(1))
    return float(ratio.quantize(_SHARE, ROUND_HALF_UP))


def _empty_segments(grouping: int) -> tuple[SegmentCount, ...]:
    return tuple(SegmentCount(k, n, 0, 0.0, 0.0, 0.0) for k, n in segment_table(grouping))


def compute(
    batches: Sequence[str | Path],
    spec: SegmentationSpec,
    filters: Mapping[str, Sequence[str]] | None = None,
    as_of: date | None = None,
    restriction: Mapping[str, Sequence[str]] | None = None,
) -> Segmentation:
    """Segment the active customers of the batches' data as ``spec`` says (rules §2-§7).

    ``filters`` are a view's filters (``{column: [values]}``: OR within a column, AND across);
    ``as_of`` overrides the spec's reference date. ``restriction`` (a reader's data
    restriction, same shape) makes the rows it keeps the whole database for this computation:
    the reference date, the automatic cut points and every population come from those rows
    only; removals are still decided on all rows. Raises :class:`UnknownColumnError` for a
    column in none of the batches and ``ValueError`` for a grouping other than 5 or 10.
    """
    table = segment_table(spec.grouping)
    view = _normalise_filters(filters)
    limit = _normalise_filters(restriction)
    tset = matching_threshold_set(spec.threshold_sets, view)
    applied = (tset.set_id, tset.name) if tset is not None else None
    files = [str(b) for b in batches]

    with _connect() as con:
        if files:
            _check_columns(con, files, _spec_columns(spec, view) | set(limit))
        reference = _resolve_reference(con, files, spec, as_of, limit)
        start = period_start(reference, spec.period_months) if reference is not None else None
        plan = _plan(spec, view, tset)
        populations = [_empty_population() for _ in plan.populations]
        if files and reference is not None and start is not None:
            populations = _metrics(con, files, spec, start, reference, plan.populations, limit)

    customers = populations[0]
    if not len(customers):
        return Segmentation(
            reference_date=reference,
            period_start=start,
            period_end=reference,
            active_customers=0,
            total_sales=0.0,
            thresholds=None,
            threshold_set=applied,
            filters=view,
            segments=_empty_segments(spec.grouping),
            customers=(),
        )

    thresholds: dict[Metric, MetricThresholds] = {}
    for metric in METRICS:
        if metric in plan.explicit:
            cuts = plan.explicit[metric]
            thresholds[metric] = MetricThresholds(cuts, plan.source[metric], automatic=False)
            continue
        # A reference population can lack active customers while the view has some (a purchase
        # positive on the view's lines but not on all of its lines); the view itself is then the
        # only data to take cut points from.
        basis = populations[plan.automatic_on[metric]]
        cuts = _cuts_of(basis if len(basis) else customers, metric)
        thresholds[metric] = MetricThresholds(cuts, plan.source[metric], automatic=True)

    f = frequency_scores(customers.frequency, thresholds["frequency"].cuts)
    r = recency_scores(customers.recency, thresholds["recency"].cuts)
    m = monetary_scores(customers.micro, thresholds["monetary"].cuts)
    keys = [key for key, _ in table]
    segment = segment_index(spec.grouping)[r, f, m]
    counts = np.bincount(segment, minlength=len(keys))
    # int64 sums of millionths are exact (a float sum would not be).
    micro_by_segment = [int(customers.micro[segment == k].sum()) for k in range(len(keys))]
    total = Decimal(int(customers.micro.sum())) / _MICRO

    rows = tuple(
        map(
            CustomerRow,
            customers.code.tolist(),
            customers.name.tolist(),
            [keys[k] for k in segment.tolist()],
            customers.recency.tolist(),
            customers.last_purchase.tolist(),
            customers.frequency.tolist(),
            customers.cents.tolist(),
            r.tolist(),
            f.tolist(),
            m.tolist(),
        )
    )
    active = len(rows)
    segments = tuple(
        SegmentCount(
            key=key,
            name=name,
            customers=int(counts[k]),
            customers_share=_share(Decimal(int(counts[k])), Decimal(active)),
            sales=_cents(Decimal(micro_by_segment[k]) / _MICRO),
            sales_share=_share(Decimal(micro_by_segment[k]) / _MICRO, total),
        )
        for k, (key, name) in enumerate(table)
    )
    return Segmentation(
        reference_date=reference,
        period_start=start,
        period_end=reference,
        active_customers=active,
        total_sales=_cents(total),
        thresholds=thresholds,
        threshold_set=applied,
        filters=view,
        segments=segments,
        customers=rows,
    )


def suggested_thresholds(
    batches: Sequence[str | Path],
    spec: SegmentationSpec,
    filters: Mapping[str, Sequence[str]] | None = None,
    as_of: date | None = None,
    restriction: Mapping[str, Sequence[str]] | None = None,
) -> dict[Metric, tuple[float, float, float, float]] | None:
    """The automatic cut points of all three metrics, ignoring any explicit thresholds.

    Computed over the active customers of the population after removals, restricted by
    ``filters`` (none: the whole population); None when no customer is active.
    """
    view = _normalise_filters(filters)
    limit = _normalise_filters(restriction)
    files = [str(b) for b in batches]
    if not files:
        return None
    with _connect() as con:
        _check_columns(con, files, _spec_columns(spec, view) | set(limit))
        reference = _resolve_reference(con, files, spec, as_of, limit)
        if reference is None:
            return None
        start = period_start(reference, spec.period_months)
        (customers,) = _metrics(con, files, spec, start, reference, [view], limit)
    if not len(customers):
        return None
    return {metric: _cuts_of(customers, metric) for metric in METRICS}


def removal_matches(
    batches: Sequence[str | Path], customer_column: str, removals: Sequence[RemovalRule]
) -> dict[str, tuple[str, ...]]:
    """Every customer code matched by at least one rule -> the ids of the rules matching it.

    Rule ids keep the order of ``removals``; codes are sorted. A dimension rule matches a
    customer with any row (any date) whose value is one of the rule's; a code rule matches the
    codes it lists that occur in the data (a listed code with no row is not returned).
    """
    files = [str(b) for b in batches]
    if not files or not removals:
        return {}
    params = _Params(files)
    with _connect() as con:
        columns = {customer_column} | {r.dimension for r in removals if r.dimension is not None}
        _check_columns(con, files, columns)
        flags = _removal_flags(customer_column, removals, params)
        named = ", ".join(f"{flag} AS m{i}" for i, flag in enumerate(flags))
        any_flag = " OR ".join(f"m{i}" for i in range(len(flags)))
        per_rule = ", ".join(f"bool_or(m{i})" for i in range(len(flags)))
        rows = con.execute(
            f"""
            SELECT code, {per_rule}
            FROM (
                SELECT {_text(customer_column)} AS code, {named}
                FROM {_SOURCE}
                WHERE {_ident(customer_column)} IS NOT NULL
            )
            WHERE {any_flag}
            GROUP BY code
            ORDER BY code
            """,
            params.values,
        ).fetchall()
    return {
        row[0]: tuple(rule.rule_id for rule, hit in zip(removals, row[1:], strict=True) if hit)
        for row in rows
    }


def visible_customers(
    batches: Sequence[str | Path], customer_column: str, restriction: Mapping[str, Sequence[str]]
) -> set[str]:
    """The codes of the customers with at least one row a restricted reader may see."""
    files = [str(b) for b in batches]
    if not files:
        return set()
    params = _Params(files)
    limit = _normalise_filters(restriction)
    with _connect() as con:
        _check_columns(con, files, {customer_column, *limit})
        rows = con.execute(
            f"SELECT DISTINCT {_text(customer_column)} FROM {_SOURCE} "
            f"WHERE {_ident(customer_column)} IS NOT NULL AND {_filter_sql(limit, params)}",
            params.values,
        ).fetchall()
    return {row[0] for row in rows}


def distinct_values(
    batches: Sequence[str | Path],
    column: str,
    search: str | None = None,
    limit: int = 100,
    restriction: Mapping[str, Sequence[str]] | None = None,
) -> list[tuple[str, int]]:
    """The distinct non-NULL values of ``column`` as text, with their row counts.

    Most rows first, then by value; ``search`` keeps values containing it (case-insensitive,
    literal: ``%`` and ``_`` are not wildcards); at most ``limit`` values.
    """
    if limit < 0:
        raise ValueError(f"limit must not be negative, not {limit}")
    files = [str(b) for b in batches]
    if not files or limit == 0:
        return []
    params = _Params(files)
    visible = _normalise_filters(restriction)
    where = "v IS NOT NULL"
    if search:
        where += f" AND contains(lower(v), lower({params.add(search)}))"
    limit_p = params.add(limit)
    with _connect() as con:
        _check_columns(con, files, {column, *visible})
        rows = con.execute(
            f"""
            SELECT v, count(*) AS n
            FROM (SELECT {_text(column)} AS v FROM {_SOURCE} WHERE {_filter_sql(visible, params)})
            WHERE {where}
            GROUP BY v
            ORDER BY n DESC, v
            LIMIT {limit_p}
            """,
            params.values,
        ).fetchall()
    return [(v, n) for v, n in rows]
