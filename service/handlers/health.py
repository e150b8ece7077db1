"""Liveness and readiness: no key needed, no customer data revealed."""

from __future__ import annotations

import asyncio
from typing import Any

from litestar import Controller, Request, Response, get

from service.handlers.common import services
from service.handlers.errors import problem
from service.projections.reader import ReadModelUnavailable


class HealthController(Controller):
    """``/health`` and ``/ready``."""

    path = "/"
    tags = ["operations"]

    @get("/health", summary="The process is up")
    async def health(self) -> dict[str, str]:
        return {"status": "ok"}

    @get("/ready", summary="The event store and Redis answer and the projections are running")
    async def ready(self, request: Request[Any, Any, Any]) -> Response[Any]:
        svc = services(request)
        problems: list[str] = []
        try:
            head = await asyncio.to_thread(svc.app.head_position)
        except Exception as exc:  # any failure of the store means not ready
            head = None
            problems.append(f"event store: {type(exc).__name__}: {exc}")
        position = None
        if not await svc.read.ping():
            problems.append("redis: not answering")
        else:
            try:
                position = await svc.read.position()
            except ReadModelUnavailable:
                problems.append("read model: not built yet")
            if await svc.read.rebuilding():
                problems.append(
                    "read model: rebuilding from the event store after Redis lost it "
                    f"(at {position} of {head})"
                )
            if not await svc.read.projector_alive():
                problems.append("projector: not running (no heartbeat in the last 5 s)")
        body = {
            "state": "ready" if not problems else "not ready",
            "event_store_position": head,
            "read_model_position": position,
            "lag": None if head is None or position is None else max(head - position, 0),
        }
        if problems:
            response = problem(503, "; ".join(problems))
            response.content.update(body)  # type: ignore[union-attr]
            return response
        return Response(body)
