"""API fuzzing: schemathesis generates requests from the app's own OpenAPI document.

The real stack (SQLite event store, real Redis, the projector) is served by uvicorn on a local
port, with one configured database so that ``{database}`` sometimes names real data. Every
operation gets at most 25 examples from a fixed seed (``derandomize``), so the run is bounded
and repeatable; it must find no 5xx and no response that breaks the document.
"""

from __future__ import annotations

import socket
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import msgspec
import pytest
import schemathesis
import uvicorn
from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from service.app import create_app
from service.settings import Settings
from tests.conftest import ADMIN, SMALL_DATABASE_CSV

DATABASE = "fuzzed"
CONFIG = {
    "customer_column": "customer",
    "name_column": "name",
    "date_column": "day",
    "sales_column": "amount",
    "purchase_column": "order",
}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory, redis_url: str) -> Iterator[str]:
    """The app under uvicorn on a free local port, seeded with a configured database."""
    data = tmp_path_factory.mktemp("fuzz")
    app = create_app(
        Settings(
            data_dir=Path(data) / "data",
            redis_url=redis_url,
            redis_prefix=f"test-{uuid.uuid4().hex[:10]}",
            api_keys="admin-key:alice:admin,analyst-key:ann:analyst,auditor-key:audrey:auditor",
            poll_interval=0.02,
        )
    )
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    with httpx.Client(base_url=base, headers=ADMIN, timeout=30) as client:
        imported = client.post(
            f"/databases/{DATABASE}/imports", content=SMALL_DATABASE_CSV, headers={"Content-Type": "text/csv"}
        )
        assert imported.status_code == 201, imported.text
        configured = client.put(f"/databases/{DATABASE}/configuration", json={**CONFIG, "reason": "seed"})
        assert configured.status_code == 201, configured.text
        position = configured.json()["position"]
        ready = client.get(f"/databases/{DATABASE}/segmentation", params={"min_position": position})
        assert ready.status_code == 200, ready.text
    try:
        yield base
    finally:
        server.should_exit = True
        thread.join(timeout=30)


def _document() -> dict[str, Any]:
    """The OpenAPI document the app serves at /schema/openapi.json (building the app connects
    nothing, so this runs at collection time; the requests go to the served app)."""
    document = create_app(Settings()).openapi_schema.to_schema()
    return msgspec.json.decode(msgspec.json.encode(document))  # type: ignore[no-any-return]


# The lazy ``schemathesis.pytest.from_fixture`` does not run on pytest 9 (it reads a node
# attribute pytest removed); a schema loaded at collection time does.
schema = schemathesis.openapi.from_dict(_document())


@schema.hook  # type: ignore[misc]
def flatmap_path_parameters(context: Any, path_parameters: dict[str, Any] | None) -> Any:
    # Half the generated names are the seeded database, so paths reach real data.
    if not path_parameters or "database" not in path_parameters:
        return st.just(path_parameters)
    return st.sampled_from([path_parameters, {**path_parameters, "database": DATABASE}])


@schema.hook  # type: ignore[misc]
def map_query(context: Any, query: dict[str, Any] | None) -> Any:
    # A min_position beyond the head is a documented 503 after a 5 s wait: keep the positions
    # reachable, so a 5xx is always a finding and the run stays within its budget.
    if query and isinstance(query.get("min_position"), int) and query["min_position"] >= 0:
        return {**query, "min_position": query["min_position"] % 4}
    return query


@schema.parametrize()
# The import's NDJSON and Parquet bodies have no generator; its CSV body is fuzzed.
@pytest.mark.filterwarnings("ignore:Skipped test cases with unsupported payload media types")
@settings(
    max_examples=25,
    derandomize=True,
    deadline=None,
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=list(HealthCheck),
)
def test_the_api_answers_every_generated_request_as_documented(case: Any, served: str) -> None:
    case.call_and_validate(
        base_url=served,
        headers=ADMIN,
        timeout=30,
        checks=[
            not_a_server_error,
            status_code_conformance,
            content_type_conformance,
            response_schema_conformance,
        ],
    )
