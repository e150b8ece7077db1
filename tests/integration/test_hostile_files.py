"""Hostile files: each imports correctly or is refused naming the row and/or column, and a
refused one leaves no batch file and no event, on each event store."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import duckdb
import pytest

from service.aggregates.errors import InvalidCommand
from service.application import Context, SegmentationApplication
from tests.integration.conftest import SMALL_CONFIG, new_database, write_csv

CTX = Context("alice", "hostile file")


def _write(tmp_path: Path, content: bytes, suffix: str = "csv") -> Path:
    path = tmp_path / f"{uuid.uuid4().hex}.{suffix}"
    path.write_bytes(content)
    return path


def _batch_files(app: SegmentationApplication, database: str) -> list[Path]:
    folder = app.storage.root / "databases" / database / "batches"
    return sorted(folder.iterdir()) if folder.exists() else []


def _refuse(
    app: SegmentationApplication,
    path: Path,
    fmt: str = "csv",
    database: str | None = None,
    date_format: str | None = None,
) -> list[tuple[str, str]]:
    database = database or new_database()
    head = app.head_position()
    files = _batch_files(app, database)
    with pytest.raises(InvalidCommand) as raised:
        app.import_batch(database, path, fmt, "append", date_format, CTX)
    assert app.head_position() == head
    assert _batch_files(app, database) == files
    return [(e.field, e.message) for e in raised.value.errors]


def _import(app: SegmentationApplication, path: Path, fmt: str = "csv", database: str | None = None) -> str:
    database = database or new_database()
    app.import_batch(database, path, fmt, "append", None, CTX)
    return database


def _rows(
    app: SegmentationApplication, database: str
) -> tuple[list[tuple[str, str]], list[tuple[object, ...]]]:
    sales = app.sales_database(database)
    assert sales is not None
    files = [str(app.storage.path(b["file"])) for b in sales.current]
    relation = duckdb.sql(f"SELECT * FROM read_parquet({files})")
    return [(c, str(t)) for c, t in zip(relation.columns, relation.types, strict=True)], relation.fetchall()


def test_an_empty_file_is_refused(app: SegmentationApplication, tmp_path: Path) -> None:
    errors = _refuse(app, _write(tmp_path, b""))

    assert errors == [("body", "the file is empty")]


def test_a_header_without_rows_is_refused(app: SegmentationApplication, tmp_path: Path) -> None:
    errors = _refuse(app, _write(tmp_path, b"cust,day,amt\n"))

    assert errors == [("body", "the file has no data rows")]


@pytest.mark.parametrize(
    ("header", "field"),
    [("cust,amt,cust", "cust"), ("cust,Amt,amt", "amt"), ("cust, amt ,amt", "amt")],
)
def test_duplicate_column_names_are_refused(
    app: SegmentationApplication, tmp_path: Path, header: str, field: str
) -> None:
    errors = _refuse(app, _write(tmp_path, f"{header}\nA,1,2\n".encode()))

    assert len(errors) == 1
    assert errors[0][0] == field
    assert "duplicate column name" in errors[0][1]


@pytest.mark.parametrize(
    ("header", "field", "words"),
    [
        ('cust,"a\nb",amt', "column 2", "control character"),
        ("cust,a\x01b,amt", "column 2", "control character"),
        ("cust,,amt", "column 2", "blank"),
        ("cust,   ,amt", "column 2", "blank"),
        ("cust," + "x" * 201 + ",amt", "column 2", "201 characters"),
    ],
)
def test_bad_column_names_are_refused(
    app: SegmentationApplication, tmp_path: Path, header: str, field: str, words: str
) -> None:
    errors = _refuse(app, _write(tmp_path, f"{header}\nA,1,2\n".encode()))

    assert errors[0][0] == field
    assert words in errors[0][1]
    assert "\n" not in errors[0][1] and "\x01" not in errors[0][1]


def test_a_column_name_of_200_characters_is_fine(app: SegmentationApplication, tmp_path: Path) -> None:
    name = "é" * 200
    database = _import(app, _write(tmp_path, f"cust,{name}\nA,1\n".encode()))

    assert _rows(app, database)[0][1][0] == name


def test_a_byte_order_mark_is_not_part_of_the_first_name(
    app: SegmentationApplication, tmp_path: Path
) -> None:
    database = _import(app, _write(tmp_path, "\ufeffcust,amt\nA,1.5\n".encode()))

    columns, rows = _rows(app, database)
    assert columns == [("cust", "VARCHAR"), ("amt", "DOUBLE")]
    assert rows == [("A", 1.5)]


def test_semicolon_separators(app: SegmentationApplication, tmp_path: Path) -> None:
    database = _import(app, _write(tmp_path, b"cust;day;amt\nA;2024-01-02;1.5\nB;2024-01-03;2\n"))

    columns, rows = _rows(app, database)
    assert columns == [("cust", "VARCHAR"), ("day", "DATE"), ("amt", "DOUBLE")]
    assert [r[0] for r in rows] == ["A", "B"]


def test_quoted_newlines_stay_inside_their_field(app: SegmentationApplication, tmp_path: Path) -> None:
    content = b'cust,note,amt\nA,"first line\nsecond line",1\nB,plain,2\n'
    database = _import(app, _write(tmp_path, content))

    _, rows = _rows(app, database)
    assert rows == [("A", "first line\nsecond line", 1), ("B", "plain", 2)]


def test_mixed_types_in_a_column_import_as_text(app: SegmentationApplication, tmp_path: Path) -> None:
    database = _import(app, _write(tmp_path, b"cust,v\nA,1\nB,abc\nC,2.5\n"))

    columns, rows = _rows(app, database)
    assert columns == [("cust", "VARCHAR"), ("v", "VARCHAR")]
    assert [r[1] for r in rows] == ["1", "abc", "2.5"]


def test_a_value_of_another_type_after_the_sample_still_makes_the_column_text(
    app: SegmentationApplication, tmp_path: Path
) -> None:
    # The sniffer samples the first rows; the whole file decides the type.
    lines = [f"C{i},{i}" for i in range(30_000)] + ["Z,not a number"]
    database = _import(app, _write(tmp_path, ("cust,v\n" + "\n".join(lines) + "\n").encode()))

    columns, rows = _rows(app, database)
    assert columns == [("cust", "VARCHAR"), ("v", "VARCHAR")]
    assert rows[-1] == ("Z", "not a number") and len(rows) == 30_001


def test_a_column_empty_throughout_the_sample_takes_its_later_type(
    app: SegmentationApplication, tmp_path: Path
) -> None:
    lines = [f"C{i}," for i in range(30_000)] + ["Z,2024-05-01"]
    database = _import(app, _write(tmp_path, ("cust,day\n" + "\n".join(lines) + "\n").encode()))

    columns, rows = _rows(app, database)
    assert columns == [("cust", "VARCHAR"), ("day", "DATE")]
    assert str(rows[-1][1]) == "2024-05-01"


@pytest.mark.parametrize("line", [2, 3, 30_002])
def test_non_utf8_bytes_are_refused_naming_the_line(
    app: SegmentationApplication, tmp_path: Path, line: int
) -> None:
    rows = [b"C%d,Ann" % i for i in range(line - 2)] + [b"X,Jos\xe9", b"Y,Bob"]
    errors = _refuse(app, _write(tmp_path, b"cust,name\n" + b"\n".join(rows) + b"\n"))

    assert errors == [("body", f"line {line}: not UTF-8 text; save the file as UTF-8")]


def test_a_ten_megabyte_field_is_refused_naming_the_line(
    app: SegmentationApplication, tmp_path: Path
) -> None:
    # Refused on purpose (see storage.MAX_ROW_BYTES): no sales field needs megabytes.
    content = b"cust,note\nA,short\nB," + b"x" * (10 * 1024 * 1024) + b"\nC,short\n"
    errors = _refuse(app, _write(tmp_path, content))

    assert errors[0][0] == "body"
    assert errors[0][1].startswith("line 3: longer than 2,000,000 bytes")


def test_dates_that_do_not_parse_in_an_append_name_row_and_column(
    app: SegmentationApplication, tmp_path: Path
) -> None:
    database = _import(app, write_csv(tmp_path))
    app.configure(database, SMALL_CONFIG, CTX)
    bad = "customer,name,day,amount,order,region\nE,Eve,2024-04-01,5,o6,North\nF,Fay,31/04/2024,5,o7,North\n"

    errors = _refuse(app, write_csv(tmp_path, bad), database=database)

    assert errors == [("day", "row 2: value is not a date")]


def test_dates_that_do_not_parse_with_a_date_format_name_row_and_column(
    app: SegmentationApplication, tmp_path: Path
) -> None:
    database = new_database()
    first = write_csv(tmp_path, "cust,day,amt\nA,12/31/2016,1\n")
    app.import_batch(database, first, "csv", "append", "%m/%d/%Y", CTX)
    app.configure(database, {"customer_column": "cust", "date_column": "day", "sales_column": "amt"}, CTX)
    rows = "".join(f"C{i},01/{i % 28 + 1:02d}/2017,1\n" for i in range(25_000))

    errors = _refuse(app, write_csv(tmp_path, f"cust,day,amt\n{rows}D,2017-13-45,1\n"), database=database)

    assert errors == [("day", "row 25001: value is not a date")]


def test_numbers_with_thousands_separators_become_numbers(
    app: SegmentationApplication, tmp_path: Path
) -> None:
    content = (
        b'cust,amt,qty,code,mixed\nA,"1,234.50","1,000",12,"1,234"\n'
        b'B,12,7,"3,4",abc\nC,"-1,000,000.25","12,345",5,"2,000"\nD,,,,\n'
    )
    database = _import(app, _write(tmp_path, content))

    columns, rows = _rows(app, database)
    assert columns == [
        ("cust", "VARCHAR"),
        ("amt", "DOUBLE"),
        ("qty", "BIGINT"),
        ("code", "VARCHAR"),  # "3,4" is no thousands-separated number
        ("mixed", "VARCHAR"),
    ]
    assert [r[1] for r in rows] == [1234.5, 12.0, -1000000.25, None]
    assert [r[2] for r in rows] == [1000, 7, 12345, None]
    sales = app.sales_database(database)
    assert sales is not None
    assert {c["name"]: c["type"] for c in sales.columns}["amt"] == "number"


def test_thousands_separators_in_an_append_to_a_number_column(
    app: SegmentationApplication, tmp_path: Path
) -> None:
    database = _import(app, write_csv(tmp_path))
    app.configure(database, SMALL_CONFIG, CTX)
    more = 'customer,name,day,amount,order,region\nE,Eve,2024-04-01,"1,500.00",o6,North\n'

    app.import_batch(database, write_csv(tmp_path, more), "csv", "append", None, CTX)

    _, rows = _rows(app, database)
    assert rows[-1][3] == 1500.0


@pytest.mark.parametrize(
    ("content", "line"),
    [
        (b'{"a": 1}\n[1, 2]\n{"a": 3}\n', 2),
        (b'{"a": 1}\n{"a": 2}\n\n"text"\n', 4),
        (b"5\n", 1),
    ],
)
def test_ndjson_lines_that_are_not_objects_are_refused(
    app: SegmentationApplication, tmp_path: Path, content: bytes, line: int
) -> None:
    errors = _refuse(app, _write(tmp_path, content, "ndjson"), "ndjson")

    assert errors[0][0] == "body"
    assert errors[0][1].startswith(f"line {line}: not a JSON object")


def test_malformed_ndjson_names_the_line(app: SegmentationApplication, tmp_path: Path) -> None:
    errors = _refuse(app, _write(tmp_path, b'{"a": 1}\n{"a": 2\n', "ndjson"), "ndjson")

    assert errors == [("body", "line 2: malformed JSON (Expecting ',' delimiter)")]


def test_ndjson_imports(app: SegmentationApplication, tmp_path: Path) -> None:
    lines = [{"cust": "A", "amt": 1.5, "n": 1}, {"cust": "B", "amt": "1e400", "n": 2}]
    path = _write(tmp_path, "\n".join(json.dumps(x) for x in lines).encode(), "ndjson")
    database = _import(app, path, "ndjson")

    columns, _ = _rows(app, database)
    assert columns == [("cust", "VARCHAR"), ("amt", "VARCHAR"), ("n", "BIGINT")]


def test_a_parquet_lacking_a_column_cannot_be_appended(app: SegmentationApplication, tmp_path: Path) -> None:
    database = _import(app, write_csv(tmp_path))
    parquet = tmp_path / "short.parquet"
    duckdb.execute(
        "COPY (SELECT 'E' AS customer, DATE '2024-04-01' AS day, 5.0 AS amount) "
        f"TO '{parquet}' (FORMAT parquet)"
    )

    errors = _refuse(app, parquet, "parquet", database=database)

    assert {field for field, _ in errors} == {"name", "order", "region"}
    assert all("missing" in message for _, message in errors)


def test_a_parquet_with_the_right_columns_appends(app: SegmentationApplication, tmp_path: Path) -> None:
    database = _import(app, write_csv(tmp_path))
    parquet = tmp_path / "more.parquet"
    duckdb.execute(
        "COPY (SELECT 'o9' AS \"order\", 'E' AS customer, 'Eve' AS name, DATE '2024-04-01' AS day, "
        f"CAST(5 AS INTEGER) AS amount, 'North' AS region) TO '{parquet}' (FORMAT parquet)"
    )

    app.import_batch(database, parquet, "parquet", "append", None, CTX)

    columns, rows = _rows(app, database)
    assert [c for c, _ in columns] == ["customer", "name", "day", "amount", "order", "region"]
    assert rows[-1] == ("E", "Eve", rows[-1][2], 5.0, "o9", "North")


@pytest.mark.parametrize(
    "content", [b"", b"PAR1 this is not parquet PAR1", b"cust,amt\nA,1\n", b"PAR1" + b"\x00" * 64 + b"PAR1"]
)
def test_a_parquet_that_is_not_parquet_is_refused(
    app: SegmentationApplication, tmp_path: Path, content: bytes
) -> None:
    errors = _refuse(app, _write(tmp_path, content, "parquet"), "parquet")

    assert errors[0][0] == "body"


def test_a_parquet_with_a_bad_column_name_is_refused(app: SegmentationApplication, tmp_path: Path) -> None:
    parquet = tmp_path / "names.parquet"
    duckdb.execute(f"COPY (SELECT 'A' AS cust, 1 AS \"a\nb\") TO '{parquet}' (FORMAT parquet)")

    errors = _refuse(app, parquet, "parquet")

    assert errors[0][0] == "column 2"


@pytest.mark.parametrize("name", ["../x", "a\x00b", "..", "a/b", "", "x" * 65, "-x", "a b"])
def test_bad_database_names_are_refused(app: SegmentationApplication, tmp_path: Path, name: str) -> None:
    head = app.head_position()

    with pytest.raises(InvalidCommand) as raised:
        app.import_batch(name, write_csv(tmp_path), "csv", "append", None, CTX)

    assert raised.value.errors[0].field == "database"
    assert app.head_position() == head
    assert not (app.storage.root / "x").exists()
