"""Names of every Redis key of the read model, in one place.

Keys are namespaced by a prefix (one per service deployment) and a schema version; a change of
the documents' shape bumps the version and is rebuilt beside the old one.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

SCHEMA = "v1"


@dataclass(frozen=True)
class Keys:
    """Key names under ``{prefix}:v1``."""

    prefix: str = "seg"

    @property
    def root(self) -> str:
        return f"{self.prefix}:{SCHEMA}"

    @property
    def position(self) -> str:
        """The notification id of the last event applied to the read model."""
        return f"{self.root}:position"

    @property
    def heartbeat(self) -> str:
        """Set with a short expiry by a running projector."""
        return f"{self.root}:projector:heartbeat"

    @property
    def audit(self) -> str:
        """The audit entries of every database, in position order."""
        return f"{self.root}:audit"

    @property
    def databases(self) -> str:
        """The set of database names."""
        return f"{self.root}:databases"

    def db(self, database: str, part: str) -> str:
        """One document of a database: data, config, meta, summary, customers, customer, removed."""
        return f"{self.root}:db:{database}:{part}"

    def database_parts(self, database: str) -> list[str]:
        """Every key a database's default view owns."""
        return [
            self.db(database, p)
            for p in ("data", "config", "meta", "summary", "customers", "customer", "removed", "error")
        ]

    def view(
        self, database: str, configuration_version: int, data_version: int, query: dict[str, object]
    ) -> str:
        """A computed view (filtered, or at another reference date), named by the versions it
        was computed from, so a cached answer can never be stale."""
        digest = hashlib.sha256(json.dumps(query, sort_keys=True).encode()).hexdigest()[:24]
        return f"{self.root}:view:{database}:{configuration_version}:{data_version}:{digest}"

    @property
    def pattern(self) -> str:
        """Matches every key of this read model (for a rebuild)."""
        return f"{self.root}:*"
