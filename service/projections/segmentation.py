"""The segmentation projection: follows the event store's notification log into Redis.

For every batch of new notifications it finds the databases they touch, rebuilds each touched
database's documents once (however many of its events arrived together) from the aggregates at
exactly the versions the batch ends on, and writes the documents and the new tracking position
in one Redis transaction. The transaction watches the position, and a batch at or below the
stored position is refused, so replaying twice, or two projectors racing, changes nothing.

The eventsourcing library is synchronous and its SQLite recorder has no subscriptions, so the
projector polls ``select_notifications`` from a thread of its own.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

import msgspec
import redis

from service.aggregates.configuration import Configuration
from service.aggregates.sales_database import SalesDatabase
from service.application import SegmentationApplication
from service.projections.documents import (
    audit_entry,
    configuration_document,
    customer_rows,
    data_document,
    encode_rows,
    spec_from_document,
    summary_document,
)
from service.projections.keys import Keys
from service.segmentation import compute, removal_matches

log = logging.getLogger(__name__)

_CONFIG_TOPIC = f"{Configuration.__module__}:{Configuration.__qualname__}."
_DATA_TOPIC = f"{SalesDatabase.__module__}:{SalesDatabase.__qualname__}."


@dataclass
class ProjectorStats:
    """Counters a running projector keeps (exposed by /metrics later)."""

    events: int = 0
    batches: int = 0
    recomputations: int = 0
    recompute_seconds: float = 0.0
    errors: int = 0
    last_error: str | None = None
    touched: list[str] = field(default_factory=list)


class SegmentationProjector:
    """Applies the notification log to the Redis read model, in batches."""

    def __init__(
        self,
        app: SegmentationApplication,
        client: redis.Redis,
        keys: Keys,
        batch_size: int = 1000,
    ) -> None:
        self.app = app
        self.redis = client
        self.keys = keys
        self.batch_size = batch_size
        self.stats = ProjectorStats()
        self._databases: dict[UUID, str] = {}

    def position(self) -> int:
        """The last position applied to the read model (0 when empty)."""
        return int(self.redis.get(self.keys.position) or 0)

    def run_once(self) -> int:
        """Apply the next batch of notifications, if any; returns how many were applied."""
        start = self.position()
        notifications = self.app.recorder.select_notifications(
            start=start, limit=self.batch_size, inclusive_of_start=False
        )
        if not notifications:
            return 0
        return self.apply(notifications)

    def catch_up(self) -> int:
        """Apply everything up to the event store's head; returns how many were applied."""
        total = 0
        while applied := self.run_once():
            total += applied
        return total

    def run(self, stop: threading.Event, poll_interval: float = 0.1) -> None:
        """Follow the notification log until ``stop`` is set; survives Redis and store outages."""
        while not stop.is_set():
            try:
                self.redis.set(self.keys.heartbeat, str(time.time()), ex=5)
                if self.run_once() == 0:
                    stop.wait(poll_interval)
            except Exception as exc:  # keep following after any outage; the log says why
                self.stats.errors += 1
                self.stats.last_error = f"{type(exc).__name__}: {exc}"
                log.exception("projector error; retrying")
                stop.wait(max(poll_interval, 1.0))

    def apply(self, notifications: Sequence[Any]) -> int:
        """Apply one batch in one Redis transaction; notifications already applied are refused."""
        with self.redis.pipeline() as pipe:
            while True:
                try:
                    pipe.watch(self.keys.position)
                    current = int(pipe.get(self.keys.position) or 0)
                    fresh = [n for n in notifications if n.id > current]
                    if not fresh:
                        pipe.unwatch()
                        return 0
                    touched, audit = self._touched(fresh)
                    documents = {db: self._documents(pipe, db, versions) for db, versions in touched.items()}
                    pipe.multi()
                    for database, docs in documents.items():
                        self._write(pipe, database, docs)
                        pipe.rpush(self.keys.db(database, "audit"), *audit[database])
                    pipe.rpush(self.keys.audit, *[entry for entries in audit.values() for entry in entries])
                    pipe.set(self.keys.position, fresh[-1].id)
                    pipe.execute()
                except redis.WatchError:
                    continue  # another projector moved the position: re-read and refuse what it did
                self.stats.events += len(fresh)
                self.stats.batches += 1
                self.stats.touched = sorted(touched)
                return len(fresh)

    def _touched(
        self, notifications: Sequence[Any]
    ) -> tuple[dict[str, dict[str, int]], dict[str, list[bytes]]]:
        """Database -> {"config"/"data": the newest version of that aggregate in the batch},
        and database -> the batch's audit entries."""
        touched: dict[str, dict[str, int]] = {}
        audit: dict[str, list[bytes]] = {}
        for n in notifications:
            if n.topic.startswith(_CONFIG_TOPIC):
                kind = "config"
            elif n.topic.startswith(_DATA_TOPIC):
                kind = "data"
            else:
                continue
            event = self.app.mapper.to_domain_event(n)
            database = self._database_of(event)
            versions = touched.setdefault(database, {})
            versions[kind] = max(versions.get(kind, 0), n.originator_version)
            audit.setdefault(database, []).append(msgspec.json.encode(audit_entry(database, event, n.id)))
        return touched, audit

    def _database_of(self, event: Any) -> str:
        originator = event.originator_id
        if originator not in self._databases:
            database = getattr(event, "database", None)
            if database is None:
                database = self.app.repository.get(originator, version=1).database
            self._databases[originator] = database
        return self._databases[originator]

    def _documents(self, pipe: Any, database: str, versions: dict[str, int]) -> dict[str, Any]:
        """Every document of one database at the versions the batch ends on."""
        meta = msgspec.json.decode(pipe.get(self.keys.db(database, "meta")) or b"{}")
        config_version = versions.get("config", meta.get("configuration_version", 0))
        data_version = versions.get("data", meta.get("data_version", 0))
        sales = self.app.sales_database(database, version=data_version) if data_version else None
        configuration = self.app.configuration(database, version=config_version) if config_version else None
        docs: dict[str, Any] = {
            "meta": {"configuration_version": config_version, "data_version": data_version},
            "data": data_document(sales) if sales is not None else None,
            "config": configuration_document(configuration)
            if configuration is not None and configuration.configured
            else None,
        }
        if docs["config"] is not None and docs["data"] is not None and docs["data"]["files"]:
            started = time.perf_counter()
            try:
                files = [str(self.app.storage.path(f)) for f in docs["data"]["files"]]
                spec = spec_from_document(docs["config"])
                result = compute(files, spec)
                docs["summary"] = summary_document(database, result, config_version, data_version)
                docs["customers"] = customer_rows(result)
                docs["removed"] = removal_matches(files, spec.customer_column, spec.removals)
            except Exception as exc:  # one broken database must not stop the others
                log.exception("recomputing %s failed", database)
                self.stats.errors += 1
                self.stats.last_error = f"{database}: {type(exc).__name__}: {exc}"
                docs["error"] = {"database": database, "error": f"{type(exc).__name__}: {exc}"}
            self.stats.recomputations += 1
            self.stats.recompute_seconds += time.perf_counter() - started
        return docs

    def _write(self, pipe: Any, database: str, docs: dict[str, Any]) -> None:
        encode = msgspec.json.encode
        for key in self.keys.database_parts(database):
            pipe.delete(key)
        pipe.sadd(self.keys.databases, database)
        pipe.set(self.keys.db(database, "meta"), encode(docs["meta"]))
        for part in ("data", "config", "summary", "error"):
            if docs.get(part) is not None:
                pipe.set(self.keys.db(database, part), encode(docs[part]))
        rows = docs.get("customers")
        if rows is not None:
            pipe.set(self.keys.db(database, "customers"), encode_rows(rows))
            if rows:
                pipe.hset(self.keys.db(database, "customer"), mapping={r["code"]: encode(r) for r in rows})
        removed = docs.get("removed")
        if removed:
            pipe.hset(
                self.keys.db(database, "removed"),
                mapping={code: encode(list(rules)) for code, rules in removed.items()},
            )


def rebuild(projector: SegmentationProjector) -> int:
    """Empty this deployment's read model and replay every event; returns events applied."""
    client = projector.redis
    for key in client.scan_iter(match=projector.keys.pattern, count=1000):
        client.delete(key)
    return projector.catch_up()
