"""The service as real processes: several API workers, a projector, rebuilds and Redis outages.

After each test the read model served equals one rebuilt from scratch, compared key by key.
"""

from __future__ import annotations

import random
import signal
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import redis

from service.app import build_application
from service.application import Context
from service.projections.keys import Keys
from service.projections.segmentation import SegmentationProjector
from service.redis_server import EmbeddedRedis
from service.settings import Settings
from tests.conftest import ADMIN, ADMIN_B, ANALYST
from tests.integration.conftest import SMALL_CONFIG, SMALL_CSV, write_csv
from tests.integration.processes import free_port, serving, start, stop, wait_until
from tests.integration.readmodel import live, rebuilt_from_scratch


def _load(client: httpx.Client, database: str) -> int:
    imported = client.post(
        f"/databases/{database}/imports",
        content=SMALL_CSV.encode(),
        headers={**ADMIN, "Content-Type": "text/csv"},
    )
    assert imported.status_code == 201, imported.text
    configured = client.put(f"/databases/{database}/configuration", json=SMALL_CONFIG, headers=ADMIN)
    assert configured.status_code == 201, configured.text
    return int(configured.json()["position"])


def _caught_up(client: httpx.Client) -> bool:
    ready = client.get("/ready").json()
    return ready.get("lag") == 0 and ready.get("state") == "ready"


def _assert_equals_rebuild(settings: Settings, client: redis.Redis) -> None:
    app = build_application(settings)
    try:
        assert live(client, settings.redis_prefix) == rebuilt_from_scratch(app, client, settings.redis_prefix)
    finally:
        app.close()


def test_two_api_workers_and_one_projector_share_one_store_and_one_redis(
    settings: Settings, redis_client: redis.Redis
) -> None:
    projector = start(settings, "project")
    try:
        with serving(settings, "--no-projector") as first, serving(settings, "--no-projector") as second:
            databases = [f"db-{uuid.uuid4().hex[:6]}" for _ in range(2)]
            for database in databases:
                _load(first, database)

            def command(i: int) -> int:
                worker = (first, second)[i % 2]
                database = databases[i % 2]
                response = worker.post(
                    f"/databases/{database}/removals",
                    json={"dimension": "region", "values": [f"R{i}"], "reason": f"command {i}"},
                    headers=(ADMIN, ADMIN_B)[i % 2],
                )
                return response.status_code

            with ThreadPoolExecutor(max_workers=6) as pool:
                statuses = list(pool.map(command, range(24)))
            assert statuses == [201] * 24  # races without If-Match are retried, not refused

            # Two clients racing on one version with If-Match: exactly one wins.
            wait_until(lambda: _caught_up(first))
            version = first.get(f"/databases/{databases[0]}/configuration", headers=ANALYST).json()["version"]
            pinned = {**ADMIN, "If-Match": f'"{version}"'}
            with ThreadPoolExecutor(max_workers=2) as pool:
                raced = list(
                    pool.map(
                        lambda worker: (
                            worker.patch(
                                f"/databases/{databases[0]}/configuration",
                                json={"grouping": 5},
                                headers=pinned,
                            ).status_code
                        ),
                        (first, second),
                    )
                )
            assert sorted(raced) == [200, 412]

            wait_until(lambda: _caught_up(second))
            for database in databases:
                summary = second.get(f"/databases/{database}/segmentation", headers=ANALYST).json()
                assert summary["configuration_version"] >= 13
    finally:
        stop(projector)
    _assert_equals_rebuild(settings, redis_client)


def test_queries_keep_answering_while_a_rebuild_runs(
    sqlite_settings: Settings, redis_client: redis.Redis
) -> None:
    settings = sqlite_settings
    with serving(settings) as api:
        database = f"db-{uuid.uuid4().hex[:6]}"
        position = _load(api, database)
        for i in range(30):
            api.post(
                f"/databases/{database}/removals",
                json={"dimension": None, "values": [f"X{i}"]},
                headers=ADMIN,
            )
        wait_until(lambda: _caught_up(api))
        before = redis_client.get(Keys(settings.redis_prefix).current)

        rebuilding = start(settings, "rebuild")
        answers: list[int] = []
        while rebuilding.poll() is None:
            answers.append(api.get(f"/databases/{database}/segmentation", headers=ANALYST).status_code)
        assert rebuilding.returncode == 0
        answers.append(
            api.get(
                f"/databases/{database}/segmentation", params={"min_position": position}, headers=ANALYST
            ).status_code
        )

        assert set(answers) == {200}, answers
        assert redis_client.get(Keys(settings.redis_prefix).current) != before
        assert list(redis_client.scan_iter(match=Keys(settings.redis_prefix, before.decode()).pattern)) == []  # type: ignore[union-attr]
    _assert_equals_rebuild(settings, redis_client)


def test_a_flushed_read_model_is_rebuilt_and_ready_says_so(
    sqlite_settings: Settings, redis_client: redis.Redis, tmp_path: Path
) -> None:
    settings = sqlite_settings
    with serving(settings, "--no-projector") as api:
        database = f"db-{uuid.uuid4().hex[:6]}"
        _load(api, database)
        app = build_application(settings)
        try:
            projector = SegmentationProjector(app, redis_client, Keys(settings.redis_prefix), batch_size=1)
            projector.catch_up()
            redis_client.set(Keys(settings.redis_prefix).heartbeat, "1", ex=60)
            assert api.get("/ready").status_code == 200

            for key in redis_client.scan_iter(match=f"{settings.redis_prefix}:*"):  # what FLUSHALL does to us
                redis_client.delete(key)
            redis_client.set(Keys(settings.redis_prefix).heartbeat, "1", ex=60)
            assert projector.run_once() == 1  # it notices: a new generation, rebuilt from the start

            ready = api.get("/ready")
            assert ready.status_code == 503 and "rebuilding" in ready.json()["detail"]
            time.sleep(1.1)  # past the reader's generation cache
            during = api.get(f"/databases/{database}", headers=ANALYST)
            assert during.status_code == 503, during.text  # being rebuilt, not unknown
            projector.catch_up()
            projector.run_once()
            assert api.get("/ready").status_code == 200
            assert api.get(f"/databases/{database}/segmentation", headers=ANALYST).status_code == 200
        finally:
            app.close()
    _assert_equals_rebuild(settings, redis_client)


def test_redis_stopped_then_started_empty(sqlite_settings: Settings, tmp_path: Path) -> None:
    port = free_port()
    server = EmbeddedRedis(tmp_path / "own-redis", port=port)
    url = server.start()
    settings = Settings(**{**sqlite_settings.__dict__, "redis_url": url})
    client = redis.Redis.from_url(url)
    try:
        with serving(settings) as api:
            database = f"db-{uuid.uuid4().hex[:6]}"
            _load(api, database)
            wait_until(lambda: _caught_up(api))

            server.stop()
            down = api.get(f"/databases/{database}/segmentation", headers=ANALYST)
            accepted = api.post(
                f"/databases/{database}/removals",
                json={"dimension": "region", "values": ["North"], "reason": "while Redis was down"},
                headers=ADMIN,
            )
            assert down.status_code == 503
            assert down.headers["content-type"].startswith("application/problem+json")
            assert "Redis" in down.json()["detail"]
            assert accepted.status_code == 201  # the event store is the truth

            server = EmbeddedRedis(tmp_path / "own-redis", port=port)
            server.start()  # empty: nothing persisted

            def caught_up() -> Any:
                answer = api.get(
                    f"/databases/{database}/segmentation",
                    params={"min_position": accepted.json()["position"]},
                    headers=ANALYST,
                )
                return answer.status_code == 200 and answer.json()

            summary = wait_until(caught_up, timeout=60, every=0.2)
            assert summary["configuration_version"] == 2
        _assert_equals_rebuild(settings, client)
    finally:
        client.close()
        server.stop()


def test_a_retried_upload_with_the_same_key_stores_one_batch(sqlite_settings: Settings) -> None:
    with serving(sqlite_settings) as api:
        database = f"db-{uuid.uuid4().hex[:6]}"
        headers = {**ADMIN, "Content-Type": "text/csv", "Idempotency-Key": "upload-1"}

        first = api.post(f"/databases/{database}/imports", content=SMALL_CSV.encode(), headers=headers)
        again = api.post(f"/databases/{database}/imports", content=SMALL_CSV.encode(), headers=headers)
        other = api.post(
            f"/databases/{database}/imports",
            content=SMALL_CSV.encode() + b"E,Eve,2024-03-01,1,o9,West\n",
            headers=headers,
        )

        assert first.status_code == again.status_code == 201
        assert again.json() == first.json()
        assert other.status_code == 422 and other.json()["errors"][0]["field"] == "Idempotency-Key"
        listed = api.get(
            f"/databases/{database}", params={"min_position": first.json()["position"]}, headers=ANALYST
        )
        assert len(listed.json()["batches"]) == 1
    _assert_equals_rebuild(sqlite_settings, redis.Redis.from_url(sqlite_settings.redis_url or ""))


def test_serve_with_two_workers_answers_and_projects(sqlite_settings: Settings) -> None:
    with serving(sqlite_settings, "--workers", "2") as api:
        database = f"db-{uuid.uuid4().hex[:6]}"
        position = _load(api, database)
        answers = [
            api.get(f"/databases/{database}/segmentation", params={"min_position": position}, headers=ANALYST)
            for _ in range(6)
        ]
        assert {a.status_code for a in answers} == {200}
        assert "segmentation_http_requests_total" in api.get("/metrics").text
        wait_until(lambda: _caught_up(api))
    _assert_equals_rebuild(sqlite_settings, redis.Redis.from_url(sqlite_settings.redis_url or ""))


def test_a_projector_killed_at_random_moments_loses_and_repeats_nothing(
    settings: Settings, redis_client: redis.Redis
) -> None:
    app = build_application(settings)
    try:
        databases = [f"db-{uuid.uuid4().hex[:6]}" for _ in range(3)]
        for database in databases:
            app.import_batch(
                database, write_csv(settings.data_dir.parent), "csv", "append", None, Context("a")
            )
            app.configure(database, SMALL_CONFIG, Context("a"))
        done = threading.Event()

        def commands() -> None:
            for i in range(60):
                app.remove_customers(databases[i % 3], "region", [f"R{i}"], None, Context("bob", f"#{i}"))
            done.set()

        writer = threading.Thread(target=commands)
        writer.start()
        chance = random.Random(7)
        while not done.is_set():
            projector = start(settings, "project")
            time.sleep(chance.uniform(0.2, 0.8))
            projector.send_signal(signal.SIGKILL)
            projector.wait(timeout=10)
        writer.join()
        projector = start(settings, "project")
        try:
            wait_until(
                lambda: (
                    int(
                        redis_client.get(
                            Keys(settings.redis_prefix, _current(redis_client, settings)).position
                        )
                        or 0
                    )
                    >= app.head_position()
                )
            )
        finally:
            stop(projector)
        assert live(redis_client, settings.redis_prefix) == rebuilt_from_scratch(
            app, redis_client, settings.redis_prefix
        )
    finally:
        app.close()


def _current(client: redis.Redis, settings: Settings) -> str:
    generation = client.get(Keys(settings.redis_prefix).current)
    return generation.decode() if generation else "none"
