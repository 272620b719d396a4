"""The digest: an md5 of each row's canonical values, summed per bucket, on both sides.

PostgreSQL renders and hashes its rows server-side (only bucket sums cross the wire);
the SQLite side streams its rows in Python.
"""

from __future__ import annotations

import hashlib
from concurrent.futures import ThreadPoolExecutor

import psycopg

from mailmig import console, queries
from mailmig.sqlite_source import column_list, quote_identifier
from mailmig.validate.bookkeeping import Bookkeeping, expected_row
from mailmig.validate.differences import Differences
from mailmig.validate.rules import INT8_MAX, INT8_MIN
from mailmig.validate.tables import BUCKET_SHIFT, TableSpec, bucket_of

KEY_END = None  # the open upper end of a key range [lo, hi): [lo, INT8_MAX) would miss the largest bigint


def row_digest(values) -> tuple[int, int]:
    """md5 over the canonical values, each as 'N' (NULL) or 'V<bytes>:<value>' so no
    two rows can run together; returned as two signed 64-bit halves (summed per bucket)."""
    parts = []
    for value in values:
        if value is None:
            parts.append(b"N")
        else:
            parts.append(b"V%d:" % len(value))
            parts.append(value)
    d = hashlib.md5(b"".join(parts)).digest()
    return int.from_bytes(d[:8], "big", signed=True), int.from_bytes(d[8:], "big", signed=True)



def select_source(spec: TableSpec, where: str = "") -> str:
    """The source rows: every column, then the rowid (the name of a row whose key is NULL)."""
    return f"SELECT {column_list(spec.column_names)}, rowid FROM {quote_identifier(spec.name)}{where}"


def scan_source(spec: TableSpec, conn, book: Bookkeeping, diffs: Differences, bar=None) -> dict:
    """Stream one SQLite table: bucket sums, per-month counts, the source keys seen."""
    buckets: dict[int, list] = {}
    months: dict[str, int] = {}
    rows = rejected = 0
    seen_book_keys = set()
    created_at = spec.column_names.index("created_at") if spec.name == "emails" else None
    for row in conn.execute(select_source(spec)):
        rows += 1
        key, values, is_rejected = expected_row(spec, row, book, diffs)
        if (spec.name, key) in book.rejects or (spec.name, key) in book.repairs:
            seen_book_keys.add(key)
        if is_rejected:
            rejected += 1
            continue
        hi, lo = row_digest(values)
        acc = buckets.get(bucket := bucket_of(spec, values[0]))
        if acc is None:
            buckets[bucket] = [1, hi, lo]
        else:
            acc[0] += 1
            acc[1] += hi
            acc[2] += lo
        if created_at is not None:
            stamp = values[created_at]
            month = stamp[:7].decode() if stamp else "(no timestamp)"
            months[month] = months.get(month, 0) + 1
        if bar is not None and rows % 10_000 == 0:
            bar.update(rows)
    for (table, key) in set(book.rejects) | set(book.repairs):
        if table == spec.name and key not in seen_book_keys:
            kind = "reject_without_source_row" if (table, key) in book.rejects else "repair_without_source_row"
            diffs.add(table, kind, key)
    return {"rows": rows, "rejected": rejected, "buckets": buckets, "months": months}



def connect(conninfo: str) -> psycopg.Connection:
    conn = psycopg.connect(conninfo, autocommit=True)
    conn.execute(queries.load("validate_session_settings"))
    return conn


def pg_digest(conninfo: str, spec: TableSpec, lo: int | None = None, hi: int | None = None) -> dict:
    """Bucket sums of PostgreSQL's canonical rows (migration.validate_digest), keys in
    [lo, hi) when given."""
    params = {"table": spec.name, "lo": lo if spec.int_key else None, "hi": hi if spec.int_key else None}
    with connect(conninfo) as conn:
        rows = conn.execute(queries.load("validate_digest"), params).fetchall()
    return {bucket: [count, int(s_hi), int(s_lo)] for bucket, count, s_hi, s_lo in rows}



def split_range(conninfo: str) -> list[tuple[int, int]]:
    with connect(conninfo) as conn:
        low, high = conn.execute(queries.load("validate_key_range")).fetchone()
    if low is None:  # no email in PostgreSQL (all rejected, or none): one side has nothing
        return [(INT8_MIN, KEY_END), (INT8_MAX, INT8_MAX)]  # the second: empty
    mid = ((low + high) // 2 >> BUCKET_SHIFT) << BUCKET_SHIFT  # on a bucket boundary
    return [(INT8_MIN, mid), (mid, KEY_END)]


def merge_buckets(*parts: dict) -> dict:
    merged: dict[int, list] = {}
    for part in parts:
        for bucket, (count, hi, lo) in part.items():
            acc = merged.setdefault(bucket, [0, 0, 0])
            acc[0] += count
            acc[1] += hi
            acc[2] += lo
    return merged



def digest_both_sides(conninfo: str, specs: tuple[TableSpec, ...], sqlite: dict, book: Bookkeeping,
                      diffs: Differences, say, totals: dict | None = None) -> tuple[dict, dict]:
    """Bucket sums of every table on both sides at once: PostgreSQL on two connections
    (the emails split between them by id, the other tables taking turns) while this
    thread reads SQLite."""
    (lo1, hi1), (lo2, hi2) = split_range(conninfo)
    others = [spec for spec in specs if spec.name != "emails"]
    emails = [spec for spec in specs if spec.name == "emails"]

    def pg_side(emails_range, tables):
        done = {spec.name: pg_digest(conninfo, spec, *emails_range) for spec in emails}
        for spec in tables:
            done[spec.name] = pg_digest(conninfo, spec, INT8_MIN, KEY_END)
        return done

    with ThreadPoolExecutor(max_workers=2) as pool:
        future_a = pool.submit(pg_side, (lo1, hi1), others[0::2])
        future_b = pool.submit(pg_side, (lo2, hi2), others[1::2])
        source_side = {}
        for spec in specs:
            say(f"digest {spec.name}: reading SQLite")
            with console.bar(say, f"digest {spec.name}, SQLite side", (totals or {}).get(spec.name)) as bar:
                source_side[spec.name] = scan_source(spec, sqlite[spec.database], book, diffs, bar)
                bar.update(source_side[spec.name]["rows"])
        side_a, side_b = future_a.result(), future_b.result()
    pg_side = {**side_a, **side_b}
    pg_side.update({spec.name: merge_buckets(side_a[spec.name], side_b[spec.name]) for spec in emails})
    return source_side, pg_side
