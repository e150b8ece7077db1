"""Synthetic sales data for benchmarks and demos: ``segmentation generate ROWS CUSTOMERS OUT``.

Everything is one DuckDB query written out with ``COPY``, so ten million rows take seconds. Every
random draw is a hash of (row or order or customer number, seed, draw number) rather than a
random-number generator, which makes the output identical for a seed whatever the number of
threads DuckDB uses. The shape:

- customers' activity is heavy-tailed: an order's customer is ``floor(customers * u**2)`` for a
  uniform ``u``, a power law in which the first customers buy hundreds of times more often than
  the last (most still buy at least once);
- each customer buys within an active window of its own inside three years of dates (some
  started late, many stopped early), so recency varies as it does in real data;
- 1-5 lines per order (3 on average), log-normal line amounts, about 2% of lines are returns
  (negative amounts);
- dimensions: Customer Type, Region and Sales Rep per customer, Product Type per line.
"""

from __future__ import annotations

import math
from datetime import date
from pathlib import Path

import duckdb

#: The three years the dates span, both ends included.
FIRST_DAY = date(2022, 1, 1)
LAST_DAY = date(2024, 12, 31)
#: The share of lines that are returns (negative sales).
RETURN_SHARE = 0.02

COLUMNS = (
    "Customer Code",
    "Customer Name",
    "Order ID",
    "Order Date",
    "Sales",
    "Customer Type",
    "Region",
    "Sales Rep",
    "Product Type",
)

_FIRST_NAMES = [
    "Ann", "Bob", "Carla", "Dev", "Elena", "Farid", "Grace", "Hugo", "Ines", "Jon", "Kemal", "Lena",
    "Mia", "Nils", "Olga", "Pavel", "Quinn", "Rosa", "Sami", "Tara", "Umar", "Vera", "Wen", "Yara",
]  # fmt: skip
_LAST_NAMES = [
    "Adams", "Berg", "Costa", "Dubois", "Evans", "Fischer", "Garcia", "Horvat", "Ivanov", "Jensen",
    "Kowalski", "Lopez", "Meyer", "Novak", "Olsen", "Petrov", "Quist", "Rossi", "Silva", "Tanaka",
    "Ueda", "Varga", "Weber", "Young",
]  # fmt: skip
#: (value, cumulative probability): most customers are retail.
_CUSTOMER_TYPES = [
    ("Retail", 0.45),
    ("Online", 0.70),
    ("Wholesale", 0.88),
    ("Corporate", 0.96),
    ("Government", 1),
]
_REGIONS = ["North", "South", "East", "West", "Central"]
_REPS_PER_REGION = 8
_PRODUCT_TYPES = [
    "Hardware", "Software", "Services", "Accessories", "Consumables", "Furniture", "Training", "Support",
]  # fmt: skip


def _uniform(key: str, draw: int) -> str:
    # A uniform in [0, 1) from a 64-bit hash of (key, seed, draw number).
    return f"(hash({key}, $seed, {draw})::DOUBLE / 18446744073709551616.0)"


def _choice(values: list[str], key: str, draw: int) -> str:
    items = ", ".join("'" + v.replace("'", "''") + "'" for v in values)
    return f"[{items}][1 + (hash({key}, $seed, {draw}) % {len(values)})::BIGINT]"


def generation_sql() -> str:
    """The query producing the rows; parameters ``$rows``, ``$customers``, ``$orders``, ``$seed``."""
    span = (LAST_DAY - FIRST_DAY).days + 1
    customer_type = (
        " ".join(f"WHEN {_uniform('c', 3)} < {p} THEN '{v}'" for v, p in _CUSTOMER_TYPES[:-1])
        + f" ELSE '{_CUSTOMER_TYPES[-1][0]}'"
    )
    # Box-Muller: a standard normal from two uniforms (the first kept away from 0 for the log).
    normal = f"sqrt(-2 * ln(greatest({_uniform('r', 20)}, 1e-12))) * cos(2 * pi() * {_uniform('r', 21)})"
    return f"""
        WITH customers AS (
            SELECT c,
                   'C' || lpad(CAST(c + 1 AS VARCHAR), 7, '0') AS code,
                   {_choice(_FIRST_NAMES, "c", 1)} || ' ' || {_choice(_LAST_NAMES, "c", 2)} AS name,
                   CASE {customer_type} END AS customer_type,
                   (hash(c, $seed, 4) % {len(_REGIONS)})::BIGINT AS region_index,
                   (hash(c, $seed, 5) % {_REPS_PER_REGION})::BIGINT AS rep_index,
                   -- An active window: first order day, then a length drawn toward the span's end.
                   floor({_uniform("c", 6)} * {span} * 0.9)::BIGINT AS first_day
            FROM range($customers) AS t(c)
        ),
        windows AS (
            SELECT *, first_day + floor(({span} - first_day) * sqrt({_uniform("c", 7)}))::BIGINT AS last_day
            FROM customers
        ),
        orders AS (
            SELECT o,
                   least(floor($customers * pow({_uniform("o", 10)}, 2))::BIGINT, $customers - 1) AS c,
                   1 + (hash(o, $seed, 11) % 5)::BIGINT AS lines,
                   {_uniform("o", 12)} AS day_draw
            FROM range($orders) AS t(o)
        ),
        numbered AS (
            SELECT *, sum(lines) OVER (ORDER BY o) - lines AS first_row FROM orders
        ),
        rows AS (
            SELECT n.o, n.c, n.day_draw, n.first_row + line AS r
            FROM (SELECT * FROM numbered WHERE first_row < $rows) AS n,
                 unnest(range(n.lines)) AS l(line)
            WHERE n.first_row + line < $rows
        )
        SELECT w.code AS "Customer Code",
               w.name AS "Customer Name",
               'SO' || lpad(CAST(rows.o + 1 AS VARCHAR), 9, '0') AS "Order ID",
               DATE '{FIRST_DAY.isoformat()}'
                 + CAST(w.first_day + floor(rows.day_draw * (w.last_day - w.first_day + 1)) AS INTEGER)
                 AS "Order Date",
               CAST(
                   CASE WHEN {_uniform("r", 22)} < {RETURN_SHARE} THEN -1 ELSE 1 END
                   * least(exp(3.8 + 1.1 * {normal}), 50000) AS DECIMAL(12, 2)
               ) AS "Sales",
               w.customer_type AS "Customer Type",
               {_choice_by_index(_REGIONS, "w.region_index")} AS "Region",
               'Rep ' || lpad(CAST(w.region_index * {_REPS_PER_REGION} + w.rep_index + 1 AS VARCHAR), 2, '0')
                 AS "Sales Rep",
               {_choice(_PRODUCT_TYPES, "r", 23)} AS "Product Type"
        FROM rows JOIN windows AS w USING (c)
        ORDER BY r
    """


def _choice_by_index(values: list[str], index: str) -> str:
    items = ", ".join(f"'{v}'" for v in values)
    return f"[{items}][1 + {index}]"


def generate(rows: int, customers: int, out: str | Path, seed: int = 42) -> int:
    """Write ``rows`` sales lines of ``customers`` customers to ``out`` (.csv or .parquet).

    Deterministic for a given seed. Returns the number of rows written.
    """
    if rows < 1 or customers < 1:
        raise ValueError("rows and customers must be at least 1")
    path = Path(out)
    suffix = path.suffix.lower()
    if suffix == ".csv":
        options = "FORMAT csv, HEADER true"
    elif suffix == ".parquet":
        options = "FORMAT parquet, COMPRESSION zstd"
    else:
        raise ValueError(f"OUT must end in .csv or .parquet, not {path.name!r}")
    path.parent.mkdir(parents=True, exist_ok=True)
    # 3 lines per order on average: 0.4 orders per row leaves a wide margin for short draws.
    orders = math.ceil(rows * 0.4) + 64
    target = str(path).replace("'", "''")
    with duckdb.connect() as con:
        con.execute("SET enable_progress_bar = false")
        con.execute(
            f"COPY ({generation_sql()}) TO '{target}' ({options})",
            {"rows": rows, "customers": customers, "orders": orders, "seed": seed},
        )
    return rows
