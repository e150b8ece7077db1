"""``/metrics`` in Prometheus text format, and the HTTP request counter behind it.

Projection figures come from Redis (every process sees the projectors' counters); HTTP counts
are this process's own, labelled with its pid, as each worker is scraped or summed on its own.
"""

from __future__ import annotations

import asyncio
import os
from collections import Counter
from typing import Any

from litestar import Controller, Request, Response, get
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from service.handlers.common import services

#: (method, route, status) -> requests, for this process.
HTTP_REQUESTS: Counter[tuple[str, str, int]] = Counter()


def count_requests(app: ASGIApp) -> ASGIApp:
    """ASGI middleware: count every HTTP response by method, route template and status."""

    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await app(scope, receive, send)
            return
        status = 500

        async def capture(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await app(scope, receive, capture)
        finally:
            route = scope.get("path_template") or "unmatched"  # type: ignore[typeddict-item]
            HTTP_REQUESTS[(str(scope.get("method", "")), route, status)] += 1

    return middleware


def _line(name: str, value: float, **labels: Any) -> str:
    if labels:
        text = ",".join(f'{k}="{str(v).replace(chr(34), chr(39))}"' for k, v in labels.items())
        return f"{name}{{{text}}} {value}"
    return f"{name} {value}"


class MetricsController(Controller):
    """Prometheus metrics: no key needed, no customer data."""

    path = "/metrics"
    tags = ["operations"]

    @get("/", summary="Prometheus metrics", media_type="text/plain; version=0.0.4")
    async def metrics(self, request: Request[Any, Any, Any]) -> Response[str]:
        svc = services(request)
        lines: list[str] = []
        head = await asyncio.to_thread(svc.app.head_position)
        lines += [
            "# HELP segmentation_event_store_position The newest position in the event store.",
            "# TYPE segmentation_event_store_position gauge",
            _line("segmentation_event_store_position", head),
        ]
        try:
            position = await svc.read.position()
            stats = await svc.read.stats()
        except Exception:  # Redis down: the lag is unknown, say so by leaving it out
            position, stats = None, {}
        if position is not None:
            lines += [
                "# HELP segmentation_projection_lag Events recorded but not yet in the read model.",
                "# TYPE segmentation_projection_lag gauge",
                _line("segmentation_projection_lag", max(head - position, 0), projection="segmentation"),
                "# HELP segmentation_projection_position The last position applied to the read model.",
                "# TYPE segmentation_projection_position gauge",
                _line("segmentation_projection_position", position, projection="segmentation"),
            ]
        for name, key, text in (
            ("segmentation_events_processed_total", "events", "Events applied by the projectors."),
            ("segmentation_projection_batches_total", "batches", "Batches applied by the projectors."),
            (
                "segmentation_recomputations_total",
                "recomputations",
                "Segmentations recomputed by the projectors.",
            ),
            (
                "segmentation_recomputation_seconds_total",
                "recompute_seconds",
                "Seconds spent recomputing segmentations.",
            ),
        ):
            lines += [f"# HELP {name} {text}", f"# TYPE {name} counter", _line(name, stats.get(key, 0.0))]
        lines += [
            "# HELP segmentation_http_requests_total HTTP requests answered by this process.",
            "# TYPE segmentation_http_requests_total counter",
        ]
        pid = os.getpid()
        for (method, route, status), count in sorted(HTTP_REQUESTS.items()):
            lines.append(
                _line(
                    "segmentation_http_requests_total",
                    count,
                    method=method,
                    route=route,
                    status=status,
                    pid=pid,
                )
            )
        return Response("\n".join(lines) + "\n", media_type="text/plain; version=0.0.4")
