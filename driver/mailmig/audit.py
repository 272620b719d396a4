"""The audit: what in a snapshot PostgreSQL will not take as it is, counted per column.

One streaming pass over each mapped table. Besides the counts, it finds the *hostile*
rows (contracts): rows with a value whose storage class or bytes cannot travel through
pgloader intact. Those are returned whole, typed-JSON encoded, to be stored losslessly
beside pgloader's staging and deleted from the load's work copy.
"""

from __future__ import annotations

import json
import re
import sqlite3
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from mailmig.mapping import MappingError, Table
from mailmig.sqlite_source import (SqliteText, column_list, connect_readonly, encode_value, native_key,
                                   quote_identifier, source_key)
from mailmig.validate.jsonb import JSON_MAX_DEPTH, json_depth  # the rule's depth, and the recursion it needs

# The legacy timestamp text forms (docs/contracts.md, Conversion rules).
TIMESTAMP_TEXT = re.compile(
    rb"^(?:-?[0-9]{1,18}(?:\.[0-9]{1,9})?"
    rb"|[0-9]{4}-[0-9]{2}-[0-9]{2}(?:[ T][0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]{1,6})?(?:Z|[+-][0-9]{2}:?[0-9]{2})?)?)$"
)
BTREE_LIMIT = 2704  # bytes: the largest value a PostgreSQL btree index entry takes
HOSTILE_INDEXED_TEXT = 1 << 20  # contracts: longer text in an indexed column is hostile
INT_TEXT = re.compile(rb"^-?[0-9]{1,19}$")
NUMBER_TEXT = re.compile(rb"^\s*[-+]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][-+]?[0-9]{1,3})?\s*$")


@dataclass
class TableAudit:
    table: str
    file: str
    rows: int = 0
    issues: dict[str, Counter] = field(default_factory=dict)  # column -> issue -> count
    hostile: list[tuple[str, dict]] = field(default_factory=list)  # (key, encoded row)
    hostile_rowids: list[int] = field(default_factory=list)  # the same rows' rowids, in order

    def count(self, column: str, issue: str) -> None:
        self.issues.setdefault(column, Counter())[issue] += 1

    def as_report(self) -> dict:
        return {
            "table": self.table, "file": self.file, "rows": self.rows,
            "hostile_rows": len(self.hostile),
            "issues": {c: dict(sorted(v.items())) for c, v in sorted(self.issues.items())},
        }


def source_tables(conn: sqlite3.Connection) -> list[str]:
    return [r[0].decode() if isinstance(r[0], bytes) else r[0] for r in conn.execute(
        "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")]


def check_columns(conn: sqlite3.Connection, table: Table, file_label: str) -> None:
    """A mapped table whose columns differ from the mapping stops the run, naming them."""
    names = [r[1].decode() if isinstance(r[1], bytes) else r[1]
             for r in conn.execute("SELECT * FROM pragma_table_info(?)", (table.name,))]
    if not names:
        raise MappingError(f"{file_label}: table {table.name} (named by the mapping) is missing")
    missing = [c for c in table.columns if c not in names]
    extra = [c for c in names if c not in table.columns]
    if missing or extra:
        parts = []
        if extra:
            parts.append("columns not in the mapping: " + ", ".join(extra))
        if missing:
            parts.append("mapped columns missing from the file: " + ", ".join(missing))
        raise MappingError(f"{file_label}: table {table.name}: " + "; ".join(parts)
                           + " (config/mapping.yaml must name every column; nothing is dropped silently)")


def json_issue(value: bytes) -> str | None:
    """What the JSON rule says of a valid UTF-8 text: None (jsonb takes it), invalid_json,
    or json_too_deep (more than JSON_MAX_DEPTH levels: the rule repairs it). Never raises:
    a deeply nested text must not stop the audit."""
    if value.count(b"[") + value.count(b"{") > JSON_MAX_DEPTH and json_depth(value.decode()) > JSON_MAX_DEPTH:
        return "json_too_deep"
    try:
        json.loads(value)
    except (ValueError, RecursionError):
        return "invalid_json"
    return None


def _value_issues(kind: str, value, indexed: bool) -> tuple[list[str], bool]:
    """(issues, plain) of one value for a column of `kind`."""
    if value is None:
        return (["null_timestamp"] if kind == "timestamp_required" else []), True
    issues: list[str] = []
    if isinstance(value, SqliteText) or isinstance(value, bytes):
        is_text = isinstance(value, SqliteText)
        if not is_text:
            issues.append("blob")
        try:
            text = value.decode("utf-8")
            if "\x00" in text:
                issues.append("nul_character")
        except UnicodeDecodeError:
            issues.append("invalid_utf8")
        plain = is_text and not issues
        if indexed and len(value) > BTREE_LIMIT:
            issues.append("over_index_limit")
            plain = plain and len(value) <= HOSTILE_INDEXED_TEXT
        if kind in ("int", "flag"):
            plain = False  # text in an INTEGER column
            if kind == "int" and not INT_TEXT.match(value):
                issues.append("not_an_integer")
            elif kind == "flag":
                issues.append("text_flag")
        elif kind == "float":
            plain = False
            if not NUMBER_TEXT.match(value):
                issues.append("not_a_number")
        elif kind in ("timestamp", "timestamp_required") and not TIMESTAMP_TEXT.match(value):
            issues.append("unparseable_timestamp")
        elif kind == "json" and is_text and not issues:
            if (issue := json_issue(value)) is not None:
                issues.append(issue)
        return issues, plain
    if isinstance(value, int):
        if kind == "flag" and value not in (0, 1):
            issues.append("flag_not_0_1")
        if kind in ("timestamp", "timestamp_required"):
            issues.append("epoch_number")
            return issues, False
        return issues, kind in ("int", "flag", "float")
    # float; a non-finite one is hostile so that its typed form is written in one place
    if value != value or value in (float("inf"), float("-inf")):
        return issues + ["non_finite_real"], False
    if kind == "int":
        issues.append("real_in_integer")
    if kind in ("timestamp", "timestamp_required"):
        issues.append("epoch_number")
    return issues, kind == "float"


def plain_row(table: Table, row) -> bool:
    """Whether every value of a row (in mapping column order) is plain (contracts):
    the same rule the audit applies, for the sync's landing of single rows."""
    for (column, kind), value in zip(table.columns.items(), row):
        if value is not None and not _value_issues(kind, value, column in table.indexed)[1]:
            return False
    return True


def _valid_utf8(value: bytes) -> bool:
    if value.isascii():
        return True
    try:
        value.decode("utf-8")
        return True
    except UnicodeDecodeError:
        return False


def audit_table(path: Path, table: Table, file_label: str, progress=None,
                key_range: tuple[int, int] | None = None) -> TableAudit:
    """One pass over a table (or the rowid range [lo, hi) of it)."""
    conn = connect_readonly(path)
    try:
        check_columns(conn, table, file_label)
        result = TableAudit(table.name, file_label)
        columns = list(table.columns)
        kinds = [table.columns[c] for c in columns]
        indexed = [c in table.indexed for c in columns]
        textlike = [k in ("text", "json", "timestamp", "timestamp_required") for k in kinds]
        key_pos = columns.index(table.key)
        key_kind = table.columns[table.key]
        # the rowid names a row whose key is NULL, and deletes hostile rows from the work copy
        select = f"SELECT {column_list(columns)}, rowid FROM {quote_identifier(table.name)}"
        params: tuple = ()
        if key_range is not None:
            select += " WHERE rowid >= ? AND rowid < ?"
            params = key_range
        try:
            cursor = conn.execute(select, params)
        except sqlite3.OperationalError as exc:
            if "rowid" in str(exc):
                raise MappingError(f"{file_label}: table {table.name} has no rowid (WITHOUT ROWID): "
                                   "not supported") from None
            raise
        for *row, rowid in cursor:
            result.rows += 1
            # a key that is not of its column's own storage class (or NULL) is named by its
            # class (contracts: source keys): such a row takes the row path
            hostile = not native_key(row[key_pos], key_kind)
            for i, value in enumerate(row):
                kind = kinds[i]
                # the common cases first, without a function call per value
                if value is None:
                    if kind == "timestamp_required":
                        result.count(columns[i], "null_timestamp")
                    continue
                vtype = type(value)
                if (vtype is SqliteText and textlike[i] and b"\x00" not in value
                        and (not indexed[i] or len(value) <= BTREE_LIMIT) and _valid_utf8(value)):
                    if kind == "json":
                        if (issue := json_issue(value)) is not None:
                            result.count(columns[i], issue)
                    elif kind != "text" and not TIMESTAMP_TEXT.match(value):
                        result.count(columns[i], "unparseable_timestamp")
                    continue
                if vtype is int and kind == "int":
                    continue
                if vtype is float and kind == "float" and value - value == 0:  # finite
                    continue
                issues, plain = _value_issues(kind, value, indexed[i])
                for issue in issues:
                    result.count(columns[i], issue)
                hostile = hostile or not plain
            if hostile:
                result.hostile.append((source_key(row[key_pos], key_kind, rowid),
                                       {c: encode_value(v) for c, v in zip(columns, row)}))
                result.hostile_rowids.append(rowid)
            if progress and result.rows % 50000 == 0:
                progress(f"  audit {table.name}: {result.rows:,} rows read")
        return result
    finally:
        conn.close()


def _audit_part(args) -> TableAudit:
    path, table, label, key_range = args
    return audit_table(path, table, label, None, key_range)


def audit_table_parallel(path: Path, table: Table, file_label: str, jobs: int = 2) -> TableAudit:
    """audit_table over `jobs` rowid ranges in separate processes (the checks are CPU-bound
    Python), merged into one result in key order."""
    conn = connect_readonly(path)
    try:
        name = quote_identifier(table.name)
        count, hi = conn.execute(f"SELECT count(*), max(rowid) FROM {name}").fetchone()
        # split points at equal row counts (ids have gaps and far outliers)
        cuts = [conn.execute(f"SELECT rowid FROM {name} ORDER BY rowid LIMIT 1 OFFSET ?",
                             (count * k // jobs,)).fetchone()[0] for k in range(1, jobs)] \
            if jobs > 1 and count >= 10_000 else []
    except sqlite3.Error:
        cuts, hi = [], None
    finally:
        conn.close()
    if not cuts or hi is None:
        return audit_table(path, table, file_label)
    bounds = [-(1 << 63)] + cuts + [hi + 1]
    ranges = list(zip(bounds[:-1], bounds[1:]))
    from concurrent.futures import ProcessPoolExecutor
    import multiprocessing
    with ProcessPoolExecutor(max_workers=jobs, mp_context=multiprocessing.get_context("spawn")) as pool:
        parts = list(pool.map(_audit_part, [(path, table, file_label, r) for r in ranges]))
    merged = TableAudit(table.name, file_label)
    for part in parts:
        merged.rows += part.rows
        merged.hostile.extend(part.hostile)
        merged.hostile_rowids.extend(part.hostile_rowids)
        for column, issues in part.issues.items():
            merged.issues.setdefault(column, Counter()).update(issues)
    return merged


def unmapped_tables(path: Path, mapped: list[str]) -> list[str]:
    conn = connect_readonly(path)
    try:
        return [t for t in source_tables(conn) if t not in mapped]
    finally:
        conn.close()
