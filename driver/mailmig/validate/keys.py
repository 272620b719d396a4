"""Validate a set of keys only: the cut-over's check of what changed since the last full
validation, done during its write pause, so it must take milliseconds, not minutes.

The same comparison as the drill-down (canonical values of both sides, the bookkeeping
checks of repairs and rejects), on the rows of the given keys: read from SQLite with
`key IN (...)` (a key named by its storage class, `blob:...`, as the value it names) and
from PostgreSQL with `key = ANY(...)` of the keys the rules give them (migration.key_target),
index lookups, in chunks.
"""

from __future__ import annotations

import time
from pathlib import Path

from mailmig import queries
from mailmig.mapping import DEFAULT_MAPPING
from mailmig.sqlite_source import connect_readonly, quote_identifier, rows_of_key_names
from mailmig.validate.bookkeeping import expected_rows, read_bookkeeping
from mailmig.validate.differences import PROBLEM_KINDS, Differences
from mailmig.validate.digest import connect, select_source
from mailmig.validate.drilldown import compare_rows
from mailmig.validate.tables import TableSpec, specs_of

CHUNK = 500  # keys per round trip on each side


def _source_chunk(spec: TableSpec, conn, names: list[str], book, diffs: Differences) -> tuple[dict, set, set]:
    """(expected key -> canonical values, keys of rejected rows, source key names the file
    holds). A name of another storage class (`blob:`, `hex:`, `null:<rowid>`, ...) is looked
    up as the value it names, as the sync reads it."""
    kind = "int" if spec.int_key else "text"
    rows = []
    for where, params in rows_of_key_names(quote_identifier(spec.column_names[0]), names, kind):
        rows.extend(conn.execute(select_source(spec, f" WHERE {where}"), params))
    return expected_rows(spec, rows, book, diffs)


def _pg_chunk(conn, spec: TableSpec, keys: list) -> dict:
    actual: dict[str, list] = {}
    params = {"table": spec.name, "keys": [str(k) for k in keys]}
    for _, vals in conn.execute(queries.load("validate_rows_of_keys"), params):
        values = [None if v is None else v.encode() for v in vals]
        actual.setdefault(values[0].decode(), []).append(values)
    return actual


def validate_keys(conninfo: str, emails_db, auth_db, keys: dict[str, list],
                  mapping_path: Path = DEFAULT_MAPPING) -> dict:
    """Compare the rows of `keys` ({table: [source key as text, ...]}) of the live SQLite
    files with PostgreSQL. Returns a report: ok, per table the keys checked and the
    missing / extra / changed rows and problems, the differences, seconds."""
    started = time.monotonic()
    diffs = Differences()
    sqlite = {"emails": connect_readonly(emails_db), "auth": connect_readonly(auth_db)}
    tables = {}
    try:
        with connect(conninfo) as conn:
            book = read_bookkeeping(conn)
            for spec in specs_of(mapping_path):
                wanted = list(dict.fromkeys(str(k) for k in keys.get(spec.name, ())))
                found = {"missing": 0, "extra": 0, "changed": 0}
                for start in range(0, len(wanted), CHUNK):
                    chunk = wanted[start:start + CHUNK]
                    expected, rejected, present = _source_chunk(spec, sqlite[spec.database], chunk, book, diffs)
                    actual = _pg_chunk(conn, spec, chunk)
                    compare_rows(spec, expected, rejected, actual, diffs, found)
                    for key in chunk:  # bookkeeping of a row the file no longer holds
                        if key in present:
                            continue
                        if (spec.name, key) in book.rejects:
                            diffs.add(spec.name, "reject_without_source_row", key)
                        elif (spec.name, key) in book.repairs:
                            diffs.add(spec.name, "repair_without_source_row", key)
                problems = {kind: diffs.count(spec.name, kind) for kind in PROBLEM_KINDS
                            if diffs.count(spec.name, kind)}
                tables[spec.name] = {"keys": len(wanted), **found, "problems": problems,
                                     "ok": not problems and not any(found.values())}
    finally:
        for conn in sqlite.values():
            conn.close()
    return {
        "ok": all(t["ok"] for t in tables.values()),
        "keys": sum(t["keys"] for t in tables.values()),
        "tables": tables,
        "difference_counts": diffs.counts,
        "differences": diffs.items,
        "seconds": round(time.monotonic() - started, 3),
    }
