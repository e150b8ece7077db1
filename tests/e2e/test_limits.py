"""Names and sizes over HTTP: bad names are 400/422 naming the field, oversized bodies 413, and
hostile files a 4xx problem that stores nothing."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from litestar.testing import AsyncTestClient

from service.app import create_app
from service.settings import Settings
from tests.conftest import ADMIN, ANALYST

CSV = {**ADMIN, "Content-Type": "text/csv"}
SMALL = (
    b"customer,name,day,amount,order,region\nA,Ann,2024-01-10,100.00,o1,North\nB,Bob,2024-02-01,20,o2,South\n"
)


@pytest.fixture
async def small_limits(sqlite_settings: Settings) -> AsyncIterator[AsyncTestClient[Any]]:
    settings = dataclasses.replace(sqlite_settings, max_body_bytes=2048, max_upload_bytes=4096)
    async with AsyncTestClient(app=create_app(settings), timeout=60) as test_client:
        yield test_client


async def _head(client: AsyncTestClient[Any]) -> int:
    return (await client.get("/ready")).json()["event_store_position"]  # type: ignore[no-any-return]


def _problem(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body = response.json()
    assert body["status"] == status and body["detail"]
    return body  # type: ignore[no-any-return]


async def _imported(client: AsyncTestClient[Any]) -> str:
    database = f"limits-{uuid.uuid4().hex[:8]}"
    response = await client.post(f"/databases/{database}/imports", content=SMALL, headers=CSV)
    assert response.status_code == 201, response.text
    return database


async def test_a_json_body_over_the_limit_is_413(small_limits: AsyncTestClient[Any]) -> None:
    database = await _imported(small_limits)
    head = await _head(small_limits)
    body = {"customer_column": "customer", "date_column": "day", "sales_column": "amount", "reason": "x"}

    too_big = await small_limits.put(
        f"/databases/{database}/configuration", json={**body, "reason": "x" * 3000}, headers=ADMIN
    )
    fits = await small_limits.put(f"/databases/{database}/configuration", json=body, headers=ADMIN)

    _problem(too_big, 413)
    assert fits.status_code == 201, fits.text
    assert await _head(small_limits) == head + 1


async def test_an_import_over_the_upload_limit_is_413(small_limits: AsyncTestClient[Any]) -> None:
    database = f"limits-{uuid.uuid4().hex[:8]}"
    head = await _head(small_limits)
    rows = b"".join(b"C%d,Name,2024-01-10,1.5,o%d,North\n" % (i, i) for i in range(200))

    response = await small_limits.post(f"/databases/{database}/imports", content=SMALL + rows, headers=CSV)

    _problem(response, 413)
    assert await _head(small_limits) == head
    assert (await small_limits.get(f"/databases/{database}", headers=ANALYST)).status_code == 404


@pytest.mark.parametrize(
    "path",
    [
        "/databases/a%00b/imports",
        "/databases/a%0Ab/imports",
        "/databases/%2E%2E/imports",
        "/databases/.x/imports",
    ],
)
async def test_bad_database_names_are_400(client: AsyncTestClient[Any], path: str) -> None:
    head = await _head(client)

    response = await client.post(path, content=SMALL, headers=CSV)

    problem = _problem(response, 400)
    assert problem["errors"][0]["field"] == "database"
    assert await _head(client) == head


async def test_a_database_name_with_a_slash_never_reaches_a_handler(client: AsyncTestClient[Any]) -> None:
    # The router decodes %2F before matching, so "../x" is two path segments: no such route.
    head = await _head(client)

    response = await client.post("/databases/..%2Fx/imports", content=SMALL, headers=CSV)

    _problem(response, 404)
    assert await _head(client) == head
    assert not any(p.name == "x" for p in client.app.state.services.settings.data_dir.rglob("x"))


@pytest.mark.parametrize(
    ("content", "field", "words"),
    [
        (b"cust,amt,cust\nA,1,2\n", "cust", "duplicate column name"),
        (b'cust,"a\x07b"\nA,1\n', "column 2", "control character"),
        (b"cust," + b"n" * 300 + b"\nA,1\n", "column 2", "300 characters"),
        (b"cust,name\nA,Ann\nB,Jos\xe9\n", "body", "line 3: not UTF-8"),
        (b"cust,amt\n", "body", "no data rows"),
    ],
)
async def test_hostile_files_are_422_and_store_nothing(
    client: AsyncTestClient[Any], content: bytes, field: str, words: str
) -> None:
    database = f"hostile-{uuid.uuid4().hex[:8]}"
    head = await _head(client)

    response = await client.post(f"/databases/{database}/imports", content=content, headers=CSV)

    problem = _problem(response, 422)
    assert problem["errors"][0]["field"] == field
    assert words in problem["errors"][0]["message"]
    assert await _head(client) == head


async def test_ndjson_with_a_non_object_line_is_422(client: AsyncTestClient[Any]) -> None:
    response = await client.post(
        f"/databases/hostile-{uuid.uuid4().hex[:8]}/imports",
        content=b'{"a": 1}\n[2]\n',
        headers={**ADMIN, "Content-Type": "application/x-ndjson"},
    )

    assert "line 2: not a JSON object" in _problem(response, 422)["errors"][0]["message"]


async def test_a_bom_and_thousands_separators_import(client: AsyncTestClient[Any]) -> None:
    database = f"hostile-{uuid.uuid4().hex[:8]}"
    content = '\ufeffcust;amt\nA;"1,234.50"\nB;7\n'.encode()

    response = await client.post(f"/databases/{database}/imports", content=content, headers=CSV)

    assert response.status_code == 201, response.text
    assert response.json()["columns"] == [{"name": "cust", "type": "text"}, {"name": "amt", "type": "number"}]


@pytest.mark.parametrize(("name", "status"), [("", 400), ("n" * 101, 400), ("   ", 422)])
async def test_bad_threshold_set_names_are_refused(
    client: AsyncTestClient[Any], name: str, status: int
) -> None:
    database = await _imported(client)
    configured = await client.put(
        f"/databases/{database}/configuration",
        json={"customer_column": "customer", "date_column": "day", "sales_column": "amount"},
        headers=ADMIN,
    )
    assert configured.status_code == 201, configured.text
    head = await _head(client)

    response = await client.post(
        f"/databases/{database}/threshold-sets",
        json={"name": name, "criteria": {"region": ["North"]}, "thresholds": {}},
        headers=ADMIN,
    )

    assert _problem(response, status)["errors"][0]["field"] == "name"
    assert await _head(client) == head
