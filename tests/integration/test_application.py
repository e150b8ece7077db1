"""Commands on a real event store: each backend runs the same assertions."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import duckdb
import pytest

from service.aggregates.errors import Conflict, InvalidCommand, NotFound, VersionMismatch
from service.application import Context, SegmentationApplication
from tests.integration.conftest import SMALL_CONFIG, new_database, write_csv


def _imported(app: SegmentationApplication, tmp_path: Path) -> str:
    database = new_database()
    app.import_batch(database, write_csv(tmp_path), "csv", "append", None, Context("alice", "first load"))
    return database


def test_import_records_a_batch_and_its_columns(app: SegmentationApplication, tmp_path: Path) -> None:
    database = new_database()

    result = app.import_batch(database, write_csv(tmp_path), "csv", "append", None, Context("alice", None))

    assert result.body["rows"] == 6
    assert {c["name"]: c["type"] for c in result.body["columns"]} == {
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
    app.import_batch(database, write_csv(tmp_path), "csv", "append", None, Context("alice", None))
    assert app.sales_database(database).rows == 12  # type: ignore[union-attr]

    app.import_batch(database, write_csv(tmp_path), "csv", "replace", None, Context("alice", None))

    sales = app.sales_database(database)
    assert sales is not None and sales.rows == 6 and len(sales.history) == 3


def test_a_file_that_fails_validation_leaves_no_batch_and_no_event(
    app: SegmentationApplication, tmp_path: Path
) -> None:
    database = _imported(app, tmp_path)
    app.configure(database, SMALL_CONFIG, Context("alice", None))
    head = app.head_position()
    batches = set((app.storage.root / "databases" / database / "batches").iterdir())
    bad_date = write_csv(
        tmp_path, "customer,name,day,amount,order,region\nA,Ann,2024-01-10,1,o9,N\nB,Bob,notadate,2,o8,S\n"
    )

    with pytest.raises(InvalidCommand) as raised:
        app.import_batch(database, bad_date, "csv", "append", None, Context("alice", None))

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
        app.import_batch(
            database, write_csv(tmp_path, content), "csv", "append", None, Context("alice", None)
        )

    assert app.head_position() == head
    assert app.sales_database(database) is None


def test_configuration_guards(app: SegmentationApplication, tmp_path: Path) -> None:
    database = _imported(app, tmp_path)

    with pytest.raises(NotFound):
        app.edit_configuration(database, {"grouping": 5}, Context("alice", None))
    with pytest.raises(InvalidCommand) as unknown:
        app.configure(database, {**SMALL_CONFIG, "customer_column": "nope"}, Context("alice", None))
    assert unknown.value.errors[0].field == "customer_column"
    with pytest.raises(InvalidCommand) as cuts:
        app.configure(
            database, {**SMALL_CONFIG, "thresholds": {"frequency": [1, 3, 2, 4]}}, Context("alice", None)
        )
    assert cuts.value.errors[0].field == "thresholds.frequency"
    with pytest.raises(InvalidCommand):
        app.configure(database, {**SMALL_CONFIG, "sales_column": "region"}, Context("alice", None))
    with pytest.raises(InvalidCommand):
        app.configure(database, {**SMALL_CONFIG, "grouping": 7}, Context("alice", None))
    head = app.head_position()
    assert app.configuration(database) is None

    first = app.configure(database, SMALL_CONFIG, Context("alice", "setup"))

    assert first.version == 1 and first.position == head + 1
    with pytest.raises(Conflict):
        app.configure(database, SMALL_CONFIG, Context("alice", None))


def test_removal_rules_threshold_sets_and_their_guards(app: SegmentationApplication, tmp_path: Path) -> None:
    database = _imported(app, tmp_path)
    app.configure(database, SMALL_CONFIG, Context("alice", None))

    removed = app.remove_customers(database, "region", ["East"], None, Context("bob", "closed", expected=1))
    created = app.create_threshold_set(
        database, "South", {"region": ["South"]}, {"monetary": [1, 2, 3, 4]}, Context("alice")
    )
    rule_id, set_id = removed.body["rule_id"], created.body["threshold_set_id"]

    assert (removed.version, created.version) == (2, 3)
    configuration = app.configuration(database)
    assert configuration is not None
    assert configuration.active_rules[0]["created_by"] == "bob"
    assert configuration.live_threshold_sets[0]["name"] == "South"
    with pytest.raises(InvalidCommand):
        app.create_threshold_set(database, "south", {"region": ["North"]}, {}, Context("alice", None))
    with pytest.raises(InvalidCommand):
        app.remove_customers(database, "amount", ["1"], None, Context("bob", None))
    with pytest.raises(NotFound):
        app.restore_customers(database, "no-such-rule", Context("bob", None))
    with pytest.raises(VersionMismatch):
        app.remove_customers(database, "region", ["North"], None, Context("bob", None, expected=1))

    app.restore_customers(database, rule_id, Context("carol", "reopened"))
    app.edit_threshold_set(database, set_id, {"name": "Southern"}, Context("alice", None))
    app.delete_threshold_set(database, set_id, Context("alice", None))

    configuration = app.configuration(database)
    assert configuration is not None and configuration.version == 6
    assert configuration.active_rules == [] and configuration.rules[rule_id]["restored_by"] == "carol"
    with pytest.raises(NotFound):
        app.restore_customers(database, rule_id, Context("bob", None))


def test_delete_then_configure_again_continues_the_history(
    app: SegmentationApplication, tmp_path: Path
) -> None:
    database = _imported(app, tmp_path)
    app.configure(database, SMALL_CONFIG, Context("alice", None))
    app.remove_customers(database, "region", ["East"], None, Context("bob", None))

    app.delete_configuration(database, Context("alice", "start over"))
    again = app.configure(database, {**SMALL_CONFIG, "grouping": 5}, Context("alice", None))

    configuration = app.configuration(database)
    assert again.version == 4
    assert configuration is not None and configuration.settings["grouping"] == 5
    assert configuration.active_rules == []
    past = app.configuration(database, version=2)
    assert past is not None and past.settings["grouping"] == 10 and len(past.active_rules) == 1


def test_racing_writers_with_if_match_one_wins_and_without_all_land(
    app: SegmentationApplication, tmp_path: Path
) -> None:
    database = _imported(app, tmp_path)
    app.configure(database, SMALL_CONFIG, Context("alice"))

    def pinned(value: str) -> object:
        try:
            return app.remove_customers(database, "region", [value], None, Context("bob", expected=1))
        except VersionMismatch as exc:
            return exc

    def unpinned(value: str) -> object:
        return app.remove_customers(database, "region", [value], None, Context("bob"))

    with ThreadPoolExecutor(max_workers=4) as pool:
        pinned_results = list(pool.map(pinned, [f"p{i}" for i in range(6)]))
    wins = [r for r in pinned_results if not isinstance(r, VersionMismatch)]
    assert len(wins) == 1
    with ThreadPoolExecutor(max_workers=4) as pool:
        unpinned_results = list(pool.map(unpinned, [f"u{i}" for i in range(6)]))
    assert sorted(r.version for r in unpinned_results) == list(range(3, 9))  # type: ignore[attr-defined]
    configuration = app.configuration(database)
    assert configuration is not None and configuration.version == 8


def test_a_retried_command_with_the_same_idempotency_key_writes_once(
    app: SegmentationApplication, tmp_path: Path
) -> None:
    database = _imported(app, tmp_path)
    app.configure(database, SMALL_CONFIG, Context("alice"))
    ctx = Context("bob", "closed", idempotency_key="k-1", fingerprint="same request")

    first = app.remove_customers(database, "region", ["East"], None, ctx)
    head = app.head_position()
    again = app.remove_customers(database, "region", ["East"], None, ctx)

    assert again == first
    assert app.head_position() == head
    with pytest.raises(InvalidCommand) as reused:
        app.remove_customers(
            database, "region", ["West"], None, Context("bob", idempotency_key="k-1", fingerprint="x")
        )
    assert reused.value.errors[0].field == "Idempotency-Key"


def test_racing_retries_of_one_import_store_one_batch(app: SegmentationApplication, tmp_path: Path) -> None:
    database = _imported(app, tmp_path)
    source = write_csv(tmp_path)
    ctx = Context("alice", idempotency_key="upload-7", fingerprint="the same file")

    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(
            pool.map(lambda _: app.import_batch(database, source, "csv", "append", None, ctx), range(4))
        )

    assert len({r.body["batch_id"] for r in results}) == 1
    assert len({r.position for r in results}) == 1
    sales = app.sales_database(database)
    assert sales is not None and len(sales.current) == 2
    files = list((app.storage.root / "databases" / database / "batches").glob("*.parquet"))
    assert len(files) == 2  # the losers' staged files are gone


def _types(app: SegmentationApplication, database: str) -> dict[str, str]:
    sales = app.sales_database(database)
    assert sales is not None
    return sales.column_types


def test_appending_decimals_to_whole_numbers_widens_the_column(
    app: SegmentationApplication, tmp_path: Path
) -> None:
    database = new_database()
    app.import_batch(
        database, write_csv(tmp_path, "cust,day,amt\nA,2024-01-01,5\n"), "csv", "append", None, Context("a")
    )

    app.import_batch(
        database,
        write_csv(tmp_path, "cust,day,amt\nB,2024-01-02,5.75\n"),
        "csv",
        "append",
        None,
        Context("a"),
    )

    sales = app.sales_database(database)
    assert sales is not None and sales.column_types["amt"] == "number"
    files = [str(app.storage.path(b["file"])) for b in sales.current]
    values = duckdb.execute(
        f"SELECT amt FROM read_parquet({files}, union_by_name=true) ORDER BY cust"
    ).fetchall()
    assert values == [(5.0,), (5.75,)]


@pytest.mark.parametrize(
    ("content", "field", "words"),
    [
        ("cust,day,amt\nA,2024-01-01,nan\n", "amt", "row 1: not a finite number"),
        ("cust,day,amt\nA,2024-01-01,1\nB,2024-01-02,inf\n", "amt", "row 2: not a finite number"),
        ("cust,day,amt\nA,2024-01-01,1\nB,2024-01-02\n", "body", "could not be read"),
        ('cust,day,amt\n"A,2024-01-01,1\n', "body", "could not be read"),
    ],
)
def test_files_that_would_be_misread_are_refused(
    app: SegmentationApplication, tmp_path: Path, content: str, field: str, words: str
) -> None:
    with pytest.raises(InvalidCommand) as raised:
        app.import_batch(new_database(), write_csv(tmp_path, content), "csv", "append", None, Context("a"))

    assert raised.value.errors[0].field == field
    assert words in raised.value.errors[0].message
    assert str(tmp_path) not in raised.value.errors[0].message


def test_ndjson_lines_must_be_objects(app: SegmentationApplication, tmp_path: Path) -> None:
    path = tmp_path / "rows.ndjson"
    path.write_text("[1, 2]\n[3, 4]\n")

    with pytest.raises(InvalidCommand):
        app.import_batch(new_database(), path, "ndjson", "append", None, Context("a"))


def test_an_append_reads_dates_with_the_format_of_the_data(
    app: SegmentationApplication, tmp_path: Path
) -> None:
    database = new_database()
    first = write_csv(tmp_path, "cust,day,amt\nA,12/31/2016,1\n")
    app.import_batch(database, first, "csv", "append", "%m/%d/%Y", Context("a"))

    app.import_batch(
        database, write_csv(tmp_path, "cust,day,amt\nB,01/02/2017,1\n"), "csv", "append", None, Context("a")
    )

    sales = app.sales_database(database)
    assert sales is not None
    files = [str(app.storage.path(b["file"])) for b in sales.current]
    days = duckdb.execute(f"SELECT CAST(day AS VARCHAR) FROM read_parquet({files}) ORDER BY cust").fetchall()
    assert days == [("2016-12-31",), ("2017-01-02",)]  # January 2nd, not February 1st
