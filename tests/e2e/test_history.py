"""Replaying history on the Superstore file: every version answers as a fresh computation would.

The expected answers are computed here independently: the test writes its own Parquet files
from the CSV and calls the engine with a spec it builds itself, never reading the event store.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
from litestar.testing import AsyncTestClient

from service.projections.documents import summary_document
from service.segmentation import RemovalRule, SegmentationSpec, ThresholdSetSpec, compute
from tests.conftest import ADMIN, ADMIN_B, ADMIN_C, ANALYST, AUDITOR, SUPERSTORE, needs_superstore
from tests.e2e.conftest import import_superstore

pytestmark = needs_superstore

EXTRA_ROWS = [
    # A new customer and a new purchase by an existing one, late in the period.
    '90001,"CA-2017-900001","12/20/2017","12/22/2017","First Class","ZZ-99999","Zed Zulu",'
    '"Consumer","United States","Austin","Texas","78701","Central","OFF-PA-1","Office Supplies",'
    '"Paper","Paper",999.99,3,0,100',
    '90002,"CA-2017-900002","12/28/2017","12/30/2017","First Class","CG-12520","Claire Gute",'
    '"Consumer","United States","Henderson","Kentucky","42420","South","OFF-PA-1","Office Supplies",'
    '"Paper","Paper",12.5,1,0,2',
]

BASE = {
    "customer_column": "Customer ID",
    "name_column": "Customer Name",
    "date_column": "Order Date",
    "sales_column": "Sales",
    "purchase_column": "Order ID",
}


def _parquet(tmp: Path, csv_text: str, name: str) -> str:
    source = tmp / f"{name}.csv"
    source.write_text(csv_text)
    target = tmp / f"{name}.parquet"
    duckdb.execute(
        f"COPY (SELECT * FROM read_csv('{source}', header=true, dateformat='%m/%d/%Y')) "
        f"TO '{target}' (FORMAT parquet)"
    )
    return str(target)


def _expected(
    files: list[str], spec: SegmentationSpec, filters: dict[str, list[str]] | None = None
) -> dict[str, Any]:
    document = summary_document("x", compute(files, spec, filters), 0, 0)
    return {
        k: v
        for k, v in document.items()
        if k not in ("database", "configuration_version", "data_version", "computed_at")
    }


def _comparable(summary: dict[str, Any]) -> dict[str, Any]:
    return {
        k: v
        for k, v in summary.items()
        if k not in ("database", "configuration_version", "data_version", "computed_at")
    }


async def _summary(client: AsyncTestClient[Any], database: str, **params: Any) -> dict[str, Any]:
    response = await client.get(f"/databases/{database}/segmentation", params=params, headers=ANALYST)
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


async def test_every_version_of_a_history_replays_as_a_fresh_computation(
    client: AsyncTestClient[Any], tmp_path: Path
) -> None:
    database = f"history-{uuid.uuid4().hex[:8]}"
    path = f"/databases/{database}"
    await import_superstore(client, database)

    v1 = (await client.put(f"{path}/configuration", json={**BASE, "reason": "setup"}, headers=ADMIN)).json()
    removal = (
        await client.post(
            f"{path}/removals",
            json={"dimension": "Region", "values": ["Central"], "reason": "Central office closed"},
            headers=ADMIN_B,
        )
    ).json()
    threshold_set = (
        await client.post(
            f"{path}/threshold-sets",
            json={
                "name": "Corporate",
                "criteria": {"Segment": ["Corporate"]},
                "thresholds": {"monetary": [200, 500, 1000, 2000]},
            },
            headers=ADMIN,
        )
    ).json()
    v4 = (await client.patch(f"{path}/configuration", json={"grouping": 5}, headers=ADMIN)).json()
    await asyncio.sleep(0.01)
    v5 = (
        await client.request(
            "DELETE", f"{path}/removals/{removal['rule_id']}", json={"reason": "reopened"}, headers=ADMIN_C
        )
    ).json()
    await asyncio.sleep(0.01)
    imported = await client.post(
        f"{path}/imports",
        params={"date_format": "%m/%d/%Y"},
        content=(SUPERSTORE.read_text().split("\n", 1)[0] + "\n" + "\n".join(EXTRA_ROWS) + "\n").encode(),
        headers={**ADMIN, "Content-Type": "text/csv"},
    )
    assert imported.status_code == 201, imported.text
    after_import = datetime.now(UTC)
    assert [v1["version"], removal["version"], threshold_set["version"], v4["version"], v5["version"]] == [
        1,
        2,
        3,
        4,
        5,
    ]

    # The independent computation: our own Parquet files, our own specs.
    original = _parquet(tmp_path, SUPERSTORE.read_text(), "original")
    extra = _parquet(
        tmp_path, SUPERSTORE.read_text().split("\n", 1)[0] + "\n" + "\n".join(EXTRA_ROWS) + "\n", "extra"
    )
    central = (RemovalRule(removal["rule_id"], "Region", ("Central",)),)
    corporate = (
        ThresholdSetSpec(
            threshold_set["threshold_set_id"],
            "Corporate",
            {"Segment": ("Corporate",)},
            {"monetary": (200, 500, 1000, 2000)},
            order=3,
        ),
    )
    specs = {
        1: SegmentationSpec(**BASE),
        2: SegmentationSpec(**BASE, removals=central),
        3: SegmentationSpec(**BASE, removals=central, threshold_sets=corporate),
        4: SegmentationSpec(**BASE, grouping=5, removals=central, threshold_sets=corporate),
        5: SegmentationSpec(**BASE, grouping=5, threshold_sets=corporate),
    }

    for version, spec in specs.items():
        replayed = await _summary(client, database, version=version)
        assert replayed["configuration_version"] == version
        assert _comparable(replayed) == _expected([original], spec), f"version {version}"
        filtered = await _summary(client, database, version=version, filter="Segment:Corporate")
        assert _comparable(filtered) == _expected([original], spec, {"Segment": ["Corporate"]}), version

    now = await _summary(
        client, database, at=after_import.isoformat(), min_position=imported.json()["position"]
    )
    assert _comparable(now) == _expected([original, extra], specs[5])
    current = await _summary(client, database)
    assert _comparable(current) == _comparable(now)
    assert current["active_customers"] == now["active_customers"] == 694

    # A replay is served from Redis the second time: the same computation, not a new one.
    again = await _summary(client, database, version=2)
    assert again["computed_at"] == (await _summary(client, database, version=2))["computed_at"]

    # Versions that never existed, instants before the first configuration.
    missing = await client.get(f"{path}/segmentation", params={"version": 99}, headers=ANALYST)
    assert missing.status_code == 404 and "does not exist" in missing.json()["detail"]
    early = await client.get(f"{path}/segmentation", params={"at": "2001-01-01T00:00:00Z"}, headers=ANALYST)
    assert early.status_code == 404 and "not configured" in early.json()["detail"]
    past_config = (await client.get(f"{path}/configuration", params={"version": 2}, headers=ANALYST)).json()
    assert past_config["version"] == 2 and past_config["grouping"] == 10
    assert [r["rule_id"] for r in past_config["removal_rules"]] == [removal["rule_id"]]

    # Who excluded which customers, and when.
    audit = (await client.get(f"{path}/audit", params={"type": "CustomersRemoved"}, headers=AUDITOR)).json()
    assert [(e["actor"], e["reason"]) for e in audit["items"]] == [("bob", "Central office closed")]
    restored = (await client.get(f"{path}/audit", params={"actor": "carol"}, headers=AUDITOR)).json()
    assert [e["type"] for e in restored["items"]] == ["CustomersRestored"]
    everyone = (await client.get("/audit", params={"actor": "bob"}, headers=AUDITOR)).json()
    assert {e["database"] for e in everyone["items"]} >= {database}
    exclusions = (await client.get(f"{path}/audit/exclusions", headers=AUDITOR)).json()
    rule = exclusions["rules"][0]
    assert (rule["created_by"], rule["reason"], rule["restored_by"], rule["active"]) == (
        "bob",
        "Central office closed",
        "carol",
        False,
    )
    central_customers = duckdb.execute(
        f"SELECT DISTINCT \"Customer ID\" FROM read_parquet(['{original}', '{extra}']) "
        "WHERE Region = 'Central' ORDER BY 1"
    ).fetchall()
    assert rule["customers"] == [c for (c,) in central_customers]
    created_at = datetime.fromisoformat(rule["created_at"])
    then = (
        await client.get(f"{path}/audit/exclusions", params={"at": created_at.isoformat()}, headers=AUDITOR)
    ).json()
    assert then["rules"][0]["active"] is True
    assert "ZZ-99999" not in then["rules"][0]["customers"]  # imported later
    assert "ZZ-99999" in rule["customers"]

    customer = (await client.get(f"{path}/customers/CG-12520", headers=ANALYST)).json()
    assert customer["removed"] is False and customer["segment"] is not None
    assert [(e["created_by"], e["in_force"]) for e in customer["exclusions"]] == [("bob", False)]
    at_v2 = (await client.get(f"{path}/customers/CG-12520", params={"version": 2}, headers=ANALYST)).json()
    assert at_v2["removed"] is True and at_v2["segment"] is None


async def test_movement_between_versions(client: AsyncTestClient[Any]) -> None:
    database = f"movement-{uuid.uuid4().hex[:8]}"
    path = f"/databases/{database}"
    await import_superstore(client, database)
    await client.put(f"{path}/configuration", json=BASE, headers=ADMIN)
    await client.post(f"{path}/removals", json={"dimension": "Region", "values": ["Central"]}, headers=ADMIN)

    movement = (
        await client.get(f"{path}/segmentation/movement", params={"from": 1, "to": 2}, headers=ANALYST)
    ).json()
    first = await _summary(client, database, version=1)
    second = await _summary(client, database, version=2)

    assert sum(c["customers"] for c in movement["cells"]) == movement["active_in_either"]
    assert movement["active_in_either"] == first["active_customers"]  # removal only takes customers away
    assert movement["entered"] == 0
    assert movement["left"] == first["active_customers"] - second["active_customers"]
    left = (
        await client.get(
            f"{path}/segmentation/movement",
            params={"from": 1, "to": 2, "segment_from": "champion", "segment_to": "none"},
            headers=ANALYST,
        )
    ).json()
    cell = next(c for c in movement["cells"] if c["from"] == "champion" and c["to"] is None)
    assert left["total"] == cell["customers"] and all(m["segment_to"] is None for m in left["customers"])
    bad = await client.get(
        f"{path}/segmentation/movement", params={"from": "yesterday", "to": 2}, headers=ANALYST
    )
    assert bad.status_code == 400
