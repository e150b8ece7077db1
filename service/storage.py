"""Immutable batch files: an import is parsed and validated whole, then stored as Parquet.

A batch is first written beside its final name and renamed into place only when every row has
been read and checked, so a file that fails leaves nothing behind. The application records the
batch by an event only after the rename; batches are never modified or deleted afterwards, which
is what lets a replay read the data exactly as it was imported.
"""

from __future__ import annotations

import contextlib
import os
import re
import uuid
from dataclasses import dataclass
from pathlib import Path

import duckdb

from service.aggregates.errors import FieldError, InvalidCommand

FORMATS = {
    "text/csv": "csv",
    "application/csv": "csv",
    "application/x-ndjson": "ndjson",
    "application/ndjson": "ndjson",
    "application/vnd.apache.parquet": "parquet",
    "application/x-parquet": "parquet",
}

#: DuckDB's inferred types, reduced to the few the service reasons about.
_CANONICAL = {
    "VARCHAR": "text",
    "BOOLEAN": "boolean",
    "DATE": "date",
    "DOUBLE": "number",
    "FLOAT": "number",
    "BIGINT": "integer",
    "INTEGER": "integer",
    "SMALLINT": "integer",
    "TINYINT": "integer",
    "UBIGINT": "integer",
    "UINTEGER": "integer",
    "USMALLINT": "integer",
    "UTINYINT": "integer",
    "HUGEINT": "number",
}
#: How each canonical type is stored in a batch file.
_STORED = {
    "text": "VARCHAR",
    "boolean": "BOOLEAN",
    "date": "DATE",
    "timestamp": "TIMESTAMP",
    "number": "DOUBLE",
    "integer": "BIGINT",
}

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


def validate_database_name(name: str) -> None:
    """A database name becomes a folder and a Redis key: letters, digits, ``_ . -``, at most 64."""
    if not _NAME.match(name) or ".." in name:
        raise InvalidCommand(
            [
                FieldError(
                    "database", "use 1-64 letters, digits, '_', '.' or '-', starting with a letter or digit"
                )
            ]
        )


def canonical_type(duckdb_type: str) -> str:
    """The service's name for a DuckDB column type."""
    if duckdb_type.startswith("DECIMAL"):
        return "number"
    if duckdb_type.startswith("TIMESTAMP"):
        return "timestamp"
    return _CANONICAL.get(duckdb_type, "text")


@dataclass(frozen=True)
class StagedBatch:
    """A validated batch written beside its final place, not yet visible."""

    batch_id: str
    relative_path: str
    temp_path: Path
    rows: int
    columns: list[dict[str, str]]


class BatchStorage:
    """The storage root shared by every worker: batch files under ``databases/{name}/batches``."""

    def __init__(self, root: Path) -> None:
        self.root = root
        (root / "tmp").mkdir(parents=True, exist_ok=True)

    def upload_path(self) -> Path:
        """A fresh path where a request body can be streamed before parsing."""
        return self.root / "tmp" / f"upload-{uuid.uuid4().hex}"

    def path(self, relative: str) -> Path:
        """The absolute path of a stored batch file."""
        return self.root / relative

    def stage(
        self,
        database: str,
        source: Path,
        fmt: str,
        date_format: str | None,
        established: list[dict[str, str]] | None,
        required: dict[str, str] | None = None,
    ) -> StagedBatch:
        """Parse and validate ``source`` whole, then write it as a hidden Parquet file.

        ``established`` are the columns an appended batch must have (its values are cast to
        their types); ``required`` maps columns the configuration needs to the kind of type it
        needs ("date", "number"), checked on a replacement too.
        """
        batch_id = uuid.uuid4().hex
        relative = f"databases/{database}/batches/{batch_id}.parquet"
        final = self.root / relative
        created_folder = not final.parent.exists()
        final.parent.mkdir(parents=True, exist_ok=True)
        temp = final.with_name(f".{batch_id}.parquet.tmp")
        if fmt in ("csv", "ndjson"):
            _refuse_binary(source, fmt)
        con = duckdb.connect()
        try:
            _load(con, source, fmt, date_format)
            described = con.execute("DESCRIBE raw").fetchall()
            columns = [{"name": row[0], "type": canonical_type(row[1])} for row in described]
            rows = con.execute("SELECT count(*) FROM raw").fetchone()[0]  # type: ignore[index]
            if rows == 0:
                raise InvalidCommand([FieldError("body", "the file has no data rows")])
            _refuse_non_finite(con, columns)
            if established is not None:
                columns = _conform(con, columns, established, date_format)
            if required:
                _check_required(con, columns, required, date_format)
            select = ", ".join(
                _cast_expr(c["name"], actual, c["type"], date_format)
                for c, actual in zip(columns, _actual_types(con), strict=True)
            )
            con.execute(
                f"COPY (SELECT {select} FROM raw ORDER BY rowid) TO '{_sql_path(temp)}' "
                "(FORMAT parquet, COMPRESSION zstd)"
            )
        except BaseException as exc:
            temp.unlink(missing_ok=True)
            if created_folder:
                with contextlib.suppress(OSError):
                    final.parent.rmdir()
                    final.parent.parent.rmdir()
            if isinstance(exc, duckdb.Error):
                raise InvalidCommand([FieldError("body", _duckdb_message(exc, source))]) from exc
            raise
        finally:
            con.close()
        return StagedBatch(batch_id, relative, temp, rows, columns)

    def publish(self, staged: StagedBatch) -> None:
        """Move a staged batch to its final name (atomic on one file system)."""
        os.replace(staged.temp_path, self.root / staged.relative_path)

    def discard(self, staged: StagedBatch, published: bool) -> None:
        """Remove a batch whose event could not be written."""
        staged.temp_path.unlink(missing_ok=True)
        if published:
            (self.root / staged.relative_path).unlink(missing_ok=True)


def _refuse_binary(source: Path, fmt: str) -> None:
    """Text formats never hold NUL bytes; a body that does is some other kind of file."""
    with open(source, "rb") as handle:
        head = handle.read(1 << 16)
    if b"\x00" in head:
        raise InvalidCommand([FieldError("body", f"the body is binary data, not {fmt.upper()} text")])


def _delimiter(source: Path) -> str | None:
    """The header line's delimiter (the most frequent of , ; tab |), so a short or long row is
    reported as the error it is instead of the sniffer falling back to a one-column reading."""
    with open(source, "rb") as handle:
        header = handle.readline(1 << 16).decode("utf-8", errors="replace").lstrip("\ufeff")
    counts = {d: header.count(d) for d in (",", ";", "\t", "|")}
    best = max(counts, key=lambda d: counts[d])
    return best if counts[best] > 0 else None


def _load(con: duckdb.DuckDBPyConnection, source: Path, fmt: str, date_format: str | None) -> None:
    path = _sql_path(source)
    if fmt == "csv":
        # RFC 4180 quoting, always: a sniffer free to drop quoting would read an unterminated
        # quote as part of a value instead of reporting it.
        options = "header = true, sample_size = -1, strict_mode = true, null_padding = false"
        options += ", quote = '\"', escape = '\"'"
        delimiter = _delimiter(source)
        if delimiter is not None:
            options += f", delim = '{_sql_text(delimiter)}'"
        if date_format:
            options += f", dateformat = '{_sql_text(date_format)}'"
        con.execute(f"CREATE TABLE raw AS SELECT * FROM read_csv('{path}', {options})")
    elif fmt == "ndjson":
        options = "format = 'newline_delimited', records = 'true', sample_size = -1"
        if date_format:
            options += f", dateformat = '{_sql_text(date_format)}'"
        con.execute(f"CREATE TABLE raw AS SELECT * FROM read_json('{path}', {options})")
    elif fmt == "parquet":
        con.execute(f"CREATE TABLE raw AS SELECT * FROM read_parquet('{path}')")
    else:  # pragma: no cover - the edge maps content types to these three
        raise InvalidCommand([FieldError("content-type", f"unsupported format {fmt}")])


def _actual_types(con: duckdb.DuckDBPyConnection) -> list[str]:
    return [canonical_type(row[1]) for row in con.execute("DESCRIBE raw").fetchall()]


def _cast_expr(name: str, actual: str, wanted: str, date_format: str | None) -> str:
    column = _ident(name)
    if actual == wanted:
        return f"CAST({column} AS {_STORED[wanted]}) AS {column}"
    if wanted in ("date", "timestamp") and actual == "text" and date_format:
        return f"CAST(strptime({column}, '{_sql_text(date_format)}') AS {_STORED[wanted]}) AS {column}"
    return f"CAST({column} AS {_STORED[wanted]}) AS {column}"


def _first_bad_row(
    con: duckdb.DuckDBPyConnection, name: str, actual: str, wanted: str, date_format: str | None
) -> int | None:
    column = _ident(name)
    if wanted in ("date", "timestamp") and actual == "text" and date_format:
        converted = f"try_strptime({column}, '{_sql_text(date_format)}')"
    else:
        converted = f"TRY_CAST({column} AS {_STORED[wanted]})"
    found = con.execute(
        f"SELECT rowid FROM raw WHERE {column} IS NOT NULL AND {converted} IS NULL ORDER BY rowid LIMIT 1"
    ).fetchone()
    return None if found is None else int(found[0]) + 1


def _refuse_non_finite(con: duckdb.DuckDBPyConnection, columns: list[dict[str, str]]) -> None:
    """NaN and infinities are not sales figures (nor any other measure)."""
    for column in columns:
        if column["type"] != "number":
            continue
        name = _ident(column["name"])
        found = con.execute(
            f"SELECT rowid FROM raw WHERE isnan(CAST({name} AS DOUBLE)) OR isinf(CAST({name} AS DOUBLE)) "
            "ORDER BY rowid LIMIT 1"
        ).fetchone()
        if found is not None:
            raise InvalidCommand([FieldError(column["name"], f"row {found[0] + 1}: not a finite number")])


def _conform(
    con: duckdb.DuckDBPyConnection,
    columns: list[dict[str, str]],
    established: list[dict[str, str]],
    date_format: str | None,
) -> list[dict[str, str]]:
    """An appended batch takes the database's columns and types, or is refused naming why."""
    have = {c["name"]: c["type"] for c in columns}
    want = {c["name"]: c["type"] for c in established}
    missing = [n for n in want if n not in have]
    extra = [n for n in have if n not in want]
    errors = [
        FieldError(n, "column missing from the file; an append needs the database's columns") for n in missing
    ]
    errors += [
        FieldError(n, "column not in the database; import with mode=replace to change columns") for n in extra
    ]
    if errors:
        raise InvalidCommand(errors)
    result = []
    for name, wanted in want.items():
        if wanted == "integer" and have[name] == "number":
            # Whole numbers first, then decimals: the column widens (no value is rounded).
            wanted = "number"
        elif have[name] != wanted and wanted != "text":
            row = _first_bad_row(con, name, have[name], wanted, date_format)
            if row is not None:
                raise InvalidCommand([FieldError(name, f"row {row}: value is not {_article(wanted)}")])
        result.append({"name": name, "type": wanted})
    order = ", ".join(_ident(c["name"]) for c in established)
    con.execute(f"CREATE TABLE conformed AS SELECT {order} FROM raw ORDER BY rowid")
    con.execute("DROP TABLE raw")
    con.execute("ALTER TABLE conformed RENAME TO raw")
    return result


def _article(kind: str) -> str:
    return f"an {kind}" if kind[0] in "aeiou" else f"a {kind}"


def _check_required(
    con: duckdb.DuckDBPyConnection,
    columns: list[dict[str, str]],
    required: dict[str, str],
    date_format: str | None,
) -> None:
    """Columns the configuration uses must survive a replacement with a usable type."""
    have = {c["name"]: c["type"] for c in columns}
    errors: list[FieldError] = []
    for name, kind in required.items():
        if name not in have:
            errors.append(FieldError(name, "the configuration uses this column; the file lacks it"))
        elif kind == "date" and have[name] not in ("date", "timestamp"):
            row = _first_bad_row(con, name, have[name], "date", date_format)
            where = f"row {row}: " if row is not None else ""
            errors.append(FieldError(name, f"{where}the configured date column must hold dates"))
        elif kind == "number" and have[name] not in ("integer", "number"):
            row = _first_bad_row(con, name, have[name], "number", date_format)
            where = f"row {row}: " if row is not None else ""
            errors.append(FieldError(name, f"{where}the configured sales column must hold numbers"))
    if errors:
        raise InvalidCommand(errors)


def _duckdb_message(exc: duckdb.Error, source: Path) -> str:
    """DuckDB's own explanation, without its hints about reader options, the server's paths or
    the SQL it ran."""
    text = str(exc).strip()
    for marker in ("\n\nPossible Solution", "\nPossible fixes", "\n\nFile:", "\n  file =", "\nLINE "):
        text = text.split(marker)[0]
    text = text.replace(str(source), "the file")
    text = re.sub(r"(read_csv|read_json|read_parquet|strptime|CREATE TABLE|COPY)\b.*", "", text)
    text = re.sub(r"^(Invalid Input|Binder|Conversion|Parser) Error: ", "", " ".join(text.split()))
    return "the file could not be read: " + text[:600]


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _sql_text(text: str) -> str:
    return text.replace("'", "''")


def _sql_path(path: Path) -> str:
    return _sql_text(str(path))


def remove_quietly(path: Path) -> None:
    """Delete a temporary file if it is still there."""
    with contextlib.suppress(FileNotFoundError):
        path.unlink()
