"""make bench-load: the load end to end beside the seed plan's way and the COPY ceiling.

In one run, on the same generated files and the same server:
  load      `mailmig load` (pgloader into staging, merge, indexes, ANALYZE), every stage timed,
            pgloader's peak resident memory sampled from /proc;
  (a) the seed plan's migrate-to-postgres.ts way: one INSERT per row from a script into
      the indexed tables, autocommit; 20,000 rows of each table timed, extrapolated to all
      rows (the load moves emails, accounts and sessions: so does the figure compared);
  (b) the ceiling: emails exported to CSV by the sqlite3 CLI and loaded with one
      server-side COPY into an UNLOGGED table with no index.
Prints the figures and the two ratios the load issue names (>= 2x faster than (a),
<= 5x the time of (b)).
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import PROJECT, dataset, fresh_database  # noqa: I001

import psycopg

from mailmig.load import run_load
from mailmig.sqlite_source import connect_readonly
from mailmig.console import table

INSERT_SAMPLE = 20_000
COLUMNS = ("id, message_id, from_address, to_address, subject, body, html, headers, raw_email, "
           "size, starred, is_read, spam_score, created_at")


TS_GLOB = "'[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9] [0-9][0-9]:[0-9][0-9]:[0-9][0-9]'"


def _text(row):
    """The row as the seed script would pass it; None for a row it could not read (the
    few hostile rows with invalid UTF-8: the timed sample is of plain rows)."""
    try:
        return [v.decode() if isinstance(v, bytes) else v for v in row]
    except UnicodeDecodeError:
        return None


def _insert(conn, query, row) -> bool:
    values = _text(row)
    if values is None:
        return False
    try:
        conn.execute(query, values)
    except psycopg.DataError:  # another hostile value (e.g. a NUL): not a plain row
        return False
    return True


def per_row_inserts(emails_db: Path, auth_db: Path, rows: int) -> dict[str, tuple[float, int]]:
    """(a): what migrate-to-postgres.ts does: read a row, INSERT it, next (autocommit).
    `rows` of each table, timed per table: {table: (seconds, rows)}. The load moves
    accounts and sessions too, so the like-for-like figure times them as well."""
    dsn = fresh_database("mailmig_bench_insert")
    timed = {}
    src = connect_readonly(emails_db)
    with psycopg.connect(dsn, autocommit=True) as conn:
        months = [r[0] for r in src.execute(
            "SELECT DISTINCT substr(created_at, 1, 7) || '-01' FROM emails "
            "WHERE typeof(created_at) = 'text' AND created_at GLOB '[12][0-9][0-9][0-9]-[01][0-9]-*' "
            "AND id < 9000000")]
        conn.execute("SELECT mail.ensure_partitions_for_months(%s::date[])", ([m.decode() for m in months],))
        query = (f"INSERT INTO mail.emails ({COLUMNS}) VALUES "
                 "(%s, %s, %s, %s, %s, %s, %s, %s::jsonb, %s, %s, %s::int::boolean, %s::int::boolean, %s, "
                 "(%s || '+00')::timestamptz) ON CONFLICT DO NOTHING")
        # the app's own timestamp form only: the seed script passes it straight through
        cursor = src.execute(
            f"SELECT {COLUMNS} FROM emails WHERE id < 9000000 AND created_at GLOB {TS_GLOB} "
            "ORDER BY id LIMIT ?", (rows,))
        done = 0
        started = time.monotonic()
        for row in cursor:
            done += _insert(conn, query, row)
        timed["emails"] = (time.monotonic() - started, done)

        auth = connect_readonly(auth_db)
        query = ("INSERT INTO mail.accounts (id, email, password_hash, token, created_at, expires_at, "
                 "last_login_at, is_active) VALUES (%s, %s, %s, %s, (%s || '+00')::timestamptz, "
                 "(%s || '+00')::timestamptz, (%s || '+00')::timestamptz, %s::int::boolean) "
                 "ON CONFLICT DO NOTHING")
        cursor = auth.execute(
            "SELECT id, email, password_hash, token, created_at, expires_at, last_login_at, is_active "
            f"FROM accounts WHERE typeof(email) = 'text' AND created_at GLOB {TS_GLOB} "
            f"AND (expires_at IS NULL OR expires_at GLOB {TS_GLOB}) "
            f"AND (last_login_at IS NULL OR last_login_at GLOB {TS_GLOB}) "
            "AND typeof(is_active) = 'integer' AND is_active IN (0, 1) ORDER BY id LIMIT ?", (rows,))
        ids = set()
        started = time.monotonic()
        for row in cursor:
            if _insert(conn, query, row):
                ids.add(row[0])
        timed["accounts"] = (time.monotonic() - started, len(ids))

        # the sessions of those accounts (a session needs its account)
        query = ("INSERT INTO mail.sessions (id, account_id, created_at, expires_at, ip, user_agent) "
                 "VALUES (%s, %s, (%s || '+00')::timestamptz, (%s || '+00')::timestamptz, %s, %s) "
                 "ON CONFLICT DO NOTHING")
        cursor = auth.execute(
            "SELECT id, account_id, created_at, expires_at, ip, user_agent FROM sessions "
            f"WHERE account_id BETWEEN ? AND ? AND created_at GLOB {TS_GLOB} "
            f"AND (expires_at IS NULL OR expires_at GLOB {TS_GLOB}) AND typeof(id) = 'text' "
            "AND (user_agent IS NULL OR typeof(user_agent) = 'text') ORDER BY rowid",
            (min(ids), max(ids)))
        done = 0
        started = time.monotonic()
        for row in cursor:
            if row[1] not in ids:
                continue
            done += _insert(conn, query, row)
            if done == rows:
                break
        timed["sessions"] = (time.monotonic() - started, done)
        auth.close()
    src.close()
    return timed


def copy_ceiling(emails_db: Path) -> dict:
    """(b): sqlite3 -csv export, then one server-side COPY into an unlogged, index-free table."""
    dsn = fresh_database("mailmig_bench_ceiling", schema=False)
    tmpdir = Path(tempfile.mkdtemp(prefix="mailmig-bench-", dir=PROJECT / "data" / "bench"))
    os.chmod(tmpdir, 0o755)
    csv_path = tmpdir / "emails.csv"
    started = time.monotonic()
    with open(csv_path, "wb") as out:
        # normal rows only: the hostile ones (ids >= 9,000,000) would make COPY fail
        subprocess.run(["sqlite3", "-csv", str(emails_db),
                        f"SELECT {COLUMNS} FROM emails WHERE id < 9000000"], stdout=out, check=True)
    export_seconds = time.monotonic() - started
    os.chmod(csv_path, 0o644)
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("CREATE UNLOGGED TABLE emails_ceiling (id bigint, message_id text, from_address text, "
                     "to_address text, subject text, body text, html text, headers text, raw_email text, "
                     "size bigint, starred int, is_read int, spam_score float8, created_at text)")
        started = time.monotonic()
        cur = conn.execute("COPY emails_ceiling FROM " + psycopg.sql.quote(str(csv_path)) + " WITH (FORMAT csv)")
        copy_seconds = time.monotonic() - started
        rows = cur.rowcount
    size = csv_path.stat().st_size
    csv_path.unlink()
    tmpdir.rmdir()
    return {"export_seconds": export_seconds, "copy_seconds": copy_seconds,
            "seconds": export_seconds + copy_seconds, "rows": rows, "csv_bytes": size}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scale", choices=["small", "seed"], default="small")
    parser.add_argument("--loader", choices=["pgloader", "copy"], default="pgloader")
    args = parser.parse_args()
    data = dataset(args.scale)
    emails_db, auth_db = data / "emails.db", data / "auth.db"
    with sqlite3.connect(emails_db) as c:
        total_emails = c.execute("SELECT count(*) FROM emails").fetchone()[0]
    size_mb = (emails_db.stat().st_size + auth_db.stat().st_size) / 1e6

    print(f"== load ({args.loader}) of {data}: {total_emails:,} emails, {size_mb:,.0f} MB of SQLite", flush=True)
    dsn = fresh_database("mailmig_bench_load")
    started = time.monotonic()
    result = run_load(dsn, emails_db, auth_db, PROJECT / "runs", loader=args.loader, progress=print)
    load_seconds = time.monotonic() - started
    if not result.ok:
        print("the load did not account for every row: no figures", file=sys.stderr)
        return 1
    peak = max((l.get("peak_rss_mib") or 0) for l in result.report["staging"]["loads"]) \
        if args.loader == "pgloader" else None

    with sqlite3.connect(auth_db) as c:
        totals = {"emails": total_emails,
                  "accounts": c.execute("SELECT count(*) FROM accounts").fetchone()[0],
                  "sessions": c.execute("SELECT count(*) FROM sessions").fetchone()[0]}
    print(f"\n== (a) one INSERT per row, autocommit, into the indexed tables: up to {INSERT_SAMPLE:,} "
          "rows of each table", flush=True)
    timed = per_row_inserts(emails_db, auth_db, INSERT_SAMPLE)
    extrapolated = {t: totals[t] * seconds / done for t, (seconds, done) in timed.items()}
    insert_seconds, inserted = timed["emails"]
    insert_rate = inserted / insert_seconds
    insert_extrapolated = extrapolated["emails"]
    all_extrapolated = sum(extrapolated.values())

    print("\n== (b) sqlite3 -csv export + one server-side COPY into an unlogged table, no index", flush=True)
    ceiling = copy_ceiling(emails_db)

    print("\nload stages")
    print(table(["stage", "from s", "seconds", "rows", "rows/s", "MB/s"],
                 [[s["stage"], s.get("start"), s["seconds"], s["rows"], s["rows_per_s"], s["mb_per_s"]]
                  for s in sorted(result.report["stages"], key=lambda s: s.get("start") or 0)]))
    all_rows = sum(totals.values())
    rows = [
        ["mailmig load, snapshot to analyzed", round(result.report["migrated_seconds"], 1), all_rows,
         round(all_rows / result.report["migrated_seconds"]),
         round(size_mb / result.report["migrated_seconds"], 1)],
        ["mailmig load, with the archive", round(load_seconds, 1), all_rows, round(all_rows / load_seconds),
         round(size_mb / load_seconds, 1)],
        *[[f"(a) per-row INSERT, {done:,} {t} measured", round(seconds, 1), done, round(done / seconds), None]
          for t, (seconds, done) in timed.items()],
        ["(a) extrapolated to every email", round(insert_extrapolated, 1), total_emails, round(insert_rate), None],
        ["(a) extrapolated to every row of the three tables", round(all_extrapolated, 1),
         all_rows, round(all_rows / all_extrapolated), None],
        ["(b) sqlite3 CSV export", round(ceiling["export_seconds"], 1), ceiling["rows"], None,
         round(ceiling["csv_bytes"] / 1e6 / ceiling["export_seconds"], 1)],
        ["(b) server-side COPY", round(ceiling["copy_seconds"], 1), ceiling["rows"],
         round(ceiling["rows"] / ceiling["copy_seconds"]), round(ceiling["csv_bytes"] / 1e6 / ceiling["copy_seconds"], 1)],
        ["(b) ceiling in all", round(ceiling["seconds"], 1), ceiling["rows"],
         round(ceiling["rows"] / ceiling["seconds"]), None],
    ]
    print()
    print(table(["what", "seconds", "rows", "rows/s", "MB/s"], rows))
    migrated = result.report["migrated_seconds"]
    print(f"\nmailmig load: {migrated:.1f} s from snapshot to merged, indexed, analyzed and accounted for; "
          f"{load_seconds:.1f} s with the snapshot's sha256 and tar.gz archive made after it")
    speedup = all_extrapolated / migrated
    emails_only = insert_extrapolated / migrated
    of_ceiling = migrated / ceiling["seconds"]
    print()
    if args.scale != "seed":
        print(f"(the issue's targets are for SCALE=seed; at SCALE={args.scale} fixed costs such as "
              "pgloader's start-up weigh more)")
    print(f"load vs (a) per-row INSERT:  {speedup:.1f}x faster   (target: at least 2x)  "
          + ("MET" if speedup >= 2 else "NOT MET")
          + "\n   like for like: both move every row of emails, accounts and sessions")
    print(f"   (a) of the emails alone against the whole load: {emails_only:.2f}x")
    print(f"load vs (b) COPY ceiling:    {of_ceiling:.1f}x its time (target: at most 5x)   "
          + ("MET" if of_ceiling <= 5 else "NOT MET"))
    if args.scale == "seed":
        print(f"load end to end:             {migrated:.0f} s      (target: at most 180 s) "
              + ("MET" if migrated <= 180 else "NOT MET")
              + f"; {load_seconds:.0f} s with the archive")
    if peak is not None:
        print(f"pgloader peak memory:        {peak:,.0f} MiB (target: under 1024 MiB) "
              + ("MET" if peak < 1024 else "NOT MET"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
