"""A key restricted to Region West sees the Superstore file as if it held only the West rows."""

from __future__ import annotations

import csv
import io
import uuid
from typing import Any

import pytest
from litestar.testing import AsyncTestClient

from service.app import create_app
from service.auth import KeyStore
from service.settings import Settings
from tests.conftest import ADMIN, AUDITOR, SUPERSTORE, SUPERSTORE_CONFIG, needs_superstore

pytestmark = needs_superstore


@pytest.fixture
async def restricted(sqlite_settings: Settings) -> Any:
    store = KeyStore(sqlite_settings.data_dir / "keys.json")
    west = store.add("rita", "analyst", {"Region": ["West"]})
    west_auditor = store.add("wes", "auditor", {"Region": ["West"]})
    async with AsyncTestClient(app=create_app(sqlite_settings), timeout=60) as client:
        yield client, {"Authorization": f"Bearer {west}"}, {"Authorization": f"Bearer {west_auditor}"}


def _rows_of(region: str | None) -> bytes:
    text = SUPERSTORE.read_text()
    reader = csv.reader(io.StringIO(text))
    out = io.StringIO()
    writer = csv.writer(out, quoting=csv.QUOTE_ALL, lineterminator="\n")
    header = next(reader)
    writer.writerow(header)
    index = header.index("Region")
    for row in reader:
        if region is None or row[index] == region:
            writer.writerow(row)
    return out.getvalue().encode()


async def _database(client: AsyncTestClient[Any], content: bytes) -> tuple[str, int]:
    database = f"restricted-{uuid.uuid4().hex[:8]}"
    imported = await client.post(
        f"/databases/{database}/imports",
        params={"date_format": "%m/%d/%Y"},
        content=content,
        headers={**ADMIN, "Content-Type": "text/csv"},
    )
    assert imported.status_code == 201, imported.text
    configured = await client.put(
        f"/databases/{database}/configuration", json=SUPERSTORE_CONFIG, headers=ADMIN
    )
    return database, configured.json()["position"]


def _comparable(summary: dict[str, Any]) -> dict[str, Any]:
    drop = ("database", "configuration_version", "data_version", "computed_at")
    return {k: v for k, v in summary.items() if k not in drop}


def _customers_only_in(region: str) -> set[str]:
    rows = list(csv.DictReader(io.StringIO(SUPERSTORE.read_text())))
    regions: dict[str, set[str]] = {}
    for row in rows:
        regions.setdefault(row["Customer ID"], set()).add(row["Region"])
    return {code for code, seen in regions.items() if seen == {region}}


async def test_a_west_key_sees_the_summary_of_the_west_rows(restricted: Any) -> None:
    client, west, _ = restricted
    everything, _ = await _database(client, _rows_of(None))
    west_only, position = await _database(client, _rows_of("West"))

    as_west = await client.get(
        f"/databases/{everything}/segmentation", params={"min_position": position}, headers=west
    )
    of_west_rows = await client.get(f"/databases/{west_only}/segmentation", headers=west)

    assert as_west.status_code == 200, as_west.text
    assert _comparable(as_west.json()) == _comparable(of_west_rows.json())
    assert as_west.json()["active_customers"] < 693
    suggested = (await client.get(f"/databases/{everything}/thresholds/suggested", headers=west)).json()
    assert suggested["thresholds"] == {
        m: t["cuts"] for m, t in as_west.json()["thresholds"].items()
    }  # cut points of what the key may see


async def test_no_endpoint_reveals_a_customer_seen_only_in_another_region(restricted: Any) -> None:
    client, west, west_auditor = restricted
    database, configured = await _database(client, _rows_of(None))
    east_only = sorted(_customers_only_in("East"))[0]
    active = await client.get(
        f"/databases/{database}/segmentation/customers",
        params={"limit": 1000, "min_position": configured},
        headers=west,
    )
    west_only = sorted(_customers_only_in("West") & {r["code"] for r in active.json()["items"]})[0]
    removal = await client.post(
        f"/databases/{database}/removals",
        json={"dimension": None, "values": [east_only, west_only], "reason": "test accounts"},
        headers=ADMIN,
    )
    position = removal.json()["position"]
    base = f"/databases/{database}"

    assert (
        await client.get(f"{base}/customers/{east_only}", params={"min_position": position}, headers=west)
    ).status_code == 404
    listing = (
        await client.get(f"{base}/segmentation/customers", params={"limit": 1000}, headers=west)
    ).json()
    assert east_only not in {r["code"] for r in listing["items"]}
    searched = (
        await client.get(f"{base}/segmentation/customers", params={"search": east_only}, headers=west)
    ).json()
    assert searched["total"] == 0
    assert east_only not in (await client.get(f"{base}/segmentation/customers.csv", headers=west)).text
    values = (
        await client.get(f"{base}/columns/Customer ID/values", params={"limit": 10_000}, headers=west)
    ).json()
    assert east_only not in {v["value"] for v in values["values"]}
    configuration = (await client.get(f"{base}/configuration", headers=west)).json()
    assert configuration["removal_rules"][0]["values"] == [west_only]
    assert east_only not in configuration["removal_rules"][0]["label"]
    movement = (
        await client.get(
            f"{base}/segmentation/movement",
            params={"from": 1, "to": 2, "segment_to": "none"},
            headers=west,
        )
    ).json()
    assert east_only not in {m["code"] for m in movement["customers"]}
    assert west_only in {m["code"] for m in movement["customers"]}
    matrix = (
        await client.get(f"{base}/segmentation/movement", params={"from": 1, "to": 2}, headers=west)
    ).json()
    at_v1 = (await client.get(f"{base}/segmentation", params={"version": 1}, headers=west)).json()
    assert matrix["active_in_either"] == at_v1["active_customers"] < 693
    exclusions = (await client.get(f"{base}/audit/exclusions", headers=west_auditor)).json()
    assert exclusions["rules"][0]["customers"] == [west_only]
    assert exclusions["rules"][0]["values"] == [west_only]
    trail = (
        await client.get(f"{base}/audit", params={"type": "CustomersRemoved"}, headers=west_auditor)
    ).json()
    assert trail["items"][0]["details"]["values"] == [west_only]
    assert east_only not in str(trail) and east_only not in str(exclusions)
    assert east_only in str(
        (await client.get(f"{base}/audit", headers=AUDITOR)).json()
    )  # unrestricted sees it

    own = (await client.get(f"{base}/customers/{west_only}", headers=west)).json()
    assert own["removed"] is True and own["removed_by"][0]["values"] == [west_only]


async def test_removals_are_decided_on_all_rows_and_restricted_keys_run_no_commands(restricted: Any) -> None:
    client, west, _ = restricted
    database, configured = await _database(client, _rows_of(None))
    before = (
        await client.get(
            f"/databases/{database}/segmentation", params={"min_position": configured}, headers=west
        )
    ).json()

    removal = await client.post(
        f"/databases/{database}/removals",
        json={"dimension": "Region", "values": ["Central"], "reason": "closed"},
        headers=ADMIN,
    )
    after = (
        await client.get(
            f"/databases/{database}/segmentation",
            params={"min_position": removal.json()["position"]},
            headers=west,
        )
    ).json()

    # West customers who also bought in Central are removed from the West view too.
    assert after["active_customers"] < before["active_customers"]
    refused = await client.post(
        f"/databases/{database}/removals", json={"dimension": None, "values": ["X"]}, headers=west
    )
    assert refused.status_code == 403
