"""The idempotency record: the first response to a command sent with an ``Idempotency-Key``.

It is saved in the same transaction as the command's own events, so either both exist or
neither does: a retry finds the record and gets the first response back, and nothing is
written twice, even when two retries race or the process dies between them.
"""

from __future__ import annotations

from typing import Any
from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.domain import Aggregate


class IdempotencyRecord(Aggregate):
    """One key's first response, within one database."""

    @staticmethod
    def create_id(database: str, key: str) -> UUID:
        """The record of ``key`` in ``database``: a retry derives the same id."""
        return uuid5(NAMESPACE_URL, f"segmentation:idempotency:{database}:{key}")

    class Recorded(Aggregate.Created):
        """The command succeeded with this response (its position is this event's own)."""

        database: str
        key: str
        fingerprint: str
        status: int
        body: dict[str, Any]

    def __init__(self, database: str, key: str, fingerprint: str, status: int, body: dict[str, Any]) -> None:
        self.database = database
        self.key = key
        self.fingerprint = fingerprint
        self.status = status
        self.body = body

    @classmethod
    def record(
        cls, database: str, key: str, fingerprint: str, status: int, body: dict[str, Any]
    ) -> IdempotencyRecord:
        """A new record, to be saved together with the command's aggregate."""
        return cls._create(
            cls.Recorded,
            id=cls.create_id(database, key),
            database=database,
            key=key,
            fingerprint=fingerprint,
            status=status,
            body=body,
        )
