"""The sales-database aggregate: the record of every import into one database.

The rows themselves live in immutable batch files; this aggregate records which batches exist,
in what order, and which are current (a ``replace`` import starts the data afresh), so the data
as it was at any version can be read back.
"""

from __future__ import annotations

from typing import Any
from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.domain import Aggregate

from service.aggregates.errors import FieldError, InvalidCommand

IMPORT_MODES = ("append", "replace")


class SalesDatabase(Aggregate):
    """A named set of sales transactions, as a sequence of imported batches."""

    @staticmethod
    def create_id(database: str) -> UUID:
        """The aggregate id of a sales database: stable, derived from its name."""
        return uuid5(NAMESPACE_URL, f"segmentation:sales-database:{database}")

    class DatabaseRegistered(Aggregate.Created):
        """The database's first import created it."""

        database: str
        actor: str

    class BatchImported(Aggregate.Event):
        """A validated batch file was stored; ``mode`` says whether it replaced the data."""

        batch_id: str
        file: str
        rows: int
        columns: list[dict[str, str]]
        mode: str
        actor: str
        reason: str | None
        date_format: str | None = None

        def apply(self, aggregate: SalesDatabase) -> None:
            batch = {
                "batch_id": self.batch_id,
                "file": self.file,
                "rows": self.rows,
                "mode": self.mode,
                "imported_at": self.timestamp.isoformat(),
                "imported_by": self.actor,
            }
            if self.mode == "replace":
                aggregate.current = []
            aggregate.current.append(batch)
            aggregate.history.append(batch)
            aggregate.columns = [dict(c) for c in self.columns]
            if self.date_format is not None or self.mode == "replace":
                aggregate.date_format = self.date_format

    def __init__(self, database: str, actor: str) -> None:
        self.database = database
        self.columns: list[dict[str, str]] = []
        self.current: list[dict[str, Any]] = []
        self.history: list[dict[str, Any]] = []
        #: The date format the current data was read with; appends reuse it unless told otherwise,
        #: so "01/02/2017" means the same day in every batch.
        self.date_format: str | None = None

    @classmethod
    def register(cls, database: str, actor: str) -> SalesDatabase:
        """A new, empty database (saved together with its first import)."""
        return cls._create(cls.DatabaseRegistered, id=cls.create_id(database), database=database, actor=actor)

    def record_import(
        self,
        batch_id: str,
        file: str,
        rows: int,
        columns: list[dict[str, str]],
        mode: str,
        actor: str,
        reason: str | None,
        date_format: str | None = None,
    ) -> None:
        """Record a batch already stored and validated by the application."""
        if mode not in IMPORT_MODES:
            raise InvalidCommand([FieldError("mode", "must be append or replace")])
        if mode == "append" and self.current and not _compatible(self.columns, columns):
            raise InvalidCommand(
                [FieldError("columns", "an appended batch must have the database's columns")]
            )
        self.trigger_event(
            self.BatchImported,
            batch_id=batch_id,
            file=file,
            rows=rows,
            columns=columns,
            mode=mode,
            actor=actor,
            reason=reason,
            date_format=date_format,
        )

    @property
    def column_types(self) -> dict[str, str]:
        """Column name -> type of the current data."""
        return {c["name"]: c["type"] for c in self.columns}

    @property
    def rows(self) -> int:
        """Rows in the current data."""
        return sum(batch["rows"] for batch in self.current)


def _compatible(current: list[dict[str, str]], appended: list[dict[str, str]]) -> bool:
    """Same columns in the same order, each of the same type or widened from integer to number."""
    return [c["name"] for c in current] == [c["name"] for c in appended] and all(
        old["type"] == new["type"] or (old["type"], new["type"]) == ("integer", "number")
        for old, new in zip(current, appended, strict=True)
    )
