"""The engine: a default segmentation against one hand-written DuckDB query and against pandas,
and (``--large``) 10M rows against 1M in time and peak memory of a process of its own."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import duckdb

from bench import pandas_rfm
from bench.common import CONFIG, Context, Figure, cprofiled, median_time, ratio_figure
from service.generate import generate
from service.segmentation import SegmentationSpec, compute
from service.storage import BatchStorage

SPEC = SegmentationSpec(**CONFIG)

#: Only the §3 metrics per customer, as one would write them by hand (DOUBLE sums, the
#: period as "the last 12 months"); fetched into Python like the engine's result.
METRICS_SQL = """
    WITH lines AS (
        SELECT "Customer Code" AS code, "Order ID" AS p, "Order Date" AS d, "Sales" AS s
        FROM read_parquet($file)
    ),
    ref AS (SELECT max(d) AS r FROM lines),
    purchases AS (
        SELECT code, p, sum(s) AS net, max(d) AS day
        FROM lines, ref
        WHERE d > r - INTERVAL 12 MONTH AND d <= r
        GROUP BY code, p
    )
    SELECT code,
           count(*) FILTER (WHERE net > 0) AS frequency,
           date_diff('day', max(day) FILTER (WHERE net > 0), (SELECT r FROM ref)) AS recency,
           sum(net) AS monetary
    FROM purchases
    GROUP BY code
    HAVING count(*) FILTER (WHERE net > 0) >= 1
"""


def duckdb_metrics(path: str) -> list[tuple[Any, ...]]:
    with duckdb.connect() as con:
        return con.execute(METRICS_SQL, {"file": path}).fetchall()


def stage_batch(root: Path, source: Path, fmt: str, database: str) -> Path:
    """A batch file exactly as an import writes it."""
    storage = BatchStorage(root)
    staged = storage.stage(database, source, fmt, None, None)
    storage.publish(staged)
    return storage.path(staged.relative_path)


def check_pandas_matches_engine(ctx: Context) -> dict[str, Any]:
    """The pandas implementation gives the engine's numbers on a sample (asserted)."""
    sample = ctx.workdir / "sample.csv"
    generate(30_000, 3_000, sample, seed=ctx.seed)
    batch = str(stage_batch(ctx.workdir / "sample-store", sample, "csv", "sample"))
    checked = 0
    for removals, filters, grouping in (
        ((), None, 10),
        ((("Region", ("Central",)),), None, 5),
        ((("Sales Rep", ("Rep 03", "Rep 17")),), {"Customer Type": ["Retail", "Online"]}, 10),
    ):
        from service.segmentation import RemovalRule

        spec = SegmentationSpec(
            **CONFIG,
            grouping=grouping,
            removals=tuple(RemovalRule(f"r{i}", c, tuple(v)) for i, (c, v) in enumerate(removals)),
        )
        engine = compute([batch], spec, filters)
        ours = pandas_rfm.segment(batch, **CONFIG, grouping=grouping, removals=removals, filters=filters)
        assert engine.thresholds is not None
        assert ours.reference_date == engine.reference_date
        assert ours.active_customers == engine.active_customers, (
            ours.active_customers,
            engine.active_customers,
        )
        for metric, used in engine.thresholds.items():
            assert tuple(ours.thresholds[metric]) == tuple(used.cuts), (metric, ours.thresholds, used.cuts)
        for seg in engine.segments:
            customers, sales = ours.segments[seg.key]
            assert customers == seg.customers, (seg.key, customers, seg.customers)
            assert math.isclose(round(sales, 2), seg.sales, abs_tol=0.011), (seg.key, sales, seg.sales)
        rows = ours.customers
        expected = [
            (c.code, c.name, c.frequency, c.recency_days, c.segment, c.r, c.f, c.m) for c in engine.customers
        ]
        got = list(
            zip(
                rows["code"], rows["name"], rows["frequency"], rows["recency"],
                rows["segment"], rows["r"], rows["f"], rows["m"], strict=True,
            )
        )  # fmt: skip
        assert [tuple(int(v) if not isinstance(v, str) else v for v in row) for row in got] == expected
        assert all(
            math.isclose(round(float(m), 2), c.monetary, abs_tol=0.011)
            for m, c in zip(rows["monetary"], engine.customers, strict=True)
        )
        checked += 1
    return {"sample_rows": 30_000, "cases_checked": checked}


def run(ctx: Context) -> None:
    batch = str(ctx.files["batch"])
    print(f"engine: default segmentation of {batch}", flush=True)
    result = compute([batch], SPEC)
    engine_s, engine_samples = median_time(lambda: compute([batch], SPEC), repeat=5)
    duck_s, duck_samples = median_time(lambda: duckdb_metrics(batch), repeat=5, warmup=1)
    ctx.add(
        ratio_figure(
            "engine: default segmentation vs DuckDB §3 query",
            engine_s,
            duck_s,
            "s",
            "hand-written DuckDB metrics query",
            1.3,
            samples=engine_samples,
            baseline_samples=duck_samples,
            active_customers=result.active_customers,
        )
    )
    matched = check_pandas_matches_engine(ctx)
    pandas_s, pandas_samples = median_time(lambda: pandas_rfm.segment(batch, **CONFIG), repeat=3)
    speedup = pandas_s / engine_s
    ctx.add(
        Figure(
            "engine: default segmentation vs pandas §2-7",
            engine_s,
            "s",
            pandas_s,
            "pandas implementation (bench/pandas_rfm.py)",
            speedup,
            "speed-up >= 3",
            speedup >= 3,
            {"pandas_samples": pandas_samples, "correctness": matched},
        )
    )
    if ctx.profile:
        profile_engine(ctx, batch)


def profile_engine(ctx: Context, batch: str) -> None:
    """cProfile of one computation, and DuckDB's own profile of its metrics query."""
    import service.segmentation.engine as engine_module

    with cprofiled(ctx, "engine_compute"):
        compute([batch], SPEC)
    original = engine_module._connect
    target = ctx.profiles / "engine_duckdb_last_query.txt"

    def profiled_connect() -> duckdb.DuckDBPyConnection:
        con = original()
        con.execute("PRAGMA enable_profiling = 'query_tree'")
        con.execute(f"PRAGMA profiling_output = '{target}'")
        return con

    engine_module._connect = profiled_connect  # type: ignore[assignment]
    try:
        compute([batch], SPEC)
    finally:
        engine_module._connect = original  # type: ignore[assignment]
    with cprofiled(ctx, "pandas_segment"):
        pandas_rfm.segment(batch, **CONFIG)
    print(f"  profile: {target}", flush=True)


# ------------------------------------------------------------------ 1M vs 10M in a child process


def measure_child(batch: Path, repeat: int) -> tuple[float, float]:
    """(median seconds of a computation, peak RSS in GiB) in a fresh Python process."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "bench.engine", str(batch), str(repeat)],
        stdout=subprocess.PIPE,
        cwd=Path(__file__).resolve().parents[1],
    )
    assert proc.stdout is not None
    out = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise RuntimeError(f"the engine child failed ({proc.returncode})")
    seconds = json.loads(out)["seconds"]
    return seconds, usage.ru_maxrss / 1024**2  # ru_maxrss is in KiB on Linux


def run_large(ctx: Context, large: bool) -> None:
    small = ctx.files["batch"]
    small_s, small_rss = measure_child(small, repeat=3)
    if not large:
        ctx.add(Figure(f"engine: peak RSS, {ctx.rows:,}-row computation (own process)", small_rss, "GiB",
                       notes={"seconds": small_s}))  # fmt: skip
        return
    rows = ctx.rows * 10
    source = ctx.workdir / f"large-{rows}.parquet"
    print(f"engine: generating {rows} rows", flush=True)
    started = time.perf_counter()
    generate(rows, ctx.customers * 10, source, seed=ctx.seed)
    generated = time.perf_counter() - started
    started = time.perf_counter()
    large_batch = stage_batch(ctx.workdir / "large-store", source, "parquet", "large")
    staged = time.perf_counter() - started
    large_s, large_rss = measure_child(large_batch, repeat=2)
    ctx.add(
        ratio_figure(
            f"engine: {rows // 1_000_000}M rows vs {ctx.rows // 1_000_000}M, time",
            large_s, small_s, "s", f"{ctx.rows} rows", 11,
            generate_seconds=generated, stage_seconds=staged,
        )
    )  # fmt: skip
    ctx.add(
        Figure(
            f"engine: {rows // 1_000_000}M rows, peak RSS (own process)",
            large_rss, "GiB", small_rss, f"{ctx.rows} rows", large_rss / small_rss,
            "<= 4 GiB", large_rss <= 4,
        )
    )  # fmt: skip


def _child(batch: str, repeat: int) -> None:
    seconds, _ = median_time(lambda: compute([batch], SPEC), repeat=repeat)
    print(json.dumps({"seconds": seconds}))


if __name__ == "__main__":
    _child(sys.argv[1], int(sys.argv[2]))
