"""One validation: the gate, the digest of both sides at once, the drill-down, the report."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

from psycopg import sql

from mailmig import queries, runs
from mailmig.mapping import DEFAULT_MAPPING, check_against_database, load_mapping
from mailmig.sqlite_source import connect_readonly, quote_identifier
from mailmig.validate.bookkeeping import Bookkeeping, read_bookkeeping
from mailmig.validate.differences import PROBLEM_KINDS, Differences
from mailmig.validate.digest import connect, digest_both_sides
from mailmig.validate.drilldown import drill_down
from mailmig.validate.inflight import keys_in_flight, sync_point
from mailmig.validate.tables import TableSpec, table_specs


@dataclass
class ValidateResult:
    ok: bool
    run: runs.Run
    report: dict


def resolve_sources(runs_dir: Path, source: str, emails_db, auth_db, live_paths=None) -> dict:
    """Which SQLite files to compare with: a load's snapshot, or the live files."""
    info: dict = {"kind": source}
    if source == "snapshot":
        load = runs.latest(runs_dir, "load")
        if load is not None:
            snapshot = load.dir / "snapshot"
            info.update(load_run=load.id, snapshot=str(snapshot))
            manifest = snapshot / "manifest.json"
            if manifest.exists():
                info["manifest"] = json.loads(manifest.read_text())
            emails_db = emails_db or snapshot / "emails.db"
            auth_db = auth_db or snapshot / "auth.db"
        elif not (emails_db and auth_db):
            raise RuntimeError(
                f"no load to validate: {Path(runs_dir) / 'latest-load'} does not exist "
                "(run `mailmig load` first, or give --source live or --emails-db/--auth-db)"
            )
    elif source == "live":
        if live_paths is not None:
            emails_db = emails_db or live_paths[0]
            auth_db = auth_db or live_paths[1]
    else:
        raise ValueError(f"source must be 'snapshot' or 'live', not {source!r}")
    if not (emails_db and auth_db):
        raise RuntimeError("the SQLite files to compare with are not known (give --emails-db and --auth-db)")
    for path in (emails_db, auth_db):
        if not Path(path).is_file():
            raise RuntimeError(f"{path}: no such SQLite file")
    info.update(emails_db=str(emails_db), auth_db=str(auth_db))
    return info


def run_validate(conninfo: str, runs_dir, source: str = "snapshot", emails_db=None, auth_db=None,
                 progress=None, live_paths=None, mapping_path: Path = DEFAULT_MAPPING) -> ValidateResult:
    """Compare every row and column of mail.* with the SQLite source; write validate.json.
    The tables and columns compared are the mapping's (which the database's
    migration.column_map must equal: its canonical queries are generated from it)."""
    say = progress or (lambda message: None)
    started = time.monotonic()
    runs_dir = Path(runs_dir)
    mapping = load_mapping(mapping_path)
    specs = table_specs(mapping)
    sources = resolve_sources(runs_dir, source, emails_db, auth_db, live_paths)
    run = runs.new_run(runs_dir, "validate")
    say(f"validate run {run.id}: {sources['emails_db']}, {sources['auth_db']} against PostgreSQL")
    sqlite = {
        "emails": connect_readonly(sources["emails_db"]),
        "auth": connect_readonly(sources["auth_db"]),
    }
    diffs = Differences()
    try:
        with connect(conninfo) as conn:
            check_against_database(mapping, conn.execute(queries.load("column_map_rows")).fetchall())
            book = read_bookkeeping(conn)
            # the live files while the sync follows them: rows changed after this point
            # are in flight, reported apart from the differences (validate.inflight)
            point = sync_point(conn) if source == "live" else None
            gate, pg_months = count_rows(conn, specs, sqlite, book, say)
        source_side, pg_side = digest_both_sides(conninfo, specs, sqlite, book, diffs, say,
                                                 {name: g["source"] for name, g in gate.items()})
        digest_seconds = time.monotonic() - started
        with connect(conninfo) as conn:
            tables = {spec.name: compare_table(spec, gate[spec.name], source_side, pg_side[spec.name],
                                               pg_months, sqlite[spec.database], conn, book, diffs, say)
                      for spec in specs}
            in_flight = None
            if point is not None:
                flight = keys_in_flight(conn, point, {"emails_db": sources["emails_db"],
                                                      "auth_db": sources["auth_db"]})
                in_flight = separate_in_flight(tables, diffs, diffs.split(flight), point, len(flight), say)
    finally:
        for conn in sqlite.values():
            conn.close()

    ok = all(t["ok"] for t in tables.values())
    report = {
        "ok": ok,
        "run_id": run.id,
        "source": sources,
        "bookkeeping_run_ids": sorted(book.run_ids),
        "tables": tables,
        "difference_counts": diffs.counts,
        "differences": diffs.items,
        "differences_truncated": sum(sum(c.values()) for c in diffs.counts.values()) > len(diffs.items),
        # live source with the sync following: the sync point when this validation began
        # (the cut-over asks which keys the sync applied after it), and the rows in flight
        "sync_point": point.batch_id if point else None,
        "in_flight": in_flight,
        "seconds": {"digest": round(digest_seconds, 3), "total": round(time.monotonic() - started, 3)},
    }
    path = run.write_json("validate.json", report)
    runs.mark_latest(runs_dir, run)
    report["report_path"] = str(path)
    return ValidateResult(ok, run, report)


def count_rows(conn, specs: tuple[TableSpec, ...], sqlite: dict, book: Bookkeeping,
               say) -> tuple[dict, dict]:
    """The gate: rows per table on both sides (source = PostgreSQL + rejected), and the
    emails of PostgreSQL per month of created_at."""
    gate = {}
    for spec in specs:
        src = sqlite[spec.database].execute(f"SELECT count(*) FROM {quote_identifier(spec.name)}").fetchone()[0]
        pg = conn.execute(sql.SQL("SELECT count(*) FROM mail.{}").format(sql.Identifier(spec.name))).fetchone()[0]
        rejected = book.rejected_rows(spec.name)
        gate[spec.name] = {"source": src, "pg": pg, "rejected": rejected, "ok": src == pg + rejected}
        say(f"gate {spec.name}: source {src:,} = postgresql {pg:,} + rejected {rejected:,}: "
            + ("ok" if gate[spec.name]["ok"] else "DIFFERS"))
    pg_months = dict(conn.execute(queries.load("validate_emails_per_month")).fetchall())
    return gate, pg_months


def compare_table(spec: TableSpec, gate: dict, source_side: dict, pg_buckets: dict, pg_months: dict,
                  src_conn, pg_conn, book: Bookkeeping, diffs: Differences, say) -> dict:
    """One table's entry of the report: its differing buckets drilled down, its counts."""
    src = source_side[spec.name]["buckets"]
    differing = sorted(b for b in set(src) | set(pg_buckets) if src.get(b) != pg_buckets.get(b))
    found = {"missing": 0, "extra": 0, "changed": 0}
    if differing:
        say(f"drill-down {spec.name}: {len(differing)} differing bucket(s)")
        found = drill_down(spec, src_conn, pg_conn, differing, book, diffs)
    problems = {kind: diffs.count(spec.name, kind) for kind in PROBLEM_KINDS
                if diffs.count(spec.name, kind)}
    entry = {
        "source": gate["source"],
        "pg": gate["pg"],
        "rejected": gate["rejected"],
        "repaired_rows": book.repaired_rows(spec.name),
        "repaired_columns": book.repaired_columns(spec.name),
        **found,
        "problems": problems,
        "buckets": len(set(src) | set(pg_buckets)),
        "differing_buckets": differing[:1000],
        "gate_ok": gate["ok"],
    }
    if spec.name == "emails":
        src_months = source_side["emails"]["months"]
        months = [
            {"month": m, "source": src_months.get(m, 0), "pg": pg_months.get(m, 0),
             "ok": src_months.get(m, 0) == pg_months.get(m, 0)}
            for m in sorted(set(src_months) | set(pg_months))
        ]
        entry["months"] = months
        entry["months_ok"] = all(m["ok"] for m in months)
    entry["ok"] = (
        entry["gate_ok"] and entry.get("months_ok", True) and not differing
        and not problems and not any(found.values())
    )
    return entry


def separate_in_flight(tables: dict, diffs: Differences, pending: Differences, point, keys: int, say) -> dict:
    """Recount each table without the rows in flight (they moved to `pending`) and judge it
    on the rest. While the files change under validate, the counts per table and month
    (read at another moment than the rows) can differ for rows in flight: they are kept in
    the report but decide nothing, since the drill-down reads every row of every bucket
    whose digest differs and names each differing row."""
    for name, entry in tables.items():
        for kind in ("missing", "extra", "changed"):
            entry[kind] = diffs.count(name, kind)
        entry["problems"] = {kind: diffs.count(name, kind) for kind in PROBLEM_KINDS if diffs.count(name, kind)}
        entry["in_flight"] = sum(pending.counts.get(name, {}).values())
        real = any(entry[kind] for kind in ("missing", "extra", "changed")) or entry["problems"]
        entry["ok"] = not real
    rows = sum(sum(c.values()) for c in pending.counts.values())
    if rows:
        say(f"in flight: {rows:,} differing rows changed after the sync position (sync point "
            f"{point.batch_id}); not differences: the sync applies them")
    return {"sync_point": point.batch_id, "keys_changed_since": keys, "counts": pending.counts,
            "rows": pending.items[:1000]}
