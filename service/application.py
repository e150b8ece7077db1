"""The event-sourced application: one short method per use case.

Commands load an aggregate, call one of its command methods (which guard the rules and trigger
events) and save it. Reading files, making ids and checking the client's expected version
happen here, never inside an event.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, ClassVar
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError, Application
from eventsourcing.persistence import IntegrityError

from service.aggregates.configuration import Configuration
from service.aggregates.errors import Conflict, NotFound, VersionMismatch
from service.aggregates.sales_database import SalesDatabase
from service.segmentation import RemovalRule, removal_matches
from service.storage import BatchStorage, validate_database_name


@dataclass(frozen=True)
class CommandResult:
    """What a successful command returns: the configuration version and the last position."""

    version: int
    position: int


@dataclass(frozen=True)
class ImportResult:
    """What a successful import returns."""

    database: str
    batch_id: str
    rows: int
    columns: list[dict[str, str]]
    position: int
    data_version: int


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
        self,
        database: str,
        source: Path,
        fmt: str,
        mode: str,
        date_format: str | None,
        actor: str,
        reason: str | None,
    ) -> ImportResult:
        """Validate and store a file as a batch, then record it; a failure leaves neither."""
        validate_database_name(database)
        sales = self.sales_database(database)
        configuration = self.configuration(database)
        established = sales.columns if sales is not None and sales.current and mode == "append" else None
        required = _required_columns(configuration) if configuration is not None else None
        staged = self.storage.stage(database, source, fmt, date_format, established, required)
        published = False
        try:
            if sales is None:
                sales = SalesDatabase.register(database, actor)
            sales.record_import(
                staged.batch_id, staged.relative_path, staged.rows, staged.columns, mode, actor, reason
            )
            self.storage.publish(staged)
            published = True
            recordings = self._save_or_conflict(sales)
        except BaseException:
            self.storage.discard(staged, published)
            raise
        return ImportResult(
            database=database,
            batch_id=staged.batch_id,
            rows=staged.rows,
            columns=staged.columns,
            position=recordings[-1].notification.id,
            data_version=sales.version,
        )

    # Configuration commands.

    def configure(
        self,
        database: str,
        settings: dict[str, Any],
        actor: str,
        reason: str | None,
        expected: int | None = None,
    ) -> CommandResult:
        """ConfigureDatabase (again, after a deletion)."""
        columns = self._columns(database)
        configuration = self.configuration(database)
        if configuration is None:
            if expected is not None and expected != 0:
                raise VersionMismatch(expected, 0)
            configuration = Configuration.configure(database, settings, columns, actor, reason)
        else:
            if configuration.configured:
                raise Conflict(f"database {database!r} is already configured; edit it with PATCH")
            _check_expected(configuration, expected)
            configuration.reconfigure(settings, columns, actor, reason)
        return self._commit(configuration)

    def edit_configuration(
        self,
        database: str,
        changes: dict[str, Any],
        actor: str,
        reason: str | None,
        expected: int | None = None,
    ) -> CommandResult:
        """EditConfiguration."""
        configuration = self._configured(database, expected)
        configuration.edit(changes, self._columns(database), actor, reason)
        return self._commit(configuration)

    def delete_configuration(
        self, database: str, actor: str, reason: str | None, expected: int | None = None
    ) -> CommandResult:
        """DeleteConfiguration."""
        configuration = self._configured(database, expected)
        configuration.delete(actor, reason)
        return self._commit(configuration)

    def remove_customers(
        self,
        database: str,
        dimension: str | None,
        values: list[str],
        label: str | None,
        actor: str,
        reason: str | None,
        expected: int | None = None,
    ) -> tuple[str, CommandResult]:
        """RemoveCustomers; returns the new rule's id."""
        configuration = self._configured(database, expected)
        rule_id = uuid.uuid4().hex[:12]
        configuration.remove_customers(
            rule_id, dimension, values, label, self._columns(database), actor, reason
        )
        return rule_id, self._commit(configuration)

    def restore_customers(
        self, database: str, rule_id: str, actor: str, reason: str | None, expected: int | None = None
    ) -> CommandResult:
        """RestoreCustomers."""
        configuration = self._configured(database, expected)
        configuration.restore_customers(rule_id, actor, reason)
        return self._commit(configuration)

    def create_threshold_set(
        self,
        database: str,
        name: str,
        criteria: dict[str, list[str]],
        thresholds: dict[str, Any],
        actor: str,
        reason: str | None,
        expected: int | None = None,
    ) -> tuple[str, CommandResult]:
        """CreateThresholdSet; returns the new set's id."""
        configuration = self._configured(database, expected)
        set_id = uuid.uuid4().hex[:12]
        configuration.create_threshold_set(
            set_id, name, criteria, thresholds, self._columns(database), actor, reason
        )
        return set_id, self._commit(configuration)

    def edit_threshold_set(
        self,
        database: str,
        set_id: str,
        changes: dict[str, Any],
        actor: str,
        reason: str | None,
        expected: int | None = None,
    ) -> CommandResult:
        """EditThresholdSet."""
        configuration = self._configured(database, expected)
        configuration.edit_threshold_set(set_id, changes, self._columns(database), actor, reason)
        return self._commit(configuration)

    def delete_threshold_set(
        self, database: str, set_id: str, actor: str, reason: str | None, expected: int | None = None
    ) -> CommandResult:
        """DeleteThresholdSet."""
        configuration = self._configured(database, expected)
        configuration.delete_threshold_set(set_id, actor, reason)
        return self._commit(configuration)

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
        _check_expected(configuration, expected)
        return configuration

    def _commit(self, configuration: Configuration) -> CommandResult:
        recordings = self._save_or_conflict(configuration)
        return CommandResult(version=configuration.version, position=recordings[-1].notification.id)

    def _save_or_conflict(self, aggregate: Configuration | SalesDatabase) -> list[Any]:
        try:
            return self.save(aggregate)
        except IntegrityError as exc:
            # Another writer saved the same version first: the client must re-read and retry.
            raise VersionMismatch(aggregate.version - 1, aggregate.version) from exc


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


def _check_expected(configuration: Configuration, expected: int | None) -> None:
    if expected is not None and expected != configuration.version:
        raise VersionMismatch(expected, configuration.version)


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
