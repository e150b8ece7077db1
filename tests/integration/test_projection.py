"""The projector on a real Redis, following a real event store."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import msgspec
import pytest
import redis

from service.application import Context, SegmentationApplication
from service.projections.keys import Keys
from service.projections.segmentation import SegmentationProjector, rebuild
from service.settings import Settings
from tests.integration.conftest import SMALL_CONFIG, new_database, write_csv
from tests.integration.readmodel import rebuilt_from_scratch
from tests.integration.readmodel import snapshot as _snapshot


def _configured(app: SegmentationApplication, tmp_path: Path) -> str:
    database = new_database()
    app.import_batch(database, write_csv(tmp_path), "csv", "append", None, Context("alice", None))
    app.configure(database, SMALL_CONFIG, Context("alice", None))
    return database


def _doc(client: redis.Redis, keys: Keys, database: str, part: str) -> dict:  # type: ignore[type-arg]
    raw = client.get(keys.db(database, part))
    assert raw is not None, part
    return msgspec.json.decode(raw)  # type: ignore[no-any-return]


def test_projects_the_default_view(
    app: SegmentationApplication, projector: SegmentationProjector, tmp_path: Path, redis_client: redis.Redis
) -> None:
    database = _configured(app, tmp_path)

    applied = projector.catch_up()

    assert applied == 3
    assert projector.position() == app.head_position()
    summary = _doc(redis_client, projector.keys, database, "summary")
    # A (2 purchases, 150), C (75.50); B's only purchase nets to zero; D is outside the period.
    assert summary["active_customers"] == 2
    assert summary["total_sales"] == 225.5
    assert summary["reference_date"] == "2024-03-30"
    assert summary["configuration_version"] == 1 and summary["data_version"] == 2
    rows = _doc(redis_client, projector.keys, database, "customers")
    assert [r["code"] for r in rows] == ["A", "C"]
    assert redis_client.hget(projector.keys.db(database, "customer"), "A") is not None


def test_events_arriving_together_cause_one_recomputation(
    app: SegmentationApplication, projector: SegmentationProjector, tmp_path: Path
) -> None:
    database = _configured(app, tmp_path)
    for value in ("East", "West", "North"):
        app.remove_customers(database, "region", [value], None, Context("bob", None))
    other = _configured(app, tmp_path)

    projector.catch_up()

    assert projector.stats.batches == 1
    assert projector.stats.recomputations == 2  # one per database, not one per event
    assert projector.stats.touched == sorted([database, other])


def test_a_position_already_applied_is_refused(
    app: SegmentationApplication, projector: SegmentationProjector, tmp_path: Path, redis_client: redis.Redis
) -> None:
    _configured(app, tmp_path)
    projector.catch_up()
    before = _snapshot(redis_client, projector.keys)
    notifications = app.recorder.select_notifications(start=1, limit=100)

    assert projector.apply(notifications) == 0

    assert _snapshot(redis_client, projector.keys) == before


def test_projecting_in_pieces_equals_projecting_at_once(
    app: SegmentationApplication,
    settings: Settings,
    tmp_path: Path,
    redis_client: redis.Redis,
) -> None:
    database = _configured(app, tmp_path)
    rule_id = app.remove_customers(database, "region", ["North"], None, Context("bob")).body["rule_id"]
    app.create_threshold_set(
        database, "South", {"region": ["South"]}, {"recency": [1, 2, 3, 4]}, Context("alice")
    )
    app.restore_customers(database, rule_id, Context("carol", None))
    one_by_one = SegmentationProjector(app, redis_client, Keys(settings.redis_prefix + "-a"), batch_size=1)
    at_once = SegmentationProjector(app, redis_client, Keys(settings.redis_prefix + "-b"))

    one_by_one.catch_up()
    at_once.catch_up()

    assert _snapshot(redis_client, one_by_one.keys) == _snapshot(redis_client, at_once.keys)


def test_rebuild_reproduces_the_read_model(
    app: SegmentationApplication, projector: SegmentationProjector, tmp_path: Path, redis_client: redis.Redis
) -> None:
    database = _configured(app, tmp_path)
    app.remove_customers(database, "region", ["North"], None, Context("bob", None))
    projector.catch_up()
    before = _snapshot(redis_client, projector.keys)
    old = projector.keys

    applied = rebuild(app, redis_client, projector.control, grace_seconds=0)

    assert applied == app.head_position()
    assert projector.keys.generation != old.generation
    assert _snapshot(redis_client, projector.keys) == before
    assert list(redis_client.scan_iter(match=old.pattern)) == []  # the old generation is gone


def _start_projector(settings: Settings) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "SEGMENTATION_DATA_DIR": str(settings.data_dir),
        "REDIS_URL": settings.redis_url or "",
        "SEGMENTATION_REDIS_PREFIX": settings.redis_prefix,
        "SEGMENTATION_EVENT_STORE": settings.event_store,
        "SEGMENTATION_POLL_INTERVAL": "0.02",
        **settings.eventsourcing_env,
    }
    return subprocess.Popen(
        [sys.executable, "-m", "service.cli", "project"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def _wait_for_position(projector: SegmentationProjector, position: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while projector.position() < position:
        assert time.monotonic() < deadline, f"projector did not reach {position}"
        time.sleep(0.05)


def test_a_killed_projector_process_resumes_without_loss_or_repetition(
    app: SegmentationApplication,
    projector: SegmentationProjector,
    settings: Settings,
    tmp_path: Path,
    redis_client: redis.Redis,
) -> None:
    database = _configured(app, tmp_path)
    process = _start_projector(settings)
    try:
        _wait_for_position(projector, app.head_position())
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=10)

        second = app.remove_customers(
            database, "region", ["North"], None, Context("bob", "killed in between")
        )
        assert projector.position() < second.position

        process = _start_projector(settings)
        _wait_for_position(projector, second.position)
    finally:
        process.kill()
        process.wait(timeout=10)

    summary = _doc(redis_client, projector.keys, database, "summary")
    assert summary["configuration_version"] == 2
    assert summary["active_customers"] == 1  # A (North) is removed
    audit = redis_client.lrange(projector.keys.db(database, "audit"), 0, -1)
    assert [msgspec.json.decode(e)["position"] for e in audit] == list(range(1, app.head_position() + 1))
    assert _snapshot(redis_client, projector.keys) == rebuilt_from_scratch(
        app, redis_client, settings.redis_prefix
    )


@pytest.mark.parametrize("batch_size", [1, 2])
def test_small_batches_reach_the_same_position(
    app: SegmentationApplication,
    settings: Settings,
    tmp_path: Path,
    redis_client: redis.Redis,
    batch_size: int,
) -> None:
    _configured(app, tmp_path)
    projector = SegmentationProjector(app, redis_client, Keys(settings.redis_prefix), batch_size=batch_size)

    projector.catch_up()

    assert projector.position() == app.head_position()
