"""Commands on a real event store: each backend runs the same assertions."""

from __future__ import annotations

from pathlib import Path

import pytest

from service.aggregates.errors import Conflict, InvalidCommand, NotFound, VersionMismatch
from service.application import SegmentationApplication
from tests.integration.conftest import SMALL_CONFIG, new_database, write_csv


def _imported(app: SegmentationApplication, tmp_path: Path) -> str:
    database = new_database()
    app.import_batch(database, write_csv(tmp_path), "csv", "append", None, "alice", "first load")
    return database


def test_import_records_a_batch_and_its_columns(app: SegmentationApplication, tmp_path: Path) -> None:
    database = new_database()

    result = app.import_batch(database, write_csv(tmp_path), "csv", "append", None, "alice", None)

    assert result.rows == 6
    assert {c["name"]: c["type"] for c in result.columns} == {
        "customer": "text",
        "name": "text",
        "day": "date",
        "amount": "number",
        "order": "text",
        "region": "text",
    }
    sales = app.sales_database(database)
    assert sales is not None and sales.rows == 6
    assert app.storage.path(sales.current[0]["file"]).exists()
    assert result.position == app.head_position()


def test_replace_starts_the_data_afresh_and_append_adds(app: SegmentationApplication, tmp_path: Path) -> None:
    database = _imported(app, tmp_path)
    app.import_batch(database, write_csv(tmp_path), "csv", "append", None, "alice", None)
    assert app.sales_database(database).rows == 12  # type: ignore[union-attr]

    app.import_batch(database, write_csv(tmp_path), "csv", "replace", None, "alice", None)

    sales = app.sales_database(database)
    assert sales is not None and sales.rows == 6 and len(sales.history) == 3


def test_a_file_that_fails_validation_leaves_no_batch_and_no_event(
    app: SegmentationApplication, tmp_path: Path
) -> None:
    database = _imported(app, tmp_path)
    app.configure(database, SMALL_CONFIG, "alice", None)
    head = app.head_position()
    batches = set((app.storage.root / "databases" / database / "batches").iterdir())
    bad_date = write_csv(
        tmp_path, "customer,name,day,amount,order,region\nA,Ann,2024-01-10,1,o9,N\nB,Bob,notadate,2,o8,S\n"
    )

    with pytest.raises(InvalidCommand) as raised:
        app.import_batch(database, bad_date, "csv", "append", None, "alice", None)

    assert raised.value.errors[0].field == "day"
    assert "row 2" in raised.value.errors[0].message
    assert app.head_position() == head
    assert set((app.storage.root / "databases" / database / "batches").iterdir()) == batches


@pytest.mark.parametrize(
    "content",
    [
        "",
        "customer,amount\n",
        '\x00\x01\x02binary\xff"\n"unterminated',
    ],
)
def test_unreadable_files_are_refused(app: SegmentationApplication, tmp_path: Path, content: str) -> None:
    database = new_database()
    head = app.head_position()

    with pytest.raises(InvalidCommand):
        app.import_batch(database, write_csv(tmp_path, content), "csv", "append", None, "alice", None)

    assert app.head_position() == head
    assert app.sales_database(database) is None


def test_configuration_guards(app: SegmentationApplication, tmp_path: Path) -> None:
    database = _imported(app, tmp_path)

    with pytest.raises(NotFound):
        app.edit_configuration(database, {"grouping": 5}, "alice", None)
    with pytest.raises(InvalidCommand) as unknown:
        app.configure(database, {**SMALL_CONFIG, "customer_column": "nope"}, "alice", None)
    assert unknown.value.errors[0].field == "customer_column"
    with pytest.raises(InvalidCommand) as cuts:
        app.configure(database, {**SMALL_CONFIG, "thresholds": {"frequency": [1, 3, 2, 4]}}, "alice", None)
    assert cuts.value.errors[0].field == "thresholds.frequency"
    with pytest.raises(InvalidCommand):
        app.configure(database, {**SMALL_CONFIG, "sales_column": "region"}, "alice", None)
    with pytest.raises(InvalidCommand):
        app.configure(database, {**SMALL_CONFIG, "grouping": 7}, "alice", None)
    head = app.head_position()
    assert app.configuration(database) is None

    first = app.configure(database, SMALL_CONFIG, "alice", "setup")

    assert first.version == 1 and first.position == head + 1
    with pytest.raises(Conflict):
        app.configure(database, SMALL_CONFIG, "alice", None)


def test_removal_rules_threshold_sets_and_their_guards(app: SegmentationApplication, tmp_path: Path) -> None:
    database = _imported(app, tmp_path)
    app.configure(database, SMALL_CONFIG, "alice", None)

    rule_id, removed = app.remove_customers(database, "region", ["East"], None, "bob", "closed", expected=1)
    set_id, created = app.create_threshold_set(
        database, "South", {"region": ["South"]}, {"monetary": [1, 2, 3, 4]}, "alice", None
    )

    assert (removed.version, created.version) == (2, 3)
    configuration = app.configuration(database)
    assert configuration is not None
    assert configuration.active_rules[0]["created_by"] == "bob"
    assert configuration.live_threshold_sets[0]["name"] == "South"
    with pytest.raises(InvalidCommand):
        app.create_threshold_set(database, "south", {"region": ["North"]}, {}, "alice", None)
    with pytest.raises(InvalidCommand):
        app.remove_customers(database, "amount", ["1"], None, "bob", None)
    with pytest.raises(NotFound):
        app.restore_customers(database, "no-such-rule", "bob", None)
    with pytest.raises(VersionMismatch):
        app.remove_customers(database, "region", ["North"], None, "bob", None, expected=1)

    app.restore_customers(database, rule_id, "carol", "reopened")
    app.edit_threshold_set(database, set_id, {"name": "Southern"}, "alice", None)
    app.delete_threshold_set(database, set_id, "alice", None)

    configuration = app.configuration(database)
    assert configuration is not None and configuration.version == 6
    assert configuration.active_rules == [] and configuration.rules[rule_id]["restored_by"] == "carol"
    with pytest.raises(NotFound):
        app.restore_customers(database, rule_id, "bob", None)


def test_delete_then_configure_again_continues_the_history(
    app: SegmentationApplication, tmp_path: Path
) -> None:
    database = _imported(app, tmp_path)
    app.configure(database, SMALL_CONFIG, "alice", None)
    app.remove_customers(database, "region", ["East"], None, "bob", None)

    app.delete_configuration(database, "alice", "start over")
    again = app.configure(database, {**SMALL_CONFIG, "grouping": 5}, "alice", None)

    configuration = app.configuration(database)
    assert again.version == 4
    assert configuration is not None and configuration.settings["grouping"] == 5
    assert configuration.active_rules == []
    past = app.configuration(database, version=2)
    assert past is not None and past.settings["grouping"] == 10 and len(past.active_rules) == 1


def test_two_writers_on_one_version_one_wins(app: SegmentationApplication, tmp_path: Path) -> None:
    database = _imported(app, tmp_path)
    app.configure(database, SMALL_CONFIG, "alice", None)
    first = app.configuration(database)
    second = app.configuration(database)
    assert first is not None and second is not None
    first.edit({"grouping": 5}, {"customer": "text", **_types(app, database)}, "alice", None)
    second.edit({"period_months": 6}, _types(app, database), "bob", None)

    app.save(first)
    with pytest.raises(VersionMismatch):
        app._save_or_conflict(second)

    configuration = app.configuration(database)
    assert configuration is not None and configuration.settings["grouping"] == 5
    assert configuration.settings["period_months"] == 12


def _types(app: SegmentationApplication, database: str) -> dict[str, str]:
    sales = app.sales_database(database)
    assert sales is not None
    return sales.column_types
