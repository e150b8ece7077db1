"""What every group of figures shares: figures, timing, Redis, the work folder, profiles."""

from __future__ import annotations

import cProfile
import io
import os
import pstats
import shutil
import statistics
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

PROJECT = Path(__file__).resolve().parents[1]
VENV_BIN = Path(os.environ.get("VIRTUAL_ENV", PROJECT / ".venv")) / "bin"

#: The columns the generator writes, as a configuration names them.
CONFIG = {
    "customer_column": "Customer Code",
    "name_column": "Customer Name",
    "date_column": "Order Date",
    "sales_column": "Sales",
    "purchase_column": "Order ID",
}


@dataclass
class Figure:
    """One row of the table: a measured value against its baseline of the same run.

    ``ratio`` is value / baseline, except for ``higher_is_better`` figures where it is expressed
    as the factor by which the value beats the baseline (a speed-up or a throughput share).
    ``met`` is None when the figure has no target.
    """

    name: str
    value: float
    unit: str
    baseline: float | None = None
    baseline_label: str = ""
    ratio: float | None = None
    target: str = "-"
    met: bool | None = None
    notes: dict[str, Any] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


def ratio_figure(
    name: str,
    value: float,
    baseline: float,
    unit: str,
    baseline_label: str,
    limit: float,
    at_most: bool = True,
    **notes: Any,
) -> Figure:
    """A figure whose target is a bound on value / baseline (at most, or at least ``limit``)."""
    ratio = value / baseline if baseline else float("inf")
    met = ratio <= limit if at_most else ratio >= limit
    target = f"ratio <= {limit:g}" if at_most else f"ratio >= {limit:g}"
    return Figure(name, value, unit, baseline, baseline_label, ratio, target, met, notes)


def median_time(fn: Callable[[], Any], repeat: int, warmup: int = 0) -> tuple[float, list[float]]:
    """The median wall time of ``repeat`` calls of ``fn`` (after ``warmup`` untimed calls)."""
    for _ in range(warmup):
        fn()
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - started)
    return statistics.median(samples), samples


def percentile(samples: list[float], q: float) -> float:
    """The ``q`` quantile (0-1) of ``samples``, linear interpolation."""
    ordered = sorted(samples)
    if len(ordered) == 1:
        return ordered[0]
    h = (len(ordered) - 1) * q
    lo = int(h)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (h - lo) * (ordered[hi] - ordered[lo])


class Context:
    """The run: its folder, options, Redis, and the files its groups hand to each other."""

    def __init__(self, workdir: Path, results: Path, rows: int, customers: int, seed: int, profile: bool):
        self.workdir = workdir
        self.results = results
        self.rows = rows
        self.customers = customers
        self.seed = seed
        self.profile = profile
        self.run_id = uuid.uuid4().hex[:8]
        self.redis_url = ""
        self.files: dict[str, Path] = {}
        self.figures: list[Figure] = []
        self._cleanups: list[Callable[[], None]] = []

    @property
    def profiles(self) -> Path:
        path = self.results / "profiles"
        path.mkdir(parents=True, exist_ok=True)
        return path

    def prefix(self, purpose: str) -> str:
        """A Redis key prefix unique to this run and purpose."""
        return f"bench-{self.run_id}-{purpose}"

    def add(self, figure: Figure) -> None:
        self.figures.append(figure)
        shown = f"{figure.value:.4g} {figure.unit}"
        if figure.baseline is not None:
            shown += f" vs {figure.baseline:.4g} ({figure.baseline_label})"
        print(f"  {figure.name}: {shown}", flush=True)

    def on_exit(self, cleanup: Callable[[], None]) -> None:
        self._cleanups.append(cleanup)

    def close(self) -> None:
        for cleanup in reversed(self._cleanups):
            try:
                cleanup()
            except Exception as exc:  # one failed clean-up must not hide the others
                print(f"clean-up failed: {exc}", flush=True)


def resolve_redis(ctx: Context) -> str:
    """REDIS_URL, else a Redis answering on 127.0.0.1:6379, else an embedded Valkey."""
    import redis

    url = os.environ.get("REDIS_URL")
    if url:
        return url
    local = "redis://127.0.0.1:6379/0"
    try:
        client = redis.Redis.from_url(local, socket_connect_timeout=1)
        client.ping()
        client.close()
        return local
    except redis.RedisError:
        pass
    from service.redis_server import EmbeddedRedis

    server = EmbeddedRedis(ctx.workdir / "valkey")
    url = server.start()
    ctx.on_exit(server.stop)
    return url


def drop_prefix(redis_url: str, prefix: str) -> None:
    """Delete every key of one bench prefix (the run's own keys only)."""
    import redis

    from service.projections.segmentation import delete_matching

    client = redis.Redis.from_url(redis_url)
    try:
        delete_matching(client, f"{prefix}:*")
    finally:
        client.close()


@contextmanager
def cprofiled(ctx: Context, name: str, top: int = 35) -> Iterator[None]:
    """Profile the block with cProfile when the run profiles; writes the top functions."""
    if not ctx.profile:
        yield
        return
    profiler = cProfile.Profile()
    profiler.enable()
    try:
        yield
    finally:
        profiler.disable()
        out = io.StringIO()
        stats = pstats.Stats(profiler, stream=out)
        stats.sort_stats("cumulative").print_stats(top)
        stats.sort_stats("tottime").print_stats(top)
        (ctx.profiles / f"{name}.txt").write_text(out.getvalue())
        print(f"  profile: {ctx.profiles / (name + '.txt')}", flush=True)


def py_spy_record(ctx: Context, pid: int, name: str, seconds: int) -> subprocess.Popen[bytes] | None:
    """Sample a running process with py-spy (collapsed stacks) when the run profiles."""
    if not ctx.profile:
        return None
    exe = shutil.which("py-spy") or str(VENV_BIN / "py-spy")
    if not Path(exe).exists():
        print("  (py-spy not installed: no profile)", flush=True)
        return None
    out = ctx.profiles / f"{name}.collapsed"
    return subprocess.Popen(
        [exe, "record", "--pid", str(pid), "--duration", str(seconds), "--rate", "250", "--format", "raw",
         "--threads", "--nonblocking", "--output", str(out)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip


def summarise_collapsed(path: Path, top: int = 25) -> str:
    """The functions most often on the stack (inclusive) and on top of it (self), from py-spy."""
    inclusive: dict[str, int] = {}
    own: dict[str, int] = {}
    total = 0
    for line in path.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack:
            continue
        count = int(count_text)
        total += count
        frames = stack.split(";")
        for frame in set(frames):
            inclusive[frame] = inclusive.get(frame, 0) + count
        own[frames[-1]] = own.get(frames[-1], 0) + count
    lines = [f"{total} samples", "", "inclusive:"]
    for frame, n in sorted(inclusive.items(), key=lambda kv: -kv[1])[:top]:
        lines.append(f"  {100 * n / total:5.1f}%  {frame}")
    lines += ["", "self:"]
    for frame, n in sorted(own.items(), key=lambda kv: -kv[1])[:top]:
        lines.append(f"  {100 * n / total:5.1f}%  {frame}")
    return "\n".join(lines)


def finish_py_spy(ctx: Context, proc: subprocess.Popen[bytes] | None, name: str) -> None:
    if proc is None:
        return
    try:
        proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        proc.terminate()
        proc.wait()
    raw = ctx.profiles / f"{name}.collapsed"
    if raw.exists() and raw.stat().st_size:
        (ctx.profiles / f"{name}.txt").write_text(summarise_collapsed(raw))
        print(f"  profile: {ctx.profiles / (name + '.txt')}", flush=True)
