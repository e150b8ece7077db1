"""Domain errors raised by the aggregates' guards.

Each carries what the HTTP edge needs to answer: a status class (by its type) and, for
validation failures, the offending fields. Nothing here knows about HTTP itself.
"""

from __future__ import annotations

from dataclasses import dataclass


class DomainError(Exception):
    """A command broke a rule of the domain; no event was written."""


@dataclass(frozen=True)
class FieldError:
    """One field of a command that broke a rule, with a message for a person."""

    field: str
    message: str


class InvalidCommand(DomainError):
    """A well-formed command that breaks a rule (an unknown column, cut points out of order)."""

    def __init__(self, errors: list[FieldError]) -> None:
        self.errors = errors
        super().__init__("; ".join(f"{e.field}: {e.message}" for e in errors))


class NotFound(DomainError):
    """The thing a command or query names does not exist."""


class Conflict(DomainError):
    """The command is valid but clashes with the current state (configuring twice)."""


class VersionMismatch(DomainError):
    """The client's expected version (If-Match) is not the current one."""

    def __init__(self, expected: int, actual: int) -> None:
        self.expected = expected
        self.actual = actual
        super().__init__(f"expected version {expected}, but the current version is {actual}")
