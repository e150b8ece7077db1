"""Projector catch-up: 10k configuration events over 100 databases, interleaved so that every
batch of the notification log touches many databases; with recomputation, and without."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator, Sequence
from typing import Any

import redis

from bench import appcalls
from bench.common import CONFIG, Context, Figure, cprofiled, drop_prefix
from service.app import build_application
from service.application import SegmentationApplication
from service.generate import generate
from service.projections import segmentation as projection_module
from service.projections.keys import Keys
from service.projections.segmentation import SegmentationProjector
from service.segmentation import compute as real_compute
from service.settings import Settings

DATABASES = 100
EVENTS_PER_DATABASE = 100  # ConfigureDatabase, then 99 removals and restorations
ROUND = 10  # events per database per save: each 1,000-event batch spans all 100 databases


class CountingProjector(SegmentationProjector):
    """Counts the databases each batch touches, to express recomputations per database per batch."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.touched_per_batch: list[int] = []

    def _touched(self, notifications: Sequence[Any]) -> Any:
        touched, audit = super()._touched(notifications)
        self.touched_per_batch.append(len(touched))
        return touched, audit


@contextlib.contextmanager
def recomputation_disabled() -> Iterator[None]:
    """The projector's ``_documents`` without the engine: compute() on no batch files returns
    the empty segmentation at once, and no removal is matched."""
    saved = {name: getattr(projection_module, name) for name in ("compute", "removal_matches")}
    projection_module.compute = lambda files, spec, *a, **k: real_compute([], spec)  # type: ignore[assignment]
    projection_module.removal_matches = lambda *a, **k: {}  # type: ignore[assignment]
    try:
        yield
    finally:
        for name, value in saved.items():
            setattr(projection_module, name, value)


def build_history(app: SegmentationApplication, ctx: Context) -> int:
    small = ctx.workdir / "projector-small.csv"
    generate(300, 30, small, seed=ctx.seed)
    names = [f"p{i:03d}" for i in range(DATABASES)]
    for name in names:
        appcalls.import_csv(app, name, small)
        appcalls.configure(app, name, dict(CONFIG))
    for _ in range((EVENTS_PER_DATABASE - 1 + ROUND - 1) // ROUND):
        for name in names:
            configuration = app.configuration(name)
            assert configuration is not None
            remaining = EVENTS_PER_DATABASE - configuration.version
            if remaining > 0:
                appcalls.append_config_events(app, name, min(ROUND, remaining), per_save=ROUND)
    return app.head_position()


def catch_up(ctx: Context, app: SegmentationApplication, purpose: str) -> tuple[float, CountingProjector]:
    prefix = ctx.prefix(purpose)
    client = redis.Redis.from_url(ctx.redis_url)
    projector = CountingProjector(app, client, Keys(prefix))
    try:
        started = time.perf_counter()
        projector.catch_up()
        elapsed = time.perf_counter() - started
    finally:
        client.close()
        drop_prefix(ctx.redis_url, prefix)
    return elapsed, projector


def run(ctx: Context) -> None:
    settings = Settings(data_dir=ctx.workdir / "projector", event_store="sqlite")
    app = build_application(settings)
    try:
        print(f"projector: writing {DATABASES * EVENTS_PER_DATABASE} configuration events", flush=True)
        started = time.perf_counter()
        head = build_history(app, ctx)
        print(f"  {head} events in {time.perf_counter() - started:.1f} s", flush=True)
        with cprofiled(ctx, "projector_catch_up"):
            with_s, projector = catch_up(ctx, app, "projector")
        with recomputation_disabled():
            without_s, bare = catch_up(ctx, app, "projector-bare")
    finally:
        app.close()
    stats = projector.stats
    database_batches = sum(projector.touched_per_batch)
    per = stats.recomputations / database_batches
    ctx.add(
        Figure(
            "projector: recomputations per database per batch",
            per, "", target="<= 2", met=per <= 2,
            notes={"recomputations": stats.recomputations, "batches": stats.batches, "events": stats.events,
                   "databases_touched_per_batch": projector.touched_per_batch,
                   "recompute_seconds": stats.recompute_seconds, "errors": stats.errors},
        )
    )  # fmt: skip
    ctx.add(
        Figure(
            "projector: catch-up of 10k config events, 100 databases",
            with_s, "s", without_s, "same, recomputation disabled", with_s / without_s,
            notes={"events_per_s": stats.events / with_s, "bare_events_per_s": bare.stats.events / without_s,
                   "recompute_seconds": stats.recompute_seconds},
        )
    )  # fmt: skip
    if stats.errors:
        raise RuntimeError(f"the projector failed: {stats.last_error}")
