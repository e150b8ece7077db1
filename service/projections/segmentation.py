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

import contextlib
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
    data_document,
    encode_rows,
    spec_from_document,
    summary_document,
)
from service.projections.keys import Keys, new_generation
from service.segmentation import compute, removal_matches

log = logging.getLogger(__name__)

_CONFIG_TOPIC = f"{Configuration.__module__}:{Configuration.__qualname__}."
_DATA_TOPIC = f"{SalesDatabase.__module__}:{SalesDatabase.__qualname__}."


@dataclass
class ProjectorStats:
    """This projector's own counters (what /metrics shows is kept in Redis, for every process)."""

    events: int = 0
    batches: int = 0
    recomputations: int = 0
    errors: int = 0
    last_error: str | None = None
    touched: list[str] = field(default_factory=list)


class SegmentationProjector:
    """Applies the notification log to the Redis read model, in batches.

    A projector follows the generation named by ``current`` (creating one, and rebuilding it from
    the start, when Redis has lost the read model), or writes one fixed ``generation`` (a
    rebuild beside the served one).
    """

    def __init__(
        self,
        app: SegmentationApplication,
        client: redis.Redis,
        keys: Keys,
        batch_size: int = 1000,
        generation: str | None = None,
    ) -> None:
        self.app = app
        self.redis = client
        self.control = keys
        self.fixed = generation
        self.batch_size = batch_size
        self.stats = ProjectorStats()
        self._databases: dict[UUID, str] = {}

    @property
    def keys(self) -> Keys:
        """The keys of the generation this projector writes now."""
        if self.fixed is not None:
            return self.control.at(self.fixed)
        generation = self.redis.get(self.control.current)
        if generation is None:
            return self.control.at(self._start_generation())
        return self.control.at(_text(generation))

    def _start_generation(self) -> str:
        """Redis has no read model (new, flushed or restarted empty): start a generation and
        mark it as rebuilding until it has caught up with the event store."""
        generation = new_generation()
        rebuild = self.app.head_position() > 0  # a new deployment has nothing to rebuild
        current = _text(
            self.redis.eval(
                _START_GENERATION, 2, self.control.current, self.control.rebuilding, generation, int(rebuild)
            )
        )
        if current == generation and rebuild:
            log.warning("no read model in Redis: rebuilding generation %s from the event store", generation)
        return current

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
            self._finish_rebuild(start)
            return 0
        return self.apply(notifications, after=start)

    def catch_up(self) -> int:
        """Apply everything up to the event store's head; returns how many were applied."""
        total = 0
        while applied := self.run_once():
            total += applied
        return total

    def run(self, stop: threading.Event, poll_interval: float = 0.1, coalesce: float = 0.05) -> None:
        """Follow the notification log until ``stop`` is set; survives Redis and store outages.

        On PostgreSQL a subscription (LISTEN/NOTIFY) wakes the projector as soon as events are
        recorded; the SQLite recorder has none, so there the projector polls. After applying a
        batch it pauses ``coalesce`` seconds: the first event after a quiet spell is projected at
        once, while a stream of commands is projected in batches, one recomputation per database
        per batch instead of one per event.
        """
        wake = threading.Event()
        subscription = self._subscribe(wake)
        idle_wait = 1.0 if subscription is not None else poll_interval
        try:
            while not stop.is_set():
                try:
                    self.redis.set(self.control.heartbeat, str(time.time()), ex=5)
                    wake.clear()
                    if self.run_once() == 0:
                        wake.wait(idle_wait)
                    else:
                        stop.wait(coalesce)
                except Exception as exc:  # keep following after any outage; the log says why
                    self.stats.errors += 1
                    self.stats.last_error = f"{type(exc).__name__}: {exc}"
                    log.warning("projector: %s; retrying", self.stats.last_error)
                    stop.wait(max(poll_interval, 1.0))
        finally:
            if subscription is not None:
                subscription.stop()

    def _subscribe(self, wake: threading.Event) -> Any:
        """A subscription that sets ``wake`` on every new event, where the recorder has one."""
        try:
            subscription = self.app.recorder.subscribe(gt=self.app.recorder.max_notification_id())
        except NotImplementedError:
            return None

        def follow() -> None:
            with contextlib.suppress(Exception), subscription:
                for _ in subscription:
                    wake.set()

        threading.Thread(target=follow, name="segmentation-subscription", daemon=True).start()
        return subscription

    def apply(self, notifications: Sequence[Any], after: int | None = None) -> int:
        """Apply one batch in one Redis transaction; notifications already applied are refused.

        ``after`` is the position the batch was read from: if the generation has moved since
        (another projector, or a switch to a rebuilt generation), nothing is applied and the
        caller reads again, so no event can be skipped.
        """
        with self.redis.pipeline() as pipe:
            while True:
                try:
                    if self.fixed is None:
                        pipe.watch(self.control.current)
                    keys = self.keys
                    pipe.watch(keys.position)
                    current = int(pipe.get(keys.position) or 0)
                    if after is not None and current != after:
                        pipe.unwatch()
                        return 0
                    fresh = [n for n in notifications if n.id > current]
                    if not fresh:
                        pipe.unwatch()
                        return 0
                    touched, audit = self._touched(fresh)
                    started = time.perf_counter()
                    documents = {
                        db: self._documents(pipe, keys, db, versions) for db, versions in touched.items()
                    }
                    seconds = time.perf_counter() - started
                    pipe.multi()
                    for database, docs in documents.items():
                        self._write(pipe, keys, database, docs)
                        pipe.rpush(keys.db(database, "audit"), *audit[database])
                    # Across databases the trail keeps position order, whatever the batch size.
                    everything = sorted(
                        (entry for entries in audit.values() for entry in entries), key=_audit_position
                    )
                    if everything:
                        pipe.rpush(keys.audit, *everything)
                    pipe.set(keys.position, fresh[-1].id)
                    pipe.hincrby(self.control.stats, "events", len(fresh))
                    pipe.hincrby(self.control.stats, "batches", 1)
                    pipe.hincrby(self.control.stats, "recomputations", len(touched))
                    pipe.hincrbyfloat(self.control.stats, "recompute_seconds", seconds)
                    pipe.execute()
                except redis.WatchError:
                    continue  # another projector moved the position: re-read and refuse what it did
                self.stats.events += len(fresh)
                self.stats.batches += 1
                self.stats.touched = sorted(touched)
                return len(fresh)

    def _finish_rebuild(self, position: int) -> None:
        """A generation rebuilt after a loss is served normally once it has caught up."""
        if self.fixed is None and self.redis.get(self.control.rebuilding) is not None:
            generation = self.keys.generation
            if position >= self.app.head_position():
                with self.redis.pipeline() as pipe:
                    pipe.watch(self.control.rebuilding)
                    if _text(pipe.get(self.control.rebuilding) or b"") == generation:
                        pipe.multi()
                        pipe.delete(self.control.rebuilding)
                        with contextlib.suppress(redis.WatchError):
                            pipe.execute()

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

    def _documents(self, pipe: Any, keys: Keys, database: str, versions: dict[str, int]) -> dict[str, Any]:
        """Every document of one database at the versions the batch ends on."""
        meta = msgspec.json.decode(pipe.get(keys.db(database, "meta")) or b"{}")
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
            try:
                files = [str(self.app.storage.path(f)) for f in docs["data"]["files"]]
                spec = spec_from_document(docs["config"])
                result = compute(files, spec)
                docs["summary"] = summary_document(database, result, config_version, data_version)
                docs["customers"] = result.customers
                docs["removed"] = removal_matches(files, spec.customer_column, spec.removals)
            except Exception as exc:  # one broken database must not stop the others
                log.exception("recomputing %s failed", database)
                self.stats.errors += 1
                self.stats.last_error = f"{database}: {type(exc).__name__}: {exc}"
                docs["error"] = {"database": database, "error": f"{type(exc).__name__}: {exc}"}
            self.stats.recomputations += 1
        return docs

    def _write(self, pipe: Any, keys: Keys, database: str, docs: dict[str, Any]) -> None:
        encode = msgspec.json.encode
        for key in keys.database_parts(database):
            pipe.delete(key)
        pipe.sadd(keys.databases, database)
        pipe.set(keys.db(database, "meta"), encode(docs["meta"]))
        for part in ("data", "config", "summary", "error"):
            if docs.get(part) is not None:
                pipe.set(keys.db(database, part), encode(docs[part]))
        rows = docs.get("customers")
        if rows is not None:
            pipe.set(keys.db(database, "customers"), encode_rows(rows))
            if rows:
                pipe.hset(keys.db(database, "customer"), mapping={r.code: encode(r) for r in rows})
        removed = docs.get("removed")
        if removed:
            pipe.hset(
                keys.db(database, "removed"),
                mapping={code: encode(list(rules)) for code, rules in removed.items()},
            )


def rebuild(
    app: SegmentationApplication, client: redis.Redis, control: Keys, grace_seconds: float = 2.0
) -> int:
    """Rebuild the read model without downtime; returns the events the new generation applied.

    A new generation is written beside the served one until it has caught up with the event
    store; then ``current`` switches to it in one transaction (only if nothing was recorded in
    between), readers move over within their one-second generation cache, and the old
    generation is deleted after ``grace_seconds``.
    """
    generation = new_generation()
    builder = SegmentationProjector(app, client, control, generation=generation)
    applied = 0
    old: Any = None
    with client.pipeline() as pipe:
        while True:
            applied += builder.catch_up()
            try:
                pipe.watch(control.current, control.at(generation).position)
                old = pipe.get(control.current)
                if int(pipe.get(control.at(generation).position) or 0) < app.head_position():
                    pipe.unwatch()
                    continue
                pipe.multi()
                pipe.set(control.current, generation)
                pipe.delete(control.rebuilding)
                pipe.execute()
                break
            except redis.WatchError:
                continue
    if old is not None and _text(old) != generation:
        time.sleep(grace_seconds)
        drop_generation(client, control.at(_text(old)))
    return applied


#: Start a generation unless another projector just did, marking it as being rebuilt, in one step:
#: a reader never sees the new generation without the mark.
_START_GENERATION = """
if redis.call('SET', KEYS[1], ARGV[1], 'NX') then
  if ARGV[2] == '1' then redis.call('SET', KEYS[2], ARGV[1]) end
  return ARGV[1]
end
return redis.call('GET', KEYS[1])
"""


def _audit_position(entry: bytes) -> int:
    return int(msgspec.json.decode(entry)["position"])


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def drop_generation(client: redis.Redis, keys: Keys) -> None:
    """Delete every key of one generation."""
    delete_matching(client, keys.pattern)


def delete_matching(client: redis.Redis, pattern: str) -> None:
    """Delete every key matching ``pattern``, a thousand at a time."""
    batch: list[bytes] = []
    for key in client.scan_iter(match=pattern, count=1000):
        batch.append(key)
        if len(batch) >= 1000:
            client.delete(*batch)
            batch.clear()
    if batch:
        client.delete(*batch)
