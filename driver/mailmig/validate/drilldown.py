"""The drill-down: the rows of each differing bucket read from both sides; each missing,
extra and changed row named, with each differing column."""

from __future__ import annotations

import itertools

from mailmig import queries
from mailmig.sqlite_source import quote_identifier
from mailmig.validate.bookkeeping import Bookkeeping, expected_rows
from mailmig.validate.differences import Differences, display
from mailmig.validate.digest import select_source
from mailmig.validate.rules import INT8_MAX
from mailmig.validate.tables import BUCKET_SHIFT, TableSpec


def pg_rows(conn, spec: TableSpec, buckets: list[int]):
    """The canonical rows of PostgreSQL in the given buckets (migration.validate_rows):
    key -> [values...] (list of rows when a key is duplicated)."""
    if spec.int_key:
        # the last bucket's end, 2^63, is no bigint: no upper end there
        batches = [{"lo": a << BUCKET_SHIFT, "hi": _end(b)} for a, b in _ranges(buckets)]
    else:
        batches = [{"lo": None, "hi": None}]
    result: dict[str, list] = {}
    for bounds in batches:
        params = {"table": spec.name, "buckets": buckets, **bounds}
        for _, vals in conn.execute(queries.load("validate_rows_in_buckets"), params):
            values = [None if v is None else v.encode() for v in vals]
            result.setdefault(values[0].decode(), []).append(values)
    return result


def _end(bucket: int) -> int | None:
    """The exclusive end of a bucket's keys; None (no end) for the last bucket, whose end,
    2^63, is no bigint."""
    end = (bucket + 1) << BUCKET_SHIFT
    return None if end > INT8_MAX else end


def _ranges(buckets: list[int]) -> list[tuple[int, int]]:
    out = []
    for b in sorted(buckets):
        if out and out[-1][1] == b - 1:
            out[-1] = (out[-1][0], b)
        else:
            out.append((b, b))
    return out



def source_rows(spec: TableSpec, conn, buckets: list[int], book: Bookkeeping):
    """Expected rows of the source in the given buckets: (expected key -> values,
    expected keys of rejected rows)."""
    if spec.int_key:
        key = quote_identifier(spec.column_names[0])
        batches = [
            # inclusive upper end: the last bucket's exclusive end, 2^63, is no SQLite integer
            conn.execute(select_source(spec, f" WHERE {key} >= ? AND {key} <= ?"),
                         (a << BUCKET_SHIFT, ((b + 1) << BUCKET_SHIFT) - 1))
            for a, b in _ranges(buckets)
        ]
    else:
        batches = [conn.execute(select_source(spec))]
    rows, rejected, _ = expected_rows(spec, itertools.chain.from_iterable(batches), book, None, set(buckets))
    return rows, rejected


DRILL_CHUNK = {True: 8, False: 512}  # buckets fetched at once: memory stays bounded


def drill_down(spec: TableSpec, src_conn, pg_conn, buckets: list[int], book: Bookkeeping,
               diffs: Differences) -> dict:
    found = {"missing": 0, "extra": 0, "changed": 0}
    step = DRILL_CHUNK[spec.int_key]
    for start in range(0, len(buckets), step):
        _drill_chunk(spec, src_conn, pg_conn, buckets[start:start + step], book, diffs, found)
    return found


def _drill_chunk(spec, src_conn, pg_conn, buckets, book, diffs, found) -> None:
    expected, rejected = source_rows(spec, src_conn, buckets, book)
    actual = pg_rows(pg_conn, spec, buckets)
    compare_rows(spec, expected, rejected, actual, diffs, found)


def compare_rows(spec: TableSpec, expected: dict, rejected: set, actual: dict, diffs: Differences,
                 found: dict) -> None:
    """Name each missing, extra and changed row of `expected` (source key -> canonical
    values) against `actual` (PostgreSQL key -> list of canonical rows)."""
    kinds = dict(spec.columns)
    for key in sorted(set(expected) | set(actual), key=lambda k: (len(k), k) if spec.int_key else k):
        want = expected.get(key)
        have = actual.get(key, [])
        if want is None:
            kind = "rejected_but_in_postgresql" if key in rejected else "extra"
            for values in have:
                if kind == "extra":
                    found["extra"] += 1
                diffs.add(spec.name, kind, key, row={
                    name: display(v, kinds[name]) for name, v in zip(spec.column_names, values)})
            continue
        if not have:
            found["missing"] += 1
            diffs.add(spec.name, "missing", key)
            continue
        # the best match first; further rows under the same key are extra
        have = sorted(have, key=lambda values: sum(a != b for a, b in zip(values, want)))
        columns = [
            {"column": name, "source": display(w, kinds[name]), "postgresql": display(h, kinds[name])}
            for name, w, h in zip(spec.column_names, want, have[0], strict=True)
            if w != h
        ]
        if columns:
            found["changed"] += 1
            diffs.add(spec.name, "changed", key, columns=columns)
        for values in have[1:]:
            found["extra"] += 1
            diffs.add(spec.name, "extra", key, duplicate_key=True, row={
                name: display(v, kinds[name]) for name, v in zip(spec.column_names, values)})

