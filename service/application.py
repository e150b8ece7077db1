"""The event-sourced application: one short method per use case.

Commands load an aggregate, call one of its command methods (which guard the rules and trigger
events) and save it. Reading files, making ids and checking the client's expected version
happen here, never inside an event.
"""

from __future__ import annotations

import random
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, ClassVar
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError, Application
from eventsourcing.domain import Aggregate
from eventsourcing.persistence import IntegrityError

from service.aggregates.configuration import Configuration
from service.aggregates.errors import Conflict, FieldError, InvalidCommand, NotFound, VersionMismatch
from service.aggregates.idempotency import IdempotencyRecord
from service.aggregates.sales_database import SalesDatabase
from service.segmentation import RemovalRule, removal_matches
from service.storage import SALES_LIMIT_TEXT, BatchStorage, sales_out_of_range, validate_database_name


@dataclass(frozen=True)
class Context:
    """Who sends a command and on what terms: the actor recorded on its events, the reason,
    the version the client expects (``If-Match``), and its ``Idempotency-Key`` with a
    fingerprint of the request (a key reused for another request is refused)."""

    actor: str
    reason: str | None = None
    expected: int | None = None
    idempotency_key: str | None = None
    fingerprint: str = ""


@dataclass(frozen=True)
class Accepted:
    """A command's success: the HTTP status and body (with ``version`` or ``data_version``, and
    the ``position`` of the last event written)."""

    status: int
    body: dict[str, Any]

    @property
    def version(self) -> int:
        """The version the response's ETag names."""
        return int(self.body.get("version", self.body.get("data_version", 0)))

    @property
    def position(self) -> int:
        """The event store position of the last event written."""
        return int(self.body["position"])


#: A command body builds the aggregate to save and the response body, or raises a domain error;
#: it may return a clean-up to run if saving fails.
Command = Callable[[], tuple[Aggregate, dict[str, Any], Callable[[], None] | None]]


#: How many times a command is tried again after losing a race (when it pinned no version).
_ATTEMPTS = 20


class SegmentationApplication(Application[UUID]):
    """Commands and event-store queries of the segmentation service."""

    name = "Segmentation"
    #: Snapshot every 100 events: rebuilding an aggregate at any version then replays at most 99
    #: events after the nearest snapshot, however long its history (see README).
    snapshotting_intervals: ClassVar[dict[type[Any], int]] = {Configuration: 100, SalesDatabase: 100}

    def __init__(self, storage: BatchStorage, env: dict[str, str] | None = None) -> None:
        super().__init__(env=env)
        self.storage = storage

    # Sales data.

    def import_batch(
        self, database: str, source: Path, fmt: str, mode: str, date_format: str | None, ctx: Context
    ) -> Accepted:
        """Validate and store a file as a batch, then record it; a failure leaves neither.
        ``If-Match`` and the ETag name the data version."""
        validate_database_name(database)

        def command() -> tuple[Aggregate, dict[str, Any], Callable[[], None] | None]:
            sales = self.sales_database(database)
            _check_expected(sales.version if sales is not None else 0, ctx.expected)
            configuration = self.configuration(database)
            appending = sales is not None and bool(sales.current) and mode == "append"
            established = sales.columns if appending and sales is not None else None
            used_format = date_format or (sales.date_format if appending and sales is not None else None)
            required = _required_columns(configuration) if configuration is not None else None
            staged = self.storage.stage(database, source, fmt, used_format, established, required)
            try:
                if sales is None:
                    sales = SalesDatabase.register(database, ctx.actor)
                sales.record_import(
                    staged.batch_id,
                    staged.relative_path,
                    staged.rows,
                    staged.columns,
                    mode,
                    ctx.actor,
                    ctx.reason,
                    used_format,
                )
                self.storage.publish(staged)
            except BaseException:
                self.storage.discard(staged, published=True)
                raise
            body = {
                "database": database,
                "batch_id": staged.batch_id,
                "rows": staged.rows,
                "columns": staged.columns,
                "data_version": sales.version,
            }
            return sales, body, lambda: self.storage.discard(staged, published=True)

        return self._run(database, ctx, 201, command)

    # Configuration commands.

    def configure(self, database: str, settings: dict[str, Any], ctx: Context) -> Accepted:
        """ConfigureDatabase (again, after a deletion)."""

        def command() -> tuple[Aggregate, dict[str, Any], None]:
            columns = self._columns(database)
            self._check_sales_range(database, settings.get("sales_column"))
            configuration = self.configuration(database)
            if configuration is None:
                _check_expected(0, ctx.expected)
                configuration = Configuration.configure(database, settings, columns, ctx.actor, ctx.reason)
            else:
                if configuration.configured:
                    raise Conflict(f"database {database!r} is already configured; edit it with PATCH")
                _check_expected(configuration.version, ctx.expected)
                configuration.reconfigure(settings, columns, ctx.actor, ctx.reason)
            return configuration, {"version": configuration.version}, None

        return self._run(database, ctx, 201, command)

    def edit_configuration(self, database: str, changes: dict[str, Any], ctx: Context) -> Accepted:
        """EditConfiguration."""

        def change(configuration: Configuration) -> None:
            if "sales_column" in changes:
                self._check_sales_range(database, changes["sales_column"])
            configuration.edit(changes, self._columns(database), ctx.actor, ctx.reason)

        return self._on_configuration(database, ctx, 200, change)

    def delete_configuration(self, database: str, ctx: Context) -> Accepted:
        """DeleteConfiguration."""
        return self._on_configuration(database, ctx, 200, lambda c: c.delete(ctx.actor, ctx.reason))

    def remove_customers(
        self, database: str, dimension: str | None, values: list[str], label: str | None, ctx: Context
    ) -> Accepted:
        """RemoveCustomers; the body names the new rule's id."""
        rule_id = uuid.uuid4().hex[:12]

        def change(configuration: Configuration) -> dict[str, Any]:
            columns = self._columns(database)
            configuration.remove_customers(rule_id, dimension, values, label, columns, ctx.actor, ctx.reason)
            return {"rule_id": rule_id}

        return self._on_configuration(database, ctx, 201, change)

    def restore_customers(self, database: str, rule_id: str, ctx: Context) -> Accepted:
        """RestoreCustomers."""
        return self._on_configuration(
            database, ctx, 200, lambda c: c.restore_customers(rule_id, ctx.actor, ctx.reason)
        )

    def create_threshold_set(
        self,
        database: str,
        name: str,
        criteria: dict[str, list[str]],
        thresholds: dict[str, Any],
        ctx: Context,
    ) -> Accepted:
        """CreateThresholdSet; the body names the new set's id."""
        set_id = uuid.uuid4().hex[:12]

        def change(configuration: Configuration) -> dict[str, Any]:
            columns = self._columns(database)
            configuration.create_threshold_set(
                set_id, name, criteria, thresholds, columns, ctx.actor, ctx.reason
            )
            return {"threshold_set_id": set_id}

        return self._on_configuration(database, ctx, 201, change)

    def edit_threshold_set(
        self, database: str, set_id: str, changes: dict[str, Any], ctx: Context
    ) -> Accepted:
        """EditThresholdSet."""
        return self._on_configuration(
            database,
            ctx,
            200,
            lambda c: c.edit_threshold_set(set_id, changes, self._columns(database), ctx.actor, ctx.reason),
        )

    def delete_threshold_set(self, database: str, set_id: str, ctx: Context) -> Accepted:
        """DeleteThresholdSet."""
        return self._on_configuration(
            database, ctx, 200, lambda c: c.delete_threshold_set(set_id, ctx.actor, ctx.reason)
        )

    # Running commands.

    def _on_configuration(
        self,
        database: str,
        ctx: Context,
        status: int,
        change: Callable[[Configuration], dict[str, Any] | None],
    ) -> Accepted:
        """A command on a configured database's aggregate."""

        def command() -> tuple[Aggregate, dict[str, Any], None]:
            configuration = self._configured(database, ctx.expected)
            extra = change(configuration) or {}
            return configuration, {**extra, "version": configuration.version}, None

        return self._run(database, ctx, status, command)

    def _run(self, database: str, ctx: Context, status: int, command: Command) -> Accepted:
        """Run a command once per request: an earlier success under the same Idempotency-Key is
        answered again; a lost race is retried when the client did not pin a version."""
        if ctx.idempotency_key is not None:
            earlier = self._earlier_response(database, ctx)
            if earlier is not None:
                return earlier
        for attempt in range(_ATTEMPTS):
            aggregate, body, cleanup = command()
            pending: list[Aggregate] = [aggregate]
            if ctx.idempotency_key is not None:
                pending.append(
                    IdempotencyRecord.record(database, ctx.idempotency_key, ctx.fingerprint, status, body)
                )
            try:
                recordings = self.save(*pending)
            except IntegrityError as exc:
                if cleanup is not None:
                    cleanup()
                if ctx.idempotency_key is not None:
                    earlier = self._earlier_response(database, ctx)
                    if earlier is not None:
                        return earlier
                if ctx.expected is not None or attempt == _ATTEMPTS - 1:
                    # Another writer saved this version first: the client must re-read.
                    raise VersionMismatch(aggregate.version - 1, aggregate.version) from exc
                # The client pinned no version: apply the command again to the new state,
                # after a short random pause so racing writers spread out.
                time.sleep(random.uniform(0, 0.005 * (attempt + 1)))
                continue
            except BaseException:
                if cleanup is not None:
                    cleanup()
                raise
            return Accepted(status, {**body, "position": recordings[-1].notification.id})
        raise AssertionError("unreachable")  # pragma: no cover

    def _earlier_response(self, database: str, ctx: Context) -> Accepted | None:
        assert ctx.idempotency_key is not None
        record_id = IdempotencyRecord.create_id(database, ctx.idempotency_key)
        try:
            record: IdempotencyRecord = self.repository.get(record_id)
        except AggregateNotFoundError:
            return None
        if record.fingerprint != ctx.fingerprint:
            raise InvalidCommand(
                [FieldError("Idempotency-Key", "this key was already used for a different request")]
            )
        return Accepted(record.status, {**record.body, "position": self._position_of(record_id)})

    def _position_of(self, originator_id: UUID) -> int:
        """The notification id of an aggregate's first event. The library does not expose it
        through domain events, so this asks the recorder's table directly."""
        recorder: Any = self.recorder
        with recorder.datastore.transaction(commit=False) as cursor:
            if hasattr(recorder.datastore, "schema"):
                from psycopg.sql import SQL, Identifier

                query = SQL(
                    "SELECT notification_id FROM {}.{} WHERE originator_id = %s AND originator_version = 1"
                )
                table = Identifier(recorder.datastore.schema), Identifier(recorder.events_table_name)
                cursor.execute(query.format(*table), (originator_id,))
                return int(cursor.fetchone()["notification_id"])
            table = recorder.events_table_name
            # The SQLite recorder stores ids as hex text (older versions: with dashes).
            cursor.execute(
                f"SELECT rowid FROM {table} WHERE originator_id IN (?, ?) AND originator_version = 1",
                (originator_id.hex, str(originator_id)),
            )
            return int(cursor.fetchone()[0])

    # Reading aggregates.

    def configuration(self, database: str, version: int | None = None) -> Configuration | None:
        """The configuration aggregate (at a version), or None if never configured."""
        try:
            return self.repository.get(Configuration.create_id(database), version=version)  # type: ignore[no-any-return]
        except AggregateNotFoundError:
            return None

    def sales_database(self, database: str, version: int | None = None) -> SalesDatabase | None:
        """The sales-database aggregate (at a version), or None if nothing was imported."""
        try:
            return self.repository.get(SalesDatabase.create_id(database), version=version)  # type: ignore[no-any-return]
        except AggregateNotFoundError:
            return None

    def versions_at(
        self, database: str, version: int | None = None, at: datetime | None = None
    ) -> tuple[int, int, datetime]:
        """The configuration and data versions a replay uses, and the instant they stand for.

        ``version``: that configuration version, with the data imported by the time it was made.
        ``at``: the configuration and the data as they were at that instant. A version that never
        existed, or an instant before the first configuration, raises NotFound.
        """
        config_id = Configuration.create_id(database)
        if version is not None:
            events = list(self.events.get(config_id, gt=version - 1, lte=version))
            if not events:
                latest = self.configuration(database)
                raise NotFound(
                    f"configuration version {version} of database {database!r} does not exist"
                    + (f"; the latest is {latest.version}" if latest is not None else "")
                )
            instant = events[0].timestamp  # type: ignore[attr-defined]
            config_version = version
        else:
            assert at is not None
            instant = at
            config_version = 0
            for event in self.events.get(config_id):
                if event.timestamp > at:  # type: ignore[attr-defined]
                    break
                config_version = event.originator_version
            if config_version == 0:
                raise NotFound(f"database {database!r} was not configured at {at.isoformat()}")
        data_version = 0
        for event in self.events.get(SalesDatabase.create_id(database)):
            if event.timestamp > instant:  # type: ignore[attr-defined]
                break
            data_version = event.originator_version
        return config_version, data_version, instant

    def exclusions(self, database: str, at: datetime | None = None) -> list[dict[str, Any]]:
        """Every removal rule (active or restored) with the customers it resolves to: on the
        current data, or with ``at`` on the rules and data as they were at that instant."""
        if at is not None:
            config_version, data_version, _ = self.versions_at(database, at=at)
            configuration = self.configuration(database, version=config_version)
            sales = self.sales_database(database, version=data_version) if data_version else None
        else:
            configuration = self.configuration(database)
            sales = self.sales_database(database)
        if sales is None:
            raise NotFound(f"database {database!r} does not exist")
        if configuration is None:
            return []
        rules = list(configuration.rules.values())
        files = [str(self.storage.path(b["file"])) for b in sales.current]
        matches = removal_matches(files, configuration.settings["customer_column"], [_rule(r) for r in rules])
        codes: dict[str, list[str]] = {r["rule_id"]: [] for r in rules}
        for code, rule_ids in matches.items():
            for rule_id in rule_ids:
                codes[rule_id].append(code)
        return [{**rule, "customers": codes[rule["rule_id"]]} for rule in rules]

    def rules_that_excluded(self, database: str, code: str) -> list[dict[str, Any]]:
        """Every removal rule that has ever excluded customer ``code``: each rule is matched
        against the batches that were current at some time while the rule was in force."""
        configuration = self.configuration(database)
        sales = self.sales_database(database)
        if configuration is None or sales is None:
            return []
        spans = _batch_spans(sales.history)
        by_files: dict[tuple[str, ...], list[dict[str, Any]]] = {}
        for rule in configuration.rules.values():
            start, end = _instant(rule["created_at"]), _instant(rule["restored_at"])
            files = tuple(
                str(self.storage.path(batch["file"]))
                for batch, (since, until) in spans
                if since is not None
                and start is not None
                and (end is None or since < end)
                and (until is None or until > start)
            )
            by_files.setdefault(files, []).append(rule)
        found: list[dict[str, Any]] = []
        for files, rules in by_files.items():
            matches = removal_matches(
                list(files), configuration.settings["customer_column"], [_rule(r) for r in rules]
            )
            hit = set(matches.get(code, ()))
            found += [rule for rule in rules if rule["rule_id"] in hit]
        return sorted(found, key=lambda rule: rule["created_at"])

    def head_position(self) -> int:
        """The position of the newest event in the store (0 when empty)."""
        return self.recorder.max_notification_id() or 0

    # Helpers.

    def _check_sales_range(self, database: str, sales_column: str | None) -> None:
        """The sales column's lines must fit the engine's exact sums (see ``SALES_LIMIT``)."""
        sales = self.sales_database(database)
        if (
            sales is None
            or not sales_column
            or sales.column_types.get(sales_column) not in ("integer", "number")
        ):
            return
        files = [self.storage.path(b["file"]) for b in sales.current]
        if sales_out_of_range(files, sales_column):
            raise InvalidCommand([FieldError("sales_column", SALES_LIMIT_TEXT)])

    def _columns(self, database: str) -> dict[str, str]:
        sales = self.sales_database(database)
        if sales is None or not sales.current:
            raise NotFound(f"database {database!r} does not exist; import sales rows first")
        return sales.column_types

    def _configured(self, database: str, expected: int | None) -> Configuration:
        configuration = self.configuration(database)
        if configuration is None or not configuration.configured:
            if self.sales_database(database) is None:
                raise NotFound(f"database {database!r} does not exist")
            raise NotFound(f"database {database!r} is not configured")
        _check_expected(configuration.version, expected)
        return configuration


def _rule(rule: dict[str, Any]) -> RemovalRule:
    return RemovalRule(rule["rule_id"], rule["dimension"], tuple(rule["values"]))


def _instant(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text)


def _batch_spans(
    history: list[dict[str, Any]],
) -> list[tuple[dict[str, Any], tuple[datetime | None, datetime | None]]]:
    """Each batch with the interval (ISO instants) during which it was part of the data: from
    its import until the next ``replace`` import, if any."""
    spans = []
    for i, batch in enumerate(history):
        replaced = next(
            (later["imported_at"] for later in history[i + 1 :] if later["mode"] == "replace"), None
        )
        spans.append((batch, (_instant(batch["imported_at"]), _instant(replaced))))
    return spans


def _check_expected(version: int, expected: int | None) -> None:
    if expected is not None and expected != version:
        raise VersionMismatch(expected, version)


def _required_columns(configuration: Configuration) -> dict[str, str]:
    """Columns a configured database's data must keep, and the kind of type each needs."""
    if not configuration.configured:
        return {}
    settings = configuration.settings
    required = {settings["date_column"]: "date", settings["sales_column"]: "number"}
    for name in ("customer_column", "name_column", "purchase_column"):
        if settings.get(name):
            required.setdefault(settings[name], "any")
    for rule in configuration.active_rules:
        if rule["dimension"]:
            required.setdefault(rule["dimension"], "any")
    for threshold_set in configuration.live_threshold_sets:
        for column in threshold_set["criteria"]:
            required.setdefault(column, "any")
    return required
