"""CSV import to a batch file (validated, as the import endpoint stores it) against DuckDB's own
CSV-to-Parquet copy of the same file."""

from __future__ import annotations

from pathlib import Path

import duckdb

from bench.common import Context, cprofiled, median_time, ratio_figure
from service.storage import BatchStorage


def duckdb_copy(source: Path, target: Path) -> None:
    with duckdb.connect() as con:
        con.execute(f"COPY (SELECT * FROM read_csv('{source}')) TO '{target}' (FORMAT parquet)")


def run(ctx: Context) -> None:
    source = ctx.files["csv"]
    storage = BatchStorage(ctx.workdir / "import-store")
    print(f"import: {source}", flush=True)
    batches: list[Path] = []

    def stage_and_publish() -> None:
        staged = storage.stage("bench", source, "csv", None, None)
        storage.publish(staged)
        batches.append(storage.path(staged.relative_path))

    stage_s, stage_samples = median_time(stage_and_publish, repeat=3)
    copy_s, copy_samples = median_time(lambda: duckdb_copy(source, ctx.workdir / "copy.parquet"), repeat=3)
    ctx.files["batch"] = batches[-1]
    ctx.add(
        ratio_figure(
            "import: CSV to batch (stage + publish)",
            stage_s, copy_s, "s", "DuckDB COPY read_csv TO parquet", 1.5,
            samples=stage_samples, baseline_samples=copy_samples, rows=ctx.rows,
            csv_bytes=source.stat().st_size,
        )
    )  # fmt: skip
    if ctx.profile:
        with cprofiled(ctx, "import_stage"):
            stage_and_publish()
