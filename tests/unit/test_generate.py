"""The synthetic data generator: deterministic, the requested size and shape."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from service.generate import COLUMNS, FIRST_DAY, LAST_DAY, generate


def _rows(path: Path) -> list[tuple[object, ...]]:
    # CSV reads the amounts back as DOUBLE, Parquet keeps the DECIMAL.
    return duckdb.sql(
        f"""SELECT * REPLACE (CAST("Sales" AS DECIMAL(12, 2)) AS "Sales") FROM '{path}'"""
    ).fetchall()


def _one(sql: str) -> tuple[object, ...]:
    with duckdb.connect() as con:
        row = con.execute(sql).fetchone()
    assert row is not None
    return row


def test_the_same_seed_writes_the_same_rows_and_another_seed_others(tmp_path: Path) -> None:
    generate(2_000, 100, tmp_path / "a.csv", seed=7)
    generate(2_000, 100, tmp_path / "b.csv", seed=7)
    generate(2_000, 100, tmp_path / "c.csv", seed=8)
    assert (tmp_path / "a.csv").read_bytes() == (tmp_path / "b.csv").read_bytes()
    assert (tmp_path / "a.csv").read_bytes() != (tmp_path / "c.csv").read_bytes()


def test_csv_and_parquet_hold_the_same_rows(tmp_path: Path) -> None:
    generate(1_000, 50, tmp_path / "a.csv")
    generate(1_000, 50, tmp_path / "a.parquet")
    assert _rows(tmp_path / "a.csv") == _rows(tmp_path / "a.parquet")


@pytest.mark.parametrize("rows", [1, 7, 5_000])
def test_exactly_the_requested_rows_with_the_documented_columns(tmp_path: Path, rows: int) -> None:
    path = tmp_path / "out.parquet"
    assert generate(rows, 10, path) == rows
    relation = duckdb.sql(f"SELECT * FROM '{path}'")
    assert tuple(relation.columns) == COLUMNS
    assert len(relation.fetchall()) == rows


def test_shape_returns_dates_orders_and_heavy_tail(tmp_path: Path) -> None:
    path = tmp_path / "out.parquet"
    generate(50_000, 1_000, path)
    returns, first, last, orders, customers = _one(
        f"""SELECT avg(("Sales" < 0)::INTEGER), min("Order Date"), max("Order Date"),
                   count(DISTINCT "Order ID"), count(DISTINCT "Customer Code") FROM '{path}'"""
    )
    assert 0.015 < returns < 0.025
    assert first >= FIRST_DAY and last <= LAST_DAY  # type: ignore[operator]
    assert (last - first).days > 3 * 365 - 15  # type: ignore[operator]  # three years of dates
    assert 2.5 < 50_000 / orders < 3.5  # several lines per order
    assert customers > 700
    top, median = _one(
        f"""SELECT max(n), median(n) FROM (
                SELECT count(DISTINCT "Order ID") AS n FROM '{path}' GROUP BY "Customer Code")"""
    )
    assert top > 20 * median  # a few customers buy far more often than the typical one
    # One customer has one name, type, region and sales rep on every line.
    assert _one(
        f"""SELECT max(k) FROM (SELECT count(DISTINCT ("Customer Name", "Customer Type", "Region",
                "Sales Rep")) AS k FROM '{path}' GROUP BY "Customer Code")"""
    ) == (1,)


def test_refuses_other_formats_and_empty_sizes(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"\.csv or \.parquet"):
        generate(10, 10, tmp_path / "out.json")
    with pytest.raises(ValueError, match="at least 1"):
        generate(0, 10, tmp_path / "out.csv")
