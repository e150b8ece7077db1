"""Bad input gets a clear 4xx problem and changes nothing."""

from __future__ import annotations

from typing import Any

import pytest
from litestar.testing import AsyncTestClient

from tests.conftest import ADMIN, ANALYST, SUPERSTORE, needs_superstore
from tests.e2e.conftest import configured_superstore

pytestmark = needs_superstore


async def _head(client: AsyncTestClient[Any]) -> int:
    ready = await client.get("/ready")
    return ready.json()["event_store_position"]  # type: ignore[no-any-return]


def _problem(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body = response.json()
    assert body["status"] == status and body["title"] and body["detail"]
    return body  # type: ignore[no-any-return]


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        (
            {"customer_column": "Nope", "date_column": "Order Date", "sales_column": "Sales"},
            422,
            "customer_column",
        ),
        (
            {"customer_column": "Customer ID", "date_column": "Region", "sales_column": "Sales"},
            422,
            "date_column",
        ),
        (
            {
                "customer_column": "Customer ID",
                "date_column": "Order Date",
                "sales_column": "Sales",
                "grouping": 7,
            },
            422,
            "grouping",
        ),
        (
            {
                "customer_column": "Customer ID",
                "date_column": "Order Date",
                "sales_column": "Sales",
                "thresholds": {"monetary": [100, 50, 200, 300]},
            },
            422,
            "thresholds.monetary",
        ),
        (
            {
                "customer_column": "Customer ID",
                "date_column": "Order Date",
                "sales_column": "Sales",
                "colour": 1,
            },
            400,
            "colour",
        ),
        (
            {"customer_column": 5, "date_column": "Order Date", "sales_column": "Sales"},
            400,
            "customer_column",
        ),
    ],
)
async def test_bad_configurations_write_nothing(
    client: AsyncTestClient[Any], body: dict[str, Any], status: int, field: str
) -> None:
    database, _ = await configured_superstore(client)
    await client.request("DELETE", f"/databases/{database}/configuration", headers=ADMIN)
    head = await _head(client)

    response = await client.put(f"/databases/{database}/configuration", json=body, headers=ADMIN)

    problem = _problem(response, status)
    assert field in [e["field"] for e in problem["errors"]]
    assert await _head(client) == head


async def test_malformed_json_and_missing_keys(client: AsyncTestClient[Any]) -> None:
    database, _ = await configured_superstore(client)
    head = await _head(client)
    path = f"/databases/{database}/removals"

    malformed = await client.post(
        path, content=b'{"dimension": "Region",', headers={**ADMIN, "Content-Type": "application/json"}
    )
    no_key = await client.post(path, json={"dimension": "Region", "values": ["West"]})
    unknown_key = await client.post(
        path, json={"dimension": "Region", "values": ["West"]}, headers={"Authorization": "Bearer nope"}
    )
    analyst = await client.post(path, json={"dimension": "Region", "values": ["West"]}, headers=ANALYST)
    unknown_field = await client.post(
        path, json={"dimension": "Region", "values": ["West"], "why": "x"}, headers=ADMIN
    )
    too_long = await client.post(
        path, json={"dimension": "Region", "values": ["West"], "reason": "x" * 501}, headers=ADMIN
    )
    bad_match = await client.post(
        path, json={"dimension": "Region", "values": ["West"]}, headers={**ADMIN, "If-Match": '"99"'}
    )

    _problem(malformed, 400)
    _problem(no_key, 401)
    _problem(unknown_key, 401)
    _problem(analyst, 403)
    assert _problem(unknown_field, 400)["errors"][0]["field"] == "why"
    _problem(too_long, 400)
    _problem(bad_match, 412)
    assert await _head(client) == head


async def test_imports_that_cannot_be_read_store_nothing(client: AsyncTestClient[Any]) -> None:
    database, position = await configured_superstore(client)
    head = await _head(client)
    path = f"/databases/{database}/imports"
    header = SUPERSTORE.read_text().split("\n", 1)[0].replace('"', "")
    good_row = "1,CA-1,1/5/2018,1/6/2018,First,AA-1,Al,Consumer,US,X,Y,1,West,P,C,S,N,10.5,1,0,1"
    bad_row = "2,CA-2,not a date,1/6/2018,First,AA-1,Al,Consumer,US,X,Y,1,West,P,C,S,N,10.5,1,0,1"

    json_body = await client.post(path, json={"a": 1}, headers=ADMIN)
    binary = await client.post(
        path, content=b"\x00\x01PK\x03\x04", headers={**ADMIN, "Content-Type": "text/csv"}
    )
    empty = await client.post(path, content=b"", headers={**ADMIN, "Content-Type": "text/csv"})
    bad_date = await client.post(
        path,
        params={"date_format": "%m/%d/%Y"},
        content=f"{header}\n{good_row}\n{bad_row}\n".encode(),
        headers={**ADMIN, "Content-Type": "text/csv"},
    )
    bad_mode = await client.post(
        path, params={"mode": "merge"}, content=b"a,b\n1,2\n", headers={**ADMIN, "Content-Type": "text/csv"}
    )
    bad_name = await client.post(
        "/databases/..%2Fetc/imports", content=b"a,b\n1,2\n", headers={**ADMIN, "Content-Type": "text/csv"}
    )

    _problem(json_body, 415)
    _problem(binary, 422)
    _problem(empty, 400)
    problem = _problem(bad_date, 422)
    assert problem["errors"][0]["field"] == "Order Date"
    assert "row 2" in problem["errors"][0]["message"]
    _problem(bad_mode, 400)
    assert bad_name.status_code in (400, 404)
    assert await _head(client) == head
    database_view = (
        await client.get(f"/databases/{database}", params={"min_position": position}, headers=ANALYST)
    ).json()
    assert len(database_view["batches"]) == 1


async def test_queries_validate_their_parameters(client: AsyncTestClient[Any]) -> None:
    database, position = await configured_superstore(client)
    base = f"/databases/{database}"
    await client.get(f"{base}/segmentation", params={"min_position": position}, headers=ANALYST)

    _problem(await client.get(f"{base}/segmentation", params={"filter": "no-colon"}, headers=ANALYST), 400)
    _problem(await client.get(f"{base}/segmentation", params={"filter": "Nope:x"}, headers=ANALYST), 422)
    _problem(await client.get(f"{base}/segmentation", params={"as_of": "yesterday"}, headers=ANALYST), 400)
    _problem(await client.get(f"{base}/segmentation/customers", params={"limit": 5000}, headers=ANALYST), 400)
    _problem(
        await client.get(f"{base}/segmentation/customers", params={"sort": "colour"}, headers=ANALYST), 400
    )
    _problem(
        await client.get(f"{base}/segmentation/customers", params={"segment": "vip"}, headers=ANALYST), 400
    )
    _problem(await client.get("/databases/unknown-db/segmentation", headers=ANALYST), 404)
    _problem(await client.get(f"{base}/customers/NOPE-1", headers=ANALYST), 404)
    _problem(await client.get(f"{base}/columns/Nope/values", headers=ANALYST), 404)
    behind = await client.get(
        f"{base}/segmentation", params={"min_position": position + 1000}, headers=ANALYST
    )
    _problem(behind, 503)
    assert behind.headers["retry-after"]


async def test_database_listing_and_column_values(client: AsyncTestClient[Any]) -> None:
    database, position = await configured_superstore(client)

    one = (
        await client.get(f"/databases/{database}", params={"min_position": position}, headers=ANALYST)
    ).json()
    listing = (await client.get("/databases", headers=ANALYST)).json()
    values = (
        await client.get(
            f"/databases/{database}/columns/Region/values", params={"search": "e"}, headers=ANALYST
        )
    ).json()
    suggested = (await client.get(f"/databases/{database}/thresholds/suggested", headers=ANALYST)).json()

    entry = next(d for d in listing if d["database"] == database)
    assert entry == {
        "database": database,
        "configured": True,
        "rows": 9994,
        "batches": 1,
        "version": 1,
        "data_version": 2,
    }
    assert one["rows"] == 9994 and one["configured"] is True and one["batches"][0]["imported_by"] == "alice"
    assert [v["value"] for v in values["values"]] == ["West", "East", "Central"]
    assert sum(v["rows"] for v in values["values"]) > 0
    assert suggested["thresholds"] == {
        "frequency": [1, 2, 3, 4],
        "monetary": [130, 420, 840, 1600],
        "recency": [22, 43, 82, 145],
    }


async def test_wrong_json_types_are_400_not_coerced(client: AsyncTestClient[Any]) -> None:
    database, _ = await configured_superstore(client)
    head = await _head(client)
    path = f"/databases/{database}/configuration"

    as_text = await client.patch(path, json={"grouping": "5"}, headers=ADMIN)
    cut_text = await client.patch(path, json={"thresholds": {"monetary": ["1", 2, 3, 4]}}, headers=ADMIN)
    deep = await client.patch(
        path, content=b"[" * 100_000 + b"]" * 100_000, headers={**ADMIN, "Content-Type": "application/json"}
    )
    no_dimension = await client.post(
        f"/databases/{database}/removals", json={"values": ["Central"]}, headers=ADMIN
    )

    assert _problem(as_text, 400)["errors"][0]["field"] == "grouping"
    assert _problem(cut_text, 400)["errors"][0]["field"] == "thresholds"
    _problem(deep, 400)
    assert _problem(no_dimension, 400)["errors"][0]["field"] == "dimension"
    assert await _head(client) == head


async def test_values_beyond_what_the_engine_sums_exactly_are_refused(client: AsyncTestClient[Any]) -> None:
    database, _ = await configured_superstore(client)
    head = await _head(client)
    header = SUPERSTORE.read_text().split("\n", 1)[0].replace('"', "")
    huge = "3,CA-3,1/5/2018,1/6/2018,First,AA-1,Al,Consumer,US,X,Y,1,West,P,C,S,N,9300000000000.5,1,0,1"

    appended = await client.post(
        f"/databases/{database}/imports",
        content=f"{header}\n{huge}\n".encode(),
        headers={**ADMIN, "Content-Type": "text/csv"},
    )
    cut = await client.patch(
        f"/databases/{database}/configuration",
        json={"thresholds": {"monetary": [1, 2, 3, 1e15]}},
        headers=ADMIN,
    )
    version = await client.get(
        f"/databases/{database}/segmentation", params={"version": 2**63}, headers=ANALYST
    )

    assert "row 1" in _problem(appended, 422)["errors"][0]["message"]
    assert _problem(cut, 422)["errors"][0]["field"] == "thresholds.monetary"
    _problem(version, 400)
    assert await _head(client) == head


async def test_a_sales_column_with_huge_values_cannot_be_configured(client: AsyncTestClient[Any]) -> None:
    database = "huge-sales"
    await client.post(
        f"/databases/{database}/imports",
        content=b"cust,day,amount\nA,2024-01-01,1e300\n",
        headers={**ADMIN, "Content-Type": "text/csv"},
    )

    configured = await client.put(
        f"/databases/{database}/configuration",
        json={"customer_column": "cust", "date_column": "day", "sales_column": "amount"},
        headers=ADMIN,
    )

    assert _problem(configured, 422)["errors"][0]["field"] == "sales_column"
