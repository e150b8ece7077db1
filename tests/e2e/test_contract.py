"""The HTTP contract: every path of http-api.md is served and documented, and every route of the
OpenAPI document enforces the role http-api.md gives it."""

from __future__ import annotations

import re
from typing import Any

import pytest
from litestar.testing import AsyncTestClient

from tests.conftest import PROJECT

HTTP_API = PROJECT.parent / "shared" / "spec" / "http-api.md"
KEYS = {
    None: {},
    "unknown": {"Authorization": "Bearer not-a-key"},
    "analyst": {"Authorization": "Bearer analyst-key"},
    "auditor": {"Authorization": "Bearer auditor-key"},
    "admin": {"Authorization": "Bearer admin-key"},
}
RANK = {"analyst": 0, "auditor": 1, "admin": 2}
PUBLIC = {"/health", "/ready", "/metrics"}


def needed_role(method: str, path: str) -> str | None:
    """http-api.md's role table: commands are admin's, the audit auditor's, the rest analyst's."""
    if path in PUBLIC:
        return None
    if method != "get":
        return "admin"
    if path == "/audit" or "/audit" in path:
        return "auditor"
    return "analyst"


def _contract_paths() -> set[tuple[str, str]]:
    text = HTTP_API.read_text()
    found = set(re.findall(r"`(GET|POST|PUT|PATCH|DELETE) (/[^`\s]*)`", text))
    return {(method.lower(), path) for method, path in found}


@pytest.mark.skipif(not HTTP_API.exists(), reason=f"the contract is not at {HTTP_API}")
async def test_every_path_of_the_contract_is_in_the_schema(client: AsyncTestClient[Any]) -> None:
    schema = (await client.get("/schema/openapi.json")).json()
    served = {(method, path) for path, item in schema["paths"].items() for method in item}

    missing = _contract_paths() - served

    assert not missing, f"in http-api.md but not served: {sorted(missing)}"


async def test_every_route_enforces_its_role(client: AsyncTestClient[Any]) -> None:
    schema = (await client.get("/schema/openapi.json")).json()
    checked = 0
    for path, item in schema["paths"].items():
        for method in item:
            if method not in ("get", "post", "put", "patch", "delete"):
                continue
            url = re.sub(r"\{[^}]+\}", "x", path)
            role = needed_role(method, path)
            for name, headers in KEYS.items():
                kwargs: dict[str, Any] = {"headers": headers}
                if method != "get":
                    kwargs["json"] = {}
                status = (await client.request(method.upper(), url, **kwargs)).status_code
                if role is None:
                    assert status not in (401, 403), (method, path, name, status)
                elif name in (None, "unknown"):
                    assert status == 401, (method, path, name, status)
                elif RANK[name] < RANK[role]:
                    assert status == 403, (method, path, name, status)
                else:
                    assert status not in (401, 403), (method, path, name, status)
                checked += 1
    assert checked >= 5 * 20  # every operation, five callers each
