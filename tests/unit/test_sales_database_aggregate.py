"""The sales-database aggregate: given events, when a command, then events or an error."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from service.aggregates.errors import InvalidCommand
from service.aggregates.sales_database import SalesDatabase

COLUMNS = [
    {"name": "cust", "type": "text"},
    {"name": "day", "type": "date"},
    {"name": "amount", "type": "number"},
]
OTHER_COLUMNS = [*COLUMNS, {"name": "region", "type": "text"}]


def registered(*imports: tuple[str, int, list[dict[str, str]], str]) -> SalesDatabase:
    """Given: a registered database with ``imports`` (batch id, rows, columns, mode) recorded."""
    database = SalesDatabase.register("shop", "alice")
    for batch_id, rows, columns, mode in imports:
        database.record_import(batch_id, f"{batch_id}.parquet", rows, columns, mode, "alice", None)
    database.collect_events()
    return database


def state(database: SalesDatabase) -> dict[str, Any]:
    return {
        "id": database.id,
        "database": database.database,
        "columns": database.columns,
        "current": database.current,
        "history": database.history,
        "version": database.version,
    }


def test_register() -> None:
    database = SalesDatabase.register("shop", "alice")

    [event] = database.collect_events()
    assert isinstance(event, SalesDatabase.DatabaseRegistered)
    assert (event.database, event.actor) == ("shop", "alice")
    assert event.originator_id == SalesDatabase.create_id("shop")
    assert database.columns == [] and database.current == [] and database.history == []
    assert database.rows == 0
    assert database.column_types == {}


def test_the_id_derives_from_the_name_and_differs_from_the_configurations() -> None:
    from service.aggregates.configuration import Configuration

    assert SalesDatabase.create_id("shop") == SalesDatabase.create_id("shop")
    assert SalesDatabase.create_id("shop") != SalesDatabase.create_id("shop2")
    assert SalesDatabase.create_id("shop") != Configuration.create_id("shop")


def test_first_import() -> None:
    database = registered()

    database.record_import("b1", "b1.parquet", 10, COLUMNS, "append", "bob", "January")

    [event] = database.collect_events()
    assert isinstance(event, SalesDatabase.BatchImported)
    assert (event.batch_id, event.file, event.rows, event.mode) == ("b1", "b1.parquet", 10, "append")
    assert event.columns == COLUMNS
    assert (event.actor, event.reason) == ("bob", "January")
    batch = {
        "batch_id": "b1",
        "file": "b1.parquet",
        "rows": 10,
        "mode": "append",
        "imported_at": event.timestamp.isoformat(),
        "imported_by": "bob",
    }
    assert database.current == [batch]
    assert database.history == [batch]
    assert database.rows == 10
    assert database.column_types == {"cust": "text", "day": "date", "amount": "number"}


def test_first_import_may_replace() -> None:
    database = registered()

    database.record_import("b1", "b1.parquet", 10, COLUMNS, "replace", "bob", None)

    assert [b["batch_id"] for b in database.current] == ["b1"]
    assert database.rows == 10


def test_append_adds_to_the_current_data() -> None:
    database = registered(("b1", 10, COLUMNS, "append"))

    database.record_import("b2", "b2.parquet", 5, COLUMNS, "append", "bob", None)

    assert [b["batch_id"] for b in database.current] == ["b1", "b2"]
    assert [b["batch_id"] for b in database.history] == ["b1", "b2"]
    assert database.rows == 15


def test_replace_resets_current_but_keeps_history() -> None:
    database = registered(("b1", 10, COLUMNS, "append"), ("b2", 5, COLUMNS, "append"))

    database.record_import("b3", "b3.parquet", 7, OTHER_COLUMNS, "replace", "bob", "new extract")

    [event] = database.collect_events()
    assert event.mode == "replace"
    assert [b["batch_id"] for b in database.current] == ["b3"]
    assert [b["batch_id"] for b in database.history] == ["b1", "b2", "b3"]
    assert database.rows == 7
    assert database.columns == OTHER_COLUMNS


@pytest.mark.parametrize(
    "columns",
    [
        OTHER_COLUMNS,  # one more
        COLUMNS[:2],  # one fewer
        list(reversed(COLUMNS)),  # another order
        [{**COLUMNS[0]}, {**COLUMNS[1]}, {"name": "amount", "type": "text"}],  # another type
    ],
)
def test_append_with_other_columns_is_refused(columns: list[dict[str, str]]) -> None:
    database = registered(("b1", 10, COLUMNS, "append"))

    with pytest.raises(InvalidCommand) as raised:
        database.record_import("b2", "b2.parquet", 5, columns, "append", "bob", None)

    assert [e.field for e in raised.value.errors] == ["columns"]
    assert database.collect_events() == []
    assert database.rows == 10


def test_append_after_replace_must_match_the_replacements_columns() -> None:
    database = registered(("b1", 10, COLUMNS, "append"), ("b2", 5, OTHER_COLUMNS, "replace"))

    with pytest.raises(InvalidCommand):
        database.record_import("b3", "b3.parquet", 1, COLUMNS, "append", "bob", None)
    database.record_import("b4", "b4.parquet", 1, OTHER_COLUMNS, "append", "bob", None)

    assert [b["batch_id"] for b in database.current] == ["b2", "b4"]
    assert database.rows == 6


@pytest.mark.parametrize("mode", ["merge", "", "Append", None])
def test_an_unknown_mode_is_refused(mode: Any) -> None:
    database = registered(("b1", 10, COLUMNS, "append"))

    with pytest.raises(InvalidCommand) as raised:
        database.record_import("b2", "b2.parquet", 5, COLUMNS, mode, "bob", None)

    assert [e.field for e in raised.value.errors] == ["mode"]
    assert database.collect_events() == []


IMPORTS = st.lists(
    st.tuples(
        st.integers(0, 1000),
        st.sampled_from([COLUMNS, OTHER_COLUMNS]),
        st.sampled_from(["append", "replace", "bogus"]),
    ),
    max_size=15,
)


@settings(max_examples=100, deadline=None)
@given(imports=IMPORTS)
def test_rows_count_the_current_batches_and_folding_twice_gives_the_same_state(
    imports: list[tuple[int, list[dict[str, str]], str]],
) -> None:
    database = SalesDatabase.register("shop", "alice")
    expected_current: list[int] = []
    for i, (rows, columns, mode) in enumerate(imports):
        try:
            database.record_import(f"b{i}", f"b{i}.parquet", rows, columns, mode, "alice", None)
        except InvalidCommand:
            continue
        expected_current = [rows] if mode == "replace" else [*expected_current, rows]

    assert [b["rows"] for b in database.current] == expected_current
    assert database.rows == sum(expected_current)
    assert database.current == database.history[len(database.history) - len(database.current) :]

    events = list(database.collect_events())
    folds = []
    for _ in range(2):
        aggregate = None
        for event in events:
            aggregate = event.mutate(aggregate)
        assert isinstance(aggregate, SalesDatabase)
        folds.append(aggregate)
    assert state(folds[0]) == state(database)
    assert state(folds[1]) == state(database)
