"""The README walkthrough over HTTP on the real Superstore file (segmentation-rules §8)."""

from __future__ import annotations

from typing import Any

from litestar.testing import AsyncTestClient

from tests.conftest import ADMIN, ADMIN_B, ANALYST, AUDITOR, needs_superstore
from tests.e2e.conftest import configured_superstore

pytestmark = needs_superstore


def _segment(summary: dict[str, Any], key: str) -> dict[str, Any]:
    return next(s for s in summary["segments"] if s["key"] == key)


@needs_superstore
async def test_superstore_summary_matches_the_worked_example(client: AsyncTestClient[Any]) -> None:
    database, position = await configured_superstore(client)

    response = await client.get(
        f"/databases/{database}/segmentation", params={"min_position": position}, headers=ANALYST
    )

    assert response.status_code == 200, response.text
    summary = response.json()
    assert summary["reference_date"] == "2017-12-30"
    assert (summary["period_start"], summary["period_end"]) == ("2016-12-31", "2017-12-30")
    assert summary["active_customers"] == 693
    assert summary["total_sales"] == 733947.02
    assert summary["thresholds"]["frequency"]["cuts"] == [1, 2, 3, 4]
    assert summary["thresholds"]["monetary"]["cuts"] == [130, 420, 840, 1600]
    assert summary["thresholds"]["recency"]["cuts"] == [22, 43, 82, 145]
    assert all(t["source"] == "automatic" for t in summary["thresholds"].values())
    assert _segment(summary, "champion")["customers"] == 68
    assert [s["key"] for s in summary["segments"]][:3] == ["champion", "loyalist", "potential_loyalist"]
    assert sum(s["customers"] for s in summary["segments"]) == 693
    assert summary["configuration_version"] == 1
    assert summary["threshold_set"] is None


@needs_superstore
async def test_removal_then_min_position_shows_the_new_numbers(client: AsyncTestClient[Any]) -> None:
    database, _ = await configured_superstore(client)

    removed = await client.post(
        f"/databases/{database}/removals",
        json={"dimension": "Region", "values": ["Central"], "reason": "Central office closed"},
        headers=ADMIN_B,
    )
    assert removed.status_code == 201, removed.text
    body = removed.json()
    assert removed.headers["etag"] == f'"{body["version"]}"'
    summary = (
        await client.get(
            f"/databases/{database}/segmentation", params={"min_position": body["position"]}, headers=ANALYST
        )
    ).json()

    assert summary["configuration_version"] == body["version"] == 2
    assert 0 < summary["active_customers"] < 693
    # A customer with any Central transaction is gone, whatever else they bought.
    customer = (await client.get(f"/databases/{database}/customers/CG-12520", headers=ANALYST)).json()
    assert customer["removed"] is True
    assert customer["removed_by"][0]["rule_id"] == body["rule_id"]
    assert customer["removed_by"][0]["created_by"] == "bob"
    assert customer["segment"] is None

    restored = await client.request(
        "DELETE",
        f"/databases/{database}/removals/{body['rule_id']}",
        json={"reason": "reopened"},
        headers=ADMIN,
    )
    assert restored.status_code == 200, restored.text
    again = (
        await client.get(
            f"/databases/{database}/segmentation",
            params={"min_position": restored.json()["position"]},
            headers=ANALYST,
        )
    ).json()
    assert again["active_customers"] == 693
    assert _segment(again, "champion")["customers"] == 68


@needs_superstore
async def test_threshold_set_applies_to_a_filtered_view(client: AsyncTestClient[Any]) -> None:
    database, _ = await configured_superstore(client)
    created = await client.post(
        f"/databases/{database}/threshold-sets",
        json={
            "name": "Corporate",
            "criteria": {"Segment": ["Corporate"]},
            "thresholds": {"monetary": [200, 500, 1000, 2000]},
            "reason": "corporate accounts spend more",
        },
        headers=ADMIN,
    )
    assert created.status_code == 201, created.text
    position = created.json()["position"]

    filtered = await client.get(
        f"/databases/{database}/segmentation",
        params={"filter": "Segment:Corporate", "min_position": position},
        headers=ANALYST,
    )
    unfiltered_other = await client.get(
        f"/databases/{database}/segmentation", params={"filter": "Segment:Consumer"}, headers=ANALYST
    )

    summary = filtered.json()
    assert summary["threshold_set"] == {"id": created.json()["threshold_set_id"], "name": "Corporate"}
    assert summary["thresholds"]["monetary"] == {
        "cuts": [200, 500, 1000, 2000],
        "source": "threshold_set",
        "automatic": False,
    }
    assert summary["filters"] == {"Segment": ["Corporate"]}
    assert 0 < summary["active_customers"] < 693
    other = unfiltered_other.json()
    assert other["threshold_set"] is None
    assert other["thresholds"]["monetary"]["cuts"] == [130, 420, 840, 1600]  # defaults, unfiltered population
    # The same filtered view again comes from the cache, computed from the same versions.
    again = await client.get(
        f"/databases/{database}/segmentation", params={"filter": "Segment:Corporate"}, headers=ANALYST
    )
    assert again.json()["computed_at"] == summary["computed_at"]

    rows = await client.get(
        f"/databases/{database}/segmentation/customers",
        params={"filter": "Segment:Corporate", "limit": 1000},
        headers=ANALYST,
    )
    assert rows.json()["total"] == summary["active_customers"]


@needs_superstore
async def test_customers_listing_search_sort_and_csv(client: AsyncTestClient[Any]) -> None:
    database, position = await configured_superstore(client)
    params: dict[str, Any] = {
        "min_position": position,
        "segment": "champion",
        "sort": "-monetary",
        "limit": 5,
    }

    page = (
        await client.get(f"/databases/{database}/segmentation/customers", params=params, headers=ANALYST)
    ).json()

    assert page["total"] == 68
    assert len(page["items"]) == 5
    monetary = [row["monetary"] for row in page["items"]]
    assert monetary == sorted(monetary, reverse=True)
    assert set(page["items"][0]) >= {
        "code",
        "name",
        "segment",
        "recency_days",
        "last_purchase",
        "frequency",
        "r",
    }
    found = (
        await client.get(
            f"/databases/{database}/segmentation/customers", params={"search": "claire gute"}, headers=ANALYST
        )
    ).json()
    assert [row["code"] for row in found["items"]] == ["CG-12520"]
    csv_text = (await client.get(f"/databases/{database}/segmentation/customers.csv", headers=ANALYST)).text
    lines = csv_text.strip().split("\n")
    assert lines[0].startswith("code,name,segment")
    assert len(lines) == 694


@needs_superstore
async def test_audit_names_actors_and_reasons(client: AsyncTestClient[Any]) -> None:
    database, _ = await configured_superstore(client)
    removed = await client.post(
        f"/databases/{database}/removals",
        json={"dimension": None, "values": ["CG-12520", "AA-10315"], "reason": "internal accounts"},
        headers=ADMIN_B,
    )
    position = removed.json()["position"]

    audit = await client.get(
        f"/databases/{database}/audit", params={"min_position": position}, headers=AUDITOR
    )
    by_bob = await client.get(f"/databases/{database}/audit", params={"actor": "bob"}, headers=AUDITOR)
    as_analyst = await client.get(f"/databases/{database}/audit", headers=ANALYST)

    items = audit.json()["items"]
    assert [e["type"] for e in items] == [
        "DatabaseRegistered",
        "BatchImported",
        "DatabaseConfigured",
        "CustomersRemoved",
    ]
    assert items[2]["actor"] == "alice" and items[2]["reason"] == "initial setup"
    assert [e["position"] for e in items] == sorted(e["position"] for e in items)
    assert by_bob.json()["items"][0]["details"]["values"] == ["CG-12520", "AA-10315"]
    assert by_bob.json()["items"][0]["reason"] == "internal accounts"
    assert as_analyst.status_code == 403
    exclusions = (await client.get(f"/databases/{database}/audit/exclusions", headers=AUDITOR)).json()
    assert exclusions["rules"][0]["customers"] == ["AA-10315", "CG-12520"]
    assert exclusions["rules"][0]["created_by"] == "bob"


@needs_superstore
async def test_as_of_sets_the_reference_date_of_a_view(client: AsyncTestClient[Any]) -> None:
    database, position = await configured_superstore(client)

    response = await client.get(
        f"/databases/{database}/segmentation",
        params={"as_of": "2016-12-30", "min_position": position},
        headers=ANALYST,
    )

    summary = response.json()
    assert (summary["reference_date"], summary["period_start"]) == ("2016-12-30", "2015-12-31")
    assert 0 < summary["active_customers"] != 693
    assert summary["configuration_version"] == 1
