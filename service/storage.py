"""Immutable batch files: an import is parsed and validated whole, then stored as Parquet.

A batch is first written beside its final name and renamed into place only when every row has
been read and checked, so a file that fails leaves nothing behind. The application records the
batch by an event only after the rename; batches are never modified or deleted afterwards, which
is what lets a replay read the data exactly as it was imported.

The source is read once: DuckDB copies it straight to the hidden Parquet file, and every check
(finite numbers, thousands separators, an append's types, the configuration's columns) is a
query on that columnar file. It is rewritten only when a column actually needs a cast.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import re
import unicodedata
import uuid
from collections.abc import Callable, Iterator
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

#: Column names become parts of Redis keys, SQL identifiers and error messages.
MAX_COLUMN_NAME = 200

#: The longest row (in bytes) a text file may have. A 10 MB field is refused rather than
#: imported: no field of a sales row needs megabytes, the reader holds a whole row in memory,
#: and column values are copied into the read model's documents. It is DuckDB's own default
#: ``max_line_size``, so CSV and NDJSON share one limit.
MAX_ROW_BYTES = 2_000_000

#: Rows DuckDB's CSV sniffer reads to infer types before the single reading pass. A later value
#: that does not fit makes that pass fail, and the file is read again with the types inferred
#: over every row (``sample_size = -1``), so the types are always those of the whole file.
_SAMPLE_ROWS = 20_480

#: A text column whose every value is a number, some written with thousands separators
#: ("1,234.50"), is imported as numbers.
_NUMBER_TEXT = r"^[+-]?(\d{1,3}(,\d{3})+|\d+)(\.\d+)?$"


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


def validate_column_names(names: list[str]) -> None:
    """Column names reach file paths, Redis keys and SQL: at most 200 characters, no control
    characters, not blank, and unique. DuckDB compares names case-insensitively and trims the
    spaces around CSV headers, so ``Sales`` and `` sales`` are the same column to it (it would
    silently rename one of them): such a pair is refused as a duplicate."""
    errors: list[FieldError] = []
    seen: dict[str, int] = {}
    for index, name in enumerate(names, 1):
        shown = _shown(name)
        problem = None
        if not name.strip():
            problem = "is blank; every column needs a name"
        elif len(name) > MAX_COLUMN_NAME:
            problem = f"is {len(name)} characters long; at most {MAX_COLUMN_NAME} are allowed"
        elif any(unicodedata.category(ch) in ("Cc", "Zl", "Zp") for ch in name):
            problem = "holds a control character (such as a NUL byte or a line break)"
        if problem is not None:
            errors.append(FieldError(f"column {index}", f"the column name {shown} {problem}"))
            continue
        key = name.strip().lower()
        if key in seen:
            errors.append(
                FieldError(name, f"duplicate column name: columns {seen[key]} and {index} are both {shown}")
            )
        else:
            seen[key] = index
    if errors:
        raise InvalidCommand(errors)


def _shown(name: str) -> str:
    """A column name as an error message can quote it: escaped and shortened."""
    text = name if len(name) <= 60 else name[:60] + "..."
    return ascii(text) if any(not ch.isprintable() for ch in text) else repr(text)


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
        rewrite = final.with_name(f".{batch_id}.parquet.rewrite")
        con = duckdb.connect()
        try:
            if source.stat().st_size == 0:
                raise InvalidCommand([FieldError("body", "the file is empty")])
            if fmt in ("csv", "ndjson"):
                _refuse_binary(source, fmt)
            _copy_source(con, source, fmt, date_format, temp)
            staged = _Staged(con, temp)
            validate_column_names([c.name for c in staged.columns])
            rows = staged.count()
            if rows == 0:
                raise InvalidCommand([FieldError("body", "the file has no data rows")])
            _refuse_non_finite(staged)
            if fmt == "csv":
                _read_thousands_separators(staged)
            wanted = {c.name: c.kind for c in staged.columns}
            order = [c.name for c in staged.columns]
            if established is not None:
                wanted = _conform(staged, established, date_format)
                order = [c["name"] for c in established]
            if required:
                _check_required(staged, wanted, required, date_format)
            staged.finish(order, wanted, date_format, rewrite)
            columns = [{"name": name, "type": wanted[name]} for name in order]
        except BaseException as exc:
            temp.unlink(missing_ok=True)
            rewrite.unlink(missing_ok=True)
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


# Reading the source: one pass, straight to the hidden Parquet file.


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


def _csv_header(source: Path, delimiter: str | None) -> list[str]:
    """The header's names as written, read with the csv module: DuckDB renames duplicates
    (``a``, ``a_1``) and blanks (``column1``) silently, so they are checked before it reads."""
    limit = 1 << 20
    with open(source, "rb") as handle:
        head = handle.read(limit + 1)
    text = head[:limit].decode("utf-8", errors="replace").removeprefix("\ufeff")
    consumed = 0

    def lines() -> Iterator[str]:
        nonlocal consumed
        for line in io.StringIO(text, newline=""):
            consumed += len(line)
            yield line

    reader = csv.reader(lines(), delimiter=delimiter or ",", quotechar='"', doublequote=True)
    try:
        header = next(reader)
    except StopIteration:
        raise InvalidCommand([FieldError("body", "the file is empty")]) from None
    except csv.Error as exc:
        raise InvalidCommand([FieldError("body", f"line 1: the header could not be read: {exc}")]) from None
    if len(head) > limit and consumed >= len(text):
        raise InvalidCommand([FieldError("body", "line 1: the header is longer than 1 MiB")])
    return header


def _copy_source(
    con: duckdb.DuckDBPyConnection, source: Path, fmt: str, date_format: str | None, temp: Path
) -> None:
    target = f"'{_sql_path(temp)}' (FORMAT parquet, COMPRESSION zstd)"
    path = _sql_path(source)
    if fmt == "csv":
        delimiter = _delimiter(source)
        validate_column_names(_csv_header(source, delimiter))
        # RFC 4180 quoting, always: a sniffer free to drop quoting would read an unterminated
        # quote as part of a value instead of reporting it.
        options = "header = true, strict_mode = true, null_padding = false, quote = '\"', escape = '\"'"
        options += f", max_line_size = {MAX_ROW_BYTES}"
        if delimiter is not None:
            options += f", delim = '{_sql_text(delimiter)}'"
        if date_format:
            options += f", dateformat = '{_sql_text(date_format)}'"
        try:
            # Types inferred from a sample, then checked by the reading pass itself.
            sampled = f"{options}, sample_size = {_SAMPLE_ROWS}"
            con.execute(f"COPY (SELECT * FROM read_csv('{path}', {sampled})) TO {target}")
            if not _sample_saw_every_column(con, temp):
                raise _ReadAgain
        except (duckdb.Error, _ReadAgain):
            temp.unlink(missing_ok=True)
            try:
                con.execute(
                    f"COPY (SELECT * FROM read_csv('{path}', {options}, sample_size = -1)) TO {target}"
                )
            except duckdb.Error as exc:
                raise InvalidCommand([FieldError("body", _csv_error(exc, source))]) from exc
    elif fmt == "ndjson":
        options = "format = 'newline_delimited', records = 'true', sample_size = -1"
        options += f", maximum_object_size = {MAX_ROW_BYTES}"
        if date_format:
            options += f", dateformat = '{_sql_text(date_format)}'"
        try:
            con.execute(f"COPY (SELECT * FROM read_json('{path}', {options})) TO {target}")
        except duckdb.Error as exc:
            raise InvalidCommand([FieldError("body", _ndjson_error(exc, source))]) from exc
    elif fmt == "parquet":
        con.execute(f"COPY (SELECT * FROM read_parquet('{path}')) TO {target}")
    else:  # pragma: no cover - the edge maps content types to these three
        raise InvalidCommand([FieldError("content-type", f"unsupported format {fmt}")])


class _ReadAgain(Exception):
    """The sampled types may not be those of the whole file: read it again, inferring over all rows."""


def _sample_saw_every_column(con: duckdb.DuckDBPyConnection, temp: Path) -> bool:
    """False when a text column was empty throughout the sample but has values later: the
    sniffer calls an all-empty sample text, where the whole file might have been numbers or
    dates. (Any other sampled type the reading pass accepted is the whole file's type too.)"""
    parquet = f"read_parquet('{_sql_path(temp)}')"
    texts = [
        row[0] for row in con.execute(f"DESCRIBE SELECT * FROM {parquet}").fetchall() if row[1] == "VARCHAR"
    ]
    if not texts:
        return True
    # Half the sample: the sniffer's rows are the file's first ones, less the header.
    window = ", ".join(f"count({_ident(n)})" for n in texts)
    counts = con.execute(
        f"SELECT {window} FROM (SELECT * FROM {parquet} LIMIT {_SAMPLE_ROWS // 2})"
    ).fetchone()
    unseen = [n for n, seen in zip(texts, counts or (), strict=True) if seen == 0]
    if not unseen:
        return True
    later = con.execute(
        f"SELECT {', '.join(f'count({_ident(n)})' for n in unseen)} FROM {parquet}"
    ).fetchone()
    return not any(later or ())


@dataclass
class _Column:
    """A column of the hidden file: its stored DuckDB type, its service kind, and the SQL that
    reads its value as that kind (the column itself, or a conversion of it)."""

    name: str
    stored: str
    kind: str
    expr: str


class _Staged:
    """The hidden Parquet file every check queries, in file order (row N is the file's Nth)."""

    def __init__(self, con: duckdb.DuckDBPyConnection, path: Path) -> None:
        self.con = con
        self.path = path
        parquet = f"read_parquet('{_sql_path(path)}')"
        described = con.execute(f"DESCRIBE SELECT * FROM {parquet}").fetchall()
        self.columns = [_Column(r[0], r[1], canonical_type(r[1]), _ident(r[0])) for r in described]
        # The Parquet reader's row numbers, unless a data column shadows that name.
        names = {c.name.lower() for c in self.columns}
        row = "file_row_number" if "file_row_number" not in names else "row_number() OVER () - 1"
        self.rows = f"(SELECT {row} AS __segmentation_row__, * FROM {parquet})"

    def column(self, name: str) -> _Column:
        return next(c for c in self.columns if c.name == name)

    def count(self) -> int:
        found = self.con.execute(f"SELECT count(*) FROM read_parquet('{_sql_path(self.path)}')").fetchone()
        return int(found[0]) if found is not None else 0

    def first_row(self, condition: str) -> int | None:
        """The 1-based number of the first row meeting ``condition``, if any."""
        found = self.con.execute(
            f"SELECT __segmentation_row__ FROM {self.rows} WHERE {condition} ORDER BY 1 LIMIT 1"
        ).fetchone()
        return None if found is None else int(found[0]) + 1

    def any_row(self, condition: str) -> bool:
        """Whether some row meets ``condition`` (stops at the first)."""
        parquet = f"read_parquet('{_sql_path(self.path)}')"
        return self.con.execute(f"SELECT 1 FROM {parquet} WHERE {condition} LIMIT 1").fetchone() is not None

    def finish(
        self, order: list[str], wanted: dict[str, str], date_format: str | None, rewrite: Path
    ) -> None:
        """Rewrite the file with the batch's column order and types, only if either differs."""
        current = [c.name for c in self.columns]
        exprs = []
        same = order == current
        for name in order:
            column = self.column(name)
            same = same and column.expr == _ident(name) and column.stored == _STORED[wanted[name]]
            exprs.append(_cast_expr(column, wanted[name], date_format))
        if same:
            return
        self.con.execute(
            f"COPY (SELECT {', '.join(exprs)} FROM read_parquet('{_sql_path(self.path)}')) "
            f"TO '{_sql_path(rewrite)}' (FORMAT parquet, COMPRESSION zstd)"
        )
        os.replace(rewrite, self.path)


def _cast_expr(column: _Column, wanted: str, date_format: str | None) -> str:
    alias = _ident(column.name)
    if column.kind == wanted and column.stored == _STORED[wanted]:
        return f"{column.expr} AS {alias}"
    if wanted in ("date", "timestamp") and column.kind == "text" and date_format:
        return f"CAST(strptime({column.expr}, '{_sql_text(date_format)}') AS {_STORED[wanted]}) AS {alias}"
    return f"CAST({column.expr} AS {_STORED[wanted]}) AS {alias}"


#: The largest magnitude of one sales line: the engine sums lines as exact DECIMAL(18, 6).
SALES_LIMIT = 10**12
SALES_LIMIT_TEXT = "a sales value must be smaller than 1,000,000,000,000 in magnitude"


def sales_out_of_range(files: list[Path], column: str) -> bool:
    """Whether any line of ``column`` in these batch files is beyond ``SALES_LIMIT``."""
    if not files:
        return False
    con = duckdb.connect()
    try:
        paths = ", ".join(f"'{_sql_path(f)}'" for f in files)
        found = con.execute(
            f"SELECT 1 FROM read_parquet([{paths}], union_by_name = true) "
            f"WHERE abs(CAST({_ident(column)} AS DOUBLE)) >= {SALES_LIMIT} LIMIT 1"
        ).fetchone()
    finally:
        con.close()
    return found is not None


def _first_bad_row(staged: _Staged, column: _Column, wanted: str, date_format: str | None) -> int | None:
    if wanted in ("date", "timestamp") and column.kind == "text" and date_format:
        converted = f"try_strptime({column.expr}, '{_sql_text(date_format)}')"
    else:
        converted = f"TRY_CAST({column.expr} AS {_STORED[wanted]})"
    return staged.first_row(f"{column.expr} IS NOT NULL AND {converted} IS NULL")


def _refuse_non_finite(staged: _Staged) -> None:
    """NaN and infinities are not sales figures (nor any other measure)."""
    for column in staged.columns:
        if column.kind != "number":
            continue
        value = f"CAST({column.expr} AS DOUBLE)"
        row = staged.first_row(f"isnan({value}) OR isinf({value})")
        if row is not None:
            raise InvalidCommand([FieldError(column.name, f"row {row}: not a finite number")])


def _read_thousands_separators(staged: _Staged) -> None:
    """A CSV text column whose every value is a number, at least one written with thousands
    separators ("1,234.50"), becomes a number column; any other value leaves it text."""
    for column in staged.columns:
        if column.kind != "text":
            continue
        value = column.expr
        if staged.any_row(f"{value} IS NOT NULL AND NOT regexp_full_match({value}, '{_NUMBER_TEXT}')"):
            continue
        separated, decimals, digits = staged.con.execute(
            f"SELECT bool_or(contains({value}, ',')), bool_or(contains({value}, '.')), "
            f"max(length(regexp_replace({value}, '[^0-9]', '', 'g'))) "
            f"FROM read_parquet('{_sql_path(staged.path)}')"
        ).fetchone() or (None, None, None)
        if not separated:
            continue
        # Whole numbers stay integers while BIGINT holds them (18 digits always fit).
        kind = "number" if decimals or (digits or 0) > 18 else "integer"
        column.kind = kind
        column.expr = f"CAST(replace({value}, ',', '') AS {_STORED[kind]})"


def _conform(staged: _Staged, established: list[dict[str, str]], date_format: str | None) -> dict[str, str]:
    """An appended batch takes the database's columns and types, or is refused naming why."""
    have = {c.name: c for c in staged.columns}
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
    result = {}
    for name, wanted in want.items():
        column = have[name]
        if wanted == "integer" and column.kind == "number":
            # Whole numbers first, then decimals: the column widens (no value is rounded).
            wanted = "number"
        elif column.kind != wanted and wanted != "text":
            row = _first_bad_row(staged, column, wanted, date_format)
            if row is not None:
                raise InvalidCommand([FieldError(name, f"row {row}: value is not {_article(wanted)}")])
        result[name] = wanted
    return result


def _article(kind: str) -> str:
    return f"an {kind}" if kind[0] in "aeiou" else f"a {kind}"


def _check_required(
    staged: _Staged, wanted: dict[str, str], required: dict[str, str], date_format: str | None
) -> None:
    """Columns the configuration uses must survive a replacement with a usable type."""
    errors: list[FieldError] = []
    for name, kind in required.items():
        if name not in wanted:
            errors.append(FieldError(name, "the configuration uses this column; the file lacks it"))
        elif kind == "date" and wanted[name] not in ("date", "timestamp"):
            row = _first_bad_row(staged, staged.column(name), "date", date_format)
            where = f"row {row}: " if row is not None else ""
            errors.append(FieldError(name, f"{where}the configured date column must hold dates"))
        elif kind == "number" and wanted[name] not in ("integer", "number"):
            row = _first_bad_row(staged, staged.column(name), "number", date_format)
            where = f"row {row}: " if row is not None else ""
            errors.append(FieldError(name, f"{where}the configured sales column must hold numbers"))
        elif kind == "number":
            row = staged.first_row(f"abs(CAST({staged.column(name).expr} AS DOUBLE)) >= {SALES_LIMIT}")
            if row is not None:
                errors.append(FieldError(name, f"row {row}: {SALES_LIMIT_TEXT}"))
    if errors:
        raise InvalidCommand(errors)


# Errors: DuckDB's explanation, made precise where DuckDB is vague.


def _csv_error(exc: duckdb.Error, source: Path) -> str:
    """DuckDB's reason, with the line found here for the two errors whose line it misnumbers."""
    text = str(exc)
    if "Invalid unicode" in text:
        line = _first_line(source, lambda raw: not _is_utf8(raw))
        if line is not None:
            return f"line {line}: not UTF-8 text; save the file as UTF-8"
    if "Maximum line size" in text:
        line = _first_line(source, lambda raw: len(raw) > MAX_ROW_BYTES)
        if line is not None:
            return (
                f"line {line}: longer than {MAX_ROW_BYTES:,} bytes; no field of a sales row needs that much"
            )
    return _duckdb_message(exc, source)


def _ndjson_error(exc: duckdb.Error, source: Path) -> str:
    """DuckDB does not say which line is not an object, and misnumbers a malformed one."""
    if "non-record JSON" in str(exc) or "Malformed JSON" in str(exc):
        line = _first_line(source, lambda raw: bool(raw.strip()) and _json_problem(raw) is not None)
        if line is not None:
            with open(source, "rb") as handle:
                for _ in range(line):
                    raw = handle.readline(MAX_ROW_BYTES + 1)
            return f"line {line}: {_json_problem(raw)}"
    if "Maximum object size" in str(exc) or "maximum_object_size" in str(exc):
        line = _first_line(source, lambda raw: len(raw) > MAX_ROW_BYTES)
        if line is not None:
            return f"line {line}: longer than {MAX_ROW_BYTES:,} bytes; no row of sales needs that much"
    return _duckdb_message(exc, source)


def _first_line(source: Path, bad: Callable[[bytes], bool]) -> int | None:
    """The number of the file's first physical line for which ``bad(line)`` holds (an error
    path only: it reads the file in Python)."""
    with open(source, "rb") as handle:
        number = 0
        while True:
            raw = handle.readline(MAX_ROW_BYTES + 1)
            if not raw:
                return None
            number += 1
            if bad(raw):
                return number
            while not raw.endswith(b"\n"):  # the rest of an over-long line
                raw = handle.readline(MAX_ROW_BYTES + 1)
                if not raw:
                    return None


def _is_utf8(raw: bytes) -> bool:
    try:
        # A line cut at the length limit may end inside a character.
        raw.decode("utf-8") if len(raw) <= MAX_ROW_BYTES else raw[:-4].decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _json_problem(raw: bytes) -> str | None:
    try:
        value = json.loads(raw)
    except ValueError as exc:
        return f"malformed JSON ({exc.args[0].split(':')[0]})"
    if not isinstance(value, dict):
        return "not a JSON object; each line must be one object of column values"
    return None


def _duckdb_message(exc: duckdb.Error, source: Path) -> str:
    """DuckDB's own explanation, without its hints about reader options, the server's paths,
    the SQL it ran or the offending line's text (which may be megabytes)."""
    text = str(exc).strip()
    located = re.search(r"CSV Error on Line: (\d+)\s*\n(?:Original Line:[^\n]*\n)?", text)
    if located is not None:
        text = f"line {located.group(1)}: " + text[located.end() :]
    for marker in (
        "\n\nPossible Solution",
        "\nPossible Solution",
        "\nPossible fixes",
        "\n\nFile:",
        "\n  file =",
        "\nLINE ",
    ):
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
