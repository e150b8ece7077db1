"""``python -m bench [--rows N] [--large] [--profile] [--only GROUP,...]``: run the figures,
print the table and write ``bench-results/latest.json``."""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from bench import engine, http, imports, projector, snapshots
from bench.common import PROJECT, Context, Figure, resolve_redis
from service.generate import generate

GROUPS = ("import", "engine", "memory", "snapshots", "projector", "http")


def _value(number: float | None) -> str:
    if number is None:
        return "-"
    return f"{number:,.0f}" if abs(number) >= 1000 else f"{number:.4g}"


def table(figures: list[Figure]) -> str:
    header = ("figure", "value", "baseline", "ratio", "target", "met?")
    rows = [
        (
            f.name,
            f"{_value(f.value)} {f.unit}".strip(),
            f"{_value(f.baseline)} {f.unit}".strip() if f.baseline is not None else "-",
            f"{f.ratio:.3g}x" if f.ratio is not None else "-",
            f.target,
            {True: "yes", False: "NO", None: "-"}[f.met],
        )
        for f in figures
    ]
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    line = lambda r: "  ".join(str(c).ljust(w) for c, w in zip(r, widths, strict=True)).rstrip()  # noqa: E731
    return "\n".join([line(header), "  ".join("-" * w for w in widths), *map(line, rows)])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--customers", type=int, help="default: rows / 10")
    parser.add_argument("--large", action="store_true", help="also 10x the rows (time and peak memory)")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--profile", action="store_true", help="write profiles to bench-results/profiles")
    parser.add_argument("--only", help=f"comma-separated groups of {', '.join(GROUPS)}")
    parser.add_argument("--results", type=Path, default=PROJECT / "bench-results")
    parser.add_argument("--keep", action="store_true", help="keep the work folder")
    args = parser.parse_args(argv)
    groups = GROUPS if not args.only else tuple(g for g in GROUPS if g in args.only.split(","))

    args.results.mkdir(parents=True, exist_ok=True)
    workdir = Path(tempfile.mkdtemp(prefix="segmentation-bench-"))
    ctx = Context(
        workdir, args.results, args.rows, args.customers or max(args.rows // 10, 1), args.seed, args.profile
    )
    started = time.perf_counter()
    failures: dict[str, str] = {}
    try:
        ctx.redis_url = resolve_redis(ctx)
        csv = workdir / f"sales-{args.rows}.csv"
        t = time.perf_counter()
        generate(args.rows, ctx.customers, csv, seed=args.seed)
        print(
            f"generated {args.rows} rows, {ctx.customers} customers in {time.perf_counter() - t:.1f} s: {csv}"
        )
        ctx.files["csv"] = csv
        steps: dict[str, Callable[[], None]] = {
            "import": lambda: imports.run(ctx),
            "engine": lambda: engine.run(ctx),
            "memory": lambda: engine.run_large(ctx, args.large),
            "snapshots": lambda: snapshots.run(ctx),
            "projector": lambda: projector.run(ctx),
            "http": lambda: http.run(ctx),
        }
        if "batch" not in ctx.files and "import" not in groups and {"engine", "memory"} & set(groups):
            ctx.files["batch"] = engine.stage_batch(workdir / "store", csv, "csv", "bench")
        for group in groups:
            t = time.perf_counter()
            try:
                steps[group]()
            except Exception as exc:  # report the other groups' figures anyway
                traceback.print_exc()
                failures[group] = f"{type(exc).__name__}: {exc}"
            print(f"[{group}: {time.perf_counter() - t:.1f} s]", flush=True)
    finally:
        ctx.close()
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)

    elapsed = time.perf_counter() - started
    print()
    print(
        f"segmentation bench: {args.rows:,} rows, {ctx.customers:,} customers, "
        f"seed {args.seed}, {elapsed:.0f} s"
    )
    print(table(ctx.figures))
    for group, reason in failures.items():
        print(f"FAILED {group}: {reason}")
    report = {
        "created": datetime.now(UTC).isoformat(),
        "rows": args.rows,
        "customers": ctx.customers,
        "seed": args.seed,
        "large": args.large,
        "seconds": elapsed,
        "machine": {"python": sys.version.split()[0], "platform": platform.platform()},
        "redis": ctx.redis_url,
        "figures": [f.as_json() for f in ctx.figures],
        "failures": failures,
    }
    # A partial run (--only) must not replace the figures of the last full one.
    out = args.results / ("latest.json" if not args.only else "partial.json")
    out.write_text(json.dumps(report, indent=2, default=str))
    print(f"written {out}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
