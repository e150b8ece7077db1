"""Fixtures for the engine's unit tests: small Parquet batches written with DuckDB."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import duckdb
import pytest

#: The columns of a default test batch; rows give them in this order (missing trailing = NULL).
COLUMNS = "cust VARCHAR, day DATE, sales DOUBLE, purchase VARCHAR, region VARCHAR, kind VARCHAR, name VARCHAR"


def write_parquet(path: Path, rows: Sequence[Sequence[Any]], columns: str = COLUMNS) -> str:
    """Write ``rows`` to a Parquet file at ``path`` with the DuckDB column list ``columns``."""
    width = len(columns.split(","))
    with duckdb.connect() as con:
        con.execute(f"CREATE TABLE t ({columns})")
        padded = [tuple(row) + (None,) * (width - len(row)) for row in rows]
        if padded:
            con.executemany(f"INSERT INTO t VALUES ({', '.join('?' * width)})", padded)
        con.execute(f"COPY t TO '{path}' (FORMAT parquet)")
    return str(path)


@pytest.fixture
def write(tmp_path: Path) -> Callable[..., str]:
    """``write(rows, columns=COLUMNS)``: rows to a new Parquet file in tmp_path, its path back.

    Every call writes a new file, so a hypothesis test may call it once per example.
    """
    counter = itertools.count()

    def _write(rows: Sequence[Sequence[Any]], columns: str = COLUMNS) -> str:
        return write_parquet(tmp_path / f"batch{next(counter)}.parquet", rows, columns)

    return _write
