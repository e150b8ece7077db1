"""HTTP through ``create_app()`` with the real stack: SQLite event store, real Redis."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from litestar.testing import AsyncTestClient

from service.app import create_app
from service.settings import Settings
from tests.conftest import ADMIN, SUPERSTORE, SUPERSTORE_CONFIG


@pytest.fixture
async def client(sqlite_settings: Settings) -> AsyncIterator[AsyncTestClient[Any]]:
    async with AsyncTestClient(app=create_app(sqlite_settings), timeout=60) as test_client:
        yield test_client


async def import_superstore(client: AsyncTestClient[Any], database: str) -> dict[str, Any]:
    response = await client.post(
        f"/databases/{database}/imports",
        params={"date_format": "%m/%d/%Y"},
        content=SUPERSTORE.read_bytes(),
        headers={**ADMIN, "Content-Type": "text/csv"},
    )
    assert response.status_code == 201, response.text
    return response.json()  # type: ignore[no-any-return]


async def configured_superstore(client: AsyncTestClient[Any]) -> tuple[str, int]:
    """A fresh database holding the Superstore file, configured as segmentation-rules §8 says."""
    database = f"superstore-{uuid.uuid4().hex[:8]}"
    await import_superstore(client, database)
    response = await client.put(
        f"/databases/{database}/configuration",
        json={**SUPERSTORE_CONFIG, "reason": "initial setup"},
        headers=ADMIN,
    )
    assert response.status_code == 201, response.text
    return database, response.json()["position"]
