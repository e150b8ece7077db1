"""The composition root: ``create_app(settings)`` and the lifespan owning every long-lived client."""

from __future__ import annotations

import logging
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from http import HTTPStatus
from pathlib import Path
from typing import Any

import redis
import redis.asyncio as aioredis
from litestar import Litestar
from litestar._openapi.plugin import OpenAPIPlugin
from litestar.handlers import HTTPRouteHandler
from litestar.openapi import OpenAPIConfig, ResponseSpec
from litestar.openapi.spec import (
    Components,
    OpenAPIFormat,
    OpenAPIMediaType,
    OpenAPIType,
    RequestBody,
    Schema,
    SecurityScheme,
)

from service.application import SegmentationApplication
from service.auth import KeyStore
from service.handlers.audit import AuditController, GlobalAuditController
from service.handlers.commands import (
    ConfigurationController,
    ImportController,
    RemovalController,
    ThresholdSetController,
)
from service.handlers.common import Services
from service.handlers.errors import EXCEPTION_HANDLERS, PROBLEM_JSON
from service.handlers.health import HealthController
from service.handlers.metrics import MetricsController, count_requests
from service.handlers.queries import DatabaseController, SegmentationController
from service.handlers.schemas import Problem
from service.logs import configure_logging
from service.projections.keys import Keys
from service.projections.reader import ReadModel
from service.projections.segmentation import SegmentationProjector
from service.redis_server import EmbeddedRedis
from service.settings import Settings
from service.storage import BatchStorage

log = logging.getLogger(__name__)


def build_application(settings: Settings) -> SegmentationApplication:
    """The eventsourcing application on the configured event store."""
    return SegmentationApplication(BatchStorage(settings.data_dir), env=settings.application_env())


class Runtime:
    """Everything the service runs: Redis (embedded if no URL), the application, the projector."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.embedded: EmbeddedRedis | None = None
        self.redis_url = settings.redis_url
        self.app: SegmentationApplication | None = None
        self.projector: SegmentationProjector | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self, run_projector: bool) -> None:
        """Start Redis if needed, open the event store, and start the projector thread.

        Without ``REDIS_URL``, the embedded server another process of this data directory runs
        (``serve``) is used if it answers, so ``project`` and ``rebuild`` work on its read model;
        otherwise this process starts one and notes its URL in the data directory.
        """
        if self.redis_url is None:
            self.redis_url = _running_embedded(self.settings.data_dir)
        if self.redis_url is None:
            self.embedded = EmbeddedRedis(self.settings.data_dir / "redis")
            self.redis_url = self.embedded.start()
            (self.settings.data_dir / "redis" / "url").write_text(self.redis_url)
            log.info("embedded Redis at %s", self.redis_url)
        self.app = build_application(self.settings)
        if run_projector:
            client = redis.Redis.from_url(self.redis_url)
            self.projector = SegmentationProjector(self.app, client, Keys(self.settings.redis_prefix))
            self._thread = threading.Thread(
                target=self.projector.run,
                args=(self._stop, self.settings.poll_interval),
                name="segmentation-projector",
                daemon=True,
            )
            self._thread.start()

    def stop(self) -> None:
        """Stop the projector, close the store, stop an embedded Redis."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
        if self.projector is not None:
            self.projector.redis.close()
        if self.app is not None:
            self.app.close()
        if self.embedded is not None:
            (self.settings.data_dir / "redis" / "url").unlink(missing_ok=True)
            self.embedded.stop()


def _running_embedded(data_dir: Path) -> str | None:
    """The URL of an embedded Redis another process started for this data directory, if alive."""
    note = data_dir / "redis" / "url"
    if not note.exists():
        return None
    url = note.read_text().strip()
    try:
        redis.Redis.from_url(url, socket_connect_timeout=1).ping()
    except redis.RedisError:
        return None
    return url


def create_app(settings: Settings | None = None) -> Litestar:
    """The Litestar app; nothing connects until its lifespan starts."""
    settings = settings or Settings.from_env()
    if settings.log_format == "json":  # worker processes configure their own logging
        configure_logging("json")

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        runtime = Runtime(settings)
        runtime.start(run_projector=settings.projector)
        assert runtime.app is not None and runtime.redis_url is not None
        client = aioredis.Redis.from_url(runtime.redis_url)
        keys = KeyStore(settings.data_dir / "keys.json", settings.api_keys)
        app.state.services = Services(
            settings=settings,
            app=runtime.app,
            read=ReadModel(client, Keys(settings.redis_prefix)),
            keys=keys,
        )
        app.state.runtime = runtime
        try:
            yield
        finally:
            await client.aclose()
            runtime.stop()

    app = Litestar(
        route_handlers=[
            HealthController,
            MetricsController,
            ImportController,
            ConfigurationController,
            RemovalController,
            ThresholdSetController,
            DatabaseController,
            SegmentationController,
            AuditController,
            GlobalAuditController,
        ],
        lifespan=[lifespan],
        exception_handlers=EXCEPTION_HANDLERS,
        middleware=[count_requests],
        # JSON bodies; the import route streams its own, larger limit (max_upload_bytes).
        request_max_body_size=settings.max_body_bytes,
        openapi_config=OpenAPIConfig(
            title="Customer segmentation",
            version="0.1.0",
            description="RFM customer segmentation as an event-sourced service.",
            components=Components(
                security_schemes={
                    "api_key": SecurityScheme(
                        type="http", scheme="bearer", description="Authorization: Bearer <api key>"
                    )
                }
            ),
        ),
        debug=False,
    )
    _document_errors_and_security(app)
    return app


#: The paths that need no key (http-api.md): they reveal no customer data.
PUBLIC_PATHS = frozenset({"/health", "/ready", "/metrics"})


def _document_errors_and_security(app: Litestar) -> None:
    """Every guarded operation names its key scheme and its problem+json errors in /schema."""
    for route in app.routes:
        for handler in getattr(route, "route_handlers", []):
            if not isinstance(handler, HTTPRouteHandler) or "OPTIONS" in handler.http_methods:
                continue
            statuses: tuple[int, ...] = (503,)
            if handler.resolve_guards():
                statuses = (400, 401, 403, 404, 422, 503)
            if handler.http_methods & {"POST", "PUT", "PATCH", "DELETE"}:
                statuses += (412, 413)  # If-Match mismatch; a body over the limit
                if "PUT" in handler.http_methods and "configuration" in route.path:
                    statuses += (409,)  # already configured
                if route.path.endswith("/imports"):
                    statuses += (415,)  # not CSV, NDJSON or Parquet
            problems = {
                s: ResponseSpec(Problem, description=HTTPStatus(s).phrase, media_type=PROBLEM_JSON)
                for s in statuses
            }
            handler.responses = {**problems, **(handler.responses or {})}
    openapi = app.plugins.get(OpenAPIPlugin).provide_openapi()
    for path, item in (openapi.paths or {}).items():
        if path not in PUBLIC_PATHS:
            for operation in (item.get, item.put, item.post, item.patch, item.delete):
                if operation is not None:
                    operation.security = [{"api_key": []}]
        if item.delete is not None and isinstance(item.delete.request_body, RequestBody):
            item.delete.request_body.required = False  # the reason is optional
        if path.endswith("/imports") and item.post is not None:
            item.post.request_body = RequestBody(
                required=True,
                description="The sales rows; the whole file is validated before anything is stored.",
                content={
                    media: OpenAPIMediaType(
                        schema=Schema(type=OpenAPIType.STRING, format=OpenAPIFormat.BINARY)
                    )
                    for media in ("text/csv", "application/x-ndjson", "application/vnd.apache.parquet")
                },
            )


__all__: list[Any] = ["Runtime", "build_application", "create_app"]
