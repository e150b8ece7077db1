"""Names of every Redis key of the read model, in one place.

Keys are namespaced by a prefix (one per deployment) and a schema version, and the read model
itself lives in a **generation**: ``{prefix}:v1:current`` names the generation readers use. A
rebuild writes a new generation beside the one being served and switches ``current`` over in
one step once it has caught up; the old generation is deleted afterwards. A change of the
documents' shape bumps the schema version and is rebuilt the same way, never migrated in place.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass, replace

SCHEMA = "v1"


def new_generation() -> str:
    """A fresh generation name, ordered by creation time."""
    return f"g{time.time_ns()}"


@dataclass(frozen=True)
class Keys:
    """Key names under ``{prefix}:v1`` (control keys) and ``{prefix}:v1:{generation}`` (views)."""

    prefix: str = "seg"
    generation: str = "g0"

    def at(self, generation: str) -> Keys:
        """The same names in another generation."""
        return replace(self, generation=generation)

    # Control keys, shared by every generation.

    @property
    def control(self) -> str:
        return f"{self.prefix}:{SCHEMA}"

    @property
    def current(self) -> str:
        """The generation readers use."""
        return f"{self.control}:current"

    @property
    def rebuilding(self) -> str:
        """Set while a generation is being rebuilt because Redis lost the read model."""
        return f"{self.control}:rebuilding"

    @property
    def heartbeat(self) -> str:
        """Set with a short expiry by a running projector."""
        return f"{self.control}:projector:heartbeat"

    @property
    def stats(self) -> str:
        """Counters of the projectors (events, batches, recomputations, seconds)."""
        return f"{self.control}:stats"

    # Keys of one generation.

    @property
    def root(self) -> str:
        return f"{self.control}:{self.generation}"

    @property
    def position(self) -> str:
        """The notification id of the last event applied to this generation."""
        return f"{self.root}:position"

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
        parts = ("data", "config", "meta", "summary", "customers", "customer", "removed", "error")
        return [self.db(database, p) for p in parts]

    def view(
        self, database: str, configuration_version: int, data_version: int, query: dict[str, object]
    ) -> str:
        """A computed view (filtered, re-dated or replayed), named by the versions it was computed
        from, so a cached answer can never be stale."""
        digest = hashlib.sha256(json.dumps(query, sort_keys=True).encode()).hexdigest()[:24]
        return f"{self.root}:view:{database}:{configuration_version}:{data_version}:{digest}"

    @property
    def pattern(self) -> str:
        """Matches every key of this generation."""
        return f"{self.root}:*"
