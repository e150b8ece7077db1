"""Every setting of the service, read from the environment once."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class Settings:
    """The service's settings; ``Settings.from_env()`` reads them from environment variables."""

    data_dir: Path = Path("data")
    """``SEGMENTATION_DATA_DIR``: batch files, the SQLite event store, the keys file, the embedded
    Redis's files. Default ``./data``."""

    redis_url: str | None = None
    """``REDIS_URL``: the Redis holding the read model. Unset: an embedded Valkey server is started
    under the data directory."""

    redis_prefix: str = "seg"
    """``SEGMENTATION_REDIS_PREFIX``: namespace of every Redis key, so several services (or test
    runs) can share one Redis. Default ``seg``."""

    event_store: str = "sqlite"
    """``SEGMENTATION_EVENT_STORE``: ``sqlite`` (a file ``events.sqlite`` in the data directory) or
    ``postgres`` (configured by eventsourcing's ``POSTGRES_DBNAME``, ``POSTGRES_HOST``,
    ``POSTGRES_PORT``, ``POSTGRES_USER``, ``POSTGRES_PASSWORD``, ``POSTGRES_SCHEMA``)."""

    eventsourcing_env: Mapping[str, str] = field(default_factory=dict)
    """The ``POSTGRES_*`` variables, passed to the eventsourcing application as they are."""

    api_keys: str = ""
    """``SEGMENTATION_API_KEYS``: comma-separated ``key:user:role`` entries, in addition to the
    keys file ``keys.json`` in the data directory."""

    projector: bool = True
    """``SEGMENTATION_PROJECTOR``: run the projector inside the API process (``1``/``0``)."""

    poll_interval: float = 0.1
    """``SEGMENTATION_POLL_INTERVAL``: seconds between polls of the event store's notification
    log when it has nothing new."""

    max_upload_bytes: int = 2 * 1024**3
    """``SEGMENTATION_MAX_UPLOAD_BYTES``: the largest import body accepted. Default 2 GiB."""

    max_body_bytes: int = 1024**2
    """``SEGMENTATION_MAX_BODY_BYTES``: the largest JSON body of a command; a larger one is ``413``.
    Default 1 MiB (imports have their own limit, ``SEGMENTATION_MAX_UPLOAD_BYTES``)."""

    view_cache_ttl: int = 86_400
    """``SEGMENTATION_VIEW_CACHE_TTL``: seconds a computed filtered view stays cached in Redis."""

    log_format: str = "text"
    """``SEGMENTATION_LOG_FORMAT``: ``text`` lines, or ``json`` (one object per line)."""

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Read every setting from ``environ`` (default: the process environment)."""
        env = os.environ if environ is None else environ
        return cls(
            data_dir=Path(env.get("SEGMENTATION_DATA_DIR", "data")),
            redis_url=env.get("REDIS_URL") or None,
            redis_prefix=env.get("SEGMENTATION_REDIS_PREFIX", "seg"),
            event_store=env.get("SEGMENTATION_EVENT_STORE", "sqlite").lower(),
            eventsourcing_env={k: v for k, v in env.items() if k.startswith("POSTGRES_")},
            api_keys=env.get("SEGMENTATION_API_KEYS", ""),
            projector=env.get("SEGMENTATION_PROJECTOR", "1") not in ("0", "false", "no"),
            poll_interval=float(env.get("SEGMENTATION_POLL_INTERVAL", "0.1")),
            max_upload_bytes=int(env.get("SEGMENTATION_MAX_UPLOAD_BYTES", str(2 * 1024**3))),
            max_body_bytes=int(env.get("SEGMENTATION_MAX_BODY_BYTES", str(1024**2))),
            view_cache_ttl=int(env.get("SEGMENTATION_VIEW_CACHE_TTL", "86400")),
            log_format=env.get("SEGMENTATION_LOG_FORMAT", "text").lower(),
        )

    def application_env(self) -> dict[str, str]:
        """The environment of the eventsourcing application for the chosen event store."""
        if self.event_store == "postgres":
            return {"PERSISTENCE_MODULE": "eventsourcing.postgres", **self.eventsourcing_env}
        if self.event_store == "sqlite":
            self.data_dir.mkdir(parents=True, exist_ok=True)
            return {
                "PERSISTENCE_MODULE": "eventsourcing.sqlite",
                "SQLITE_DBNAME": str(self.data_dir / "events.sqlite"),
                "SQLITE_LOCK_TIMEOUT": "10",
            }
        raise ValueError(f"SEGMENTATION_EVENT_STORE must be sqlite or postgres, not {self.event_store!r}")
