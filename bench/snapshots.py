"""A configuration at version 9,000 of a 10,000-event history, with the application's snapshots
and with snapshotting turned off (so every event up to 9,000 is replayed)."""

from __future__ import annotations

import time
from typing import Any, ClassVar

from bench import appcalls
from bench.common import CONFIG, Context, cprofiled, median_time, ratio_figure
from service.application import SegmentationApplication
from service.generate import generate
from service.settings import Settings
from service.storage import BatchStorage

HISTORY = 10_000
VERSION = 9_000


class WithoutSnapshots(SegmentationApplication):
    """The same application reading the same store, never using a snapshot."""

    snapshotting_intervals: ClassVar[dict[type[Any], int]] = {}


def run(ctx: Context) -> None:
    settings = Settings(data_dir=ctx.workdir / "snapshots", event_store="sqlite")
    env = settings.application_env()
    storage = BatchStorage(settings.data_dir)
    small = ctx.workdir / "snapshots-small.csv"
    generate(300, 30, small, seed=ctx.seed)
    app = SegmentationApplication(storage, env=env)
    plain = WithoutSnapshots(storage, env=env)
    try:
        print(f"snapshots: writing a {HISTORY}-event configuration history", flush=True)
        started = time.perf_counter()
        appcalls.import_csv(app, "history", small)
        appcalls.configure(app, "history", dict(CONFIG))
        appcalls.append_config_events(app, "history", HISTORY - 1)
        print(f"  written in {time.perf_counter() - started:.1f} s", flush=True)
        assert plain.snapshots is None and app.snapshots is not None
        a = app.configuration("history", version=VERSION)
        b = plain.configuration("history", version=VERSION)
        assert a is not None and b is not None and a.version == b.version == VERSION
        assert a.rules == b.rules and a.settings == b.settings
        with_s, with_samples = median_time(lambda: app.configuration("history", version=VERSION), 7, warmup=1)
        without_s, without_samples = median_time(
            lambda: plain.configuration("history", version=VERSION), 3, warmup=1
        )
        with cprofiled(ctx, "snapshots_with"):
            app.configuration("history", version=VERSION)
        with cprofiled(ctx, "snapshots_without"):
            plain.configuration("history", version=VERSION)
    finally:
        app.close()
        plain.close()
    speedup = without_s / with_s
    figure = ratio_figure(
        f"snapshots: configuration at v{VERSION} of {HISTORY}",
        with_s * 1000, without_s * 1000, "ms", "snapshots turned off", 10, at_most=False,
        samples=with_samples, baseline_samples=without_samples,
    )  # fmt: skip
    # ratio_figure divides value by baseline; for a time the speed-up is the inverse.
    figure.ratio, figure.target, figure.met = speedup, "speed-up >= 10", speedup >= 10
    ctx.add(figure)
