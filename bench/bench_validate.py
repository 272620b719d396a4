"""Benchmark of `mailmig validate` (issue 5): the full comparison at SCALE, beside the
time of `SELECT count(*)` on both sides measured in the same run.

    make bench-validate SCALE=seed      # or: .venv/bin/python bench/bench_validate.py --scale seed

Uses data/ (--data-dir) when it holds a dataset of that scale, otherwise generates one
into data/bench/<scale>/ (shared with bench_load.py); loads it (pgloader unless --loader copy) into a fresh
database `mailmig_bench_validate` on the configured target (the project-local cluster,
started if needed, or POSTGRES_HOST/POSTGRES_DSN), then times the validation.
Target: at most 60 s at seed volume on the 2-core machine.
"""

from __future__ import annotations

import argparse
import sqlite3
import sys
import time
from datetime import date
from pathlib import Path

import psycopg
from psycopg import sql

from mailmig import demo_data, load, validate
from mailmig.console import table
from mailmig.config import PROJECT_ROOT, load_config
from mailmig.sqlrunner import apply_sql

SCALES = {"small": (5000, 4000), "seed": (261000, 250000)}
TARGET_SECONDS = {"seed": 60}
BENCH_DB = "mailmig_bench_validate"


def dataset_rows(path: Path) -> int | None:
    try:
        with sqlite3.connect(path.resolve().as_uri() + "?mode=ro", uri=True) as conn:
            return conn.execute("SELECT count(*) FROM emails").fetchone()[0]
    except sqlite3.Error:
        return None


def find_or_generate(scale: str, data: Path) -> Path:
    emails, accounts = SCALES[scale]
    # data/bench/<scale> is where bench_load.py keeps its dataset: one generation serves both
    for candidate in (data, data / "bench" / scale, data / f"bench-{scale}"):
        rows = dataset_rows(candidate / "emails.db") if (candidate / "auth.db").exists() else None
        if rows is not None and emails <= rows <= emails + 1000:  # the hostile rows come on top
            print(f"dataset: reusing {candidate} ({rows:,} emails)")
            return candidate
    out = data / "bench" / scale
    print(f"dataset: generating {emails:,} emails, {accounts:,} accounts into {out}")
    started = time.monotonic()
    demo_data.generate(out, emails, accounts, seed=42, end=date(2026, 11, 1))
    print(f"  generated in {time.monotonic() - started:.1f} s")
    return out


def fresh_database(cfg) -> str:
    if cfg.is_local:
        cluster = cfg.cluster()
        cluster.init()
        cluster.start()
    with psycopg.connect(cfg.conninfo(), autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(BENCH_DB)))
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(BENCH_DB)))
    conninfo = cfg.conninfo(BENCH_DB)
    apply_sql(conninfo)
    return conninfo


def time_counts(conninfo: str, emails_db: Path, auth_db: Path) -> dict:
    """SELECT count(*) of each table, SQLite (each file) and PostgreSQL, in seconds."""
    figures = {}
    started = time.monotonic()
    for path, tables in ((emails_db, ["emails"]), (auth_db, ["accounts", "sessions"])):
        with sqlite3.connect(Path(path).resolve().as_uri() + "?mode=ro", uri=True) as conn:
            for table in tables:
                conn.execute(f'SELECT count(*) FROM "{table}"').fetchone()
    figures["sqlite"] = time.monotonic() - started
    started = time.monotonic()
    with psycopg.connect(conninfo) as conn:
        for table in ("emails", "accounts", "sessions"):
            conn.execute(sql.SQL("SELECT count(*) FROM mail.{}").format(sql.Identifier(table))).fetchone()
    figures["postgresql"] = time.monotonic() - started
    return figures


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", choices=sorted(SCALES), default="small")
    parser.add_argument("--loader", choices=("copy", "pgloader"), default="pgloader")
    parser.add_argument("--data-dir", type=Path, default=PROJECT_ROOT / "data",
                        help="where to look for (or generate) the dataset (default data/)")
    parser.add_argument("--keep", action="store_true", help="keep the bench database afterwards")
    args = parser.parse_args(argv)

    cfg = load_config()
    data = find_or_generate(args.scale, args.data_dir)
    conninfo = fresh_database(cfg)
    runs_dir = cfg.runs_dir / "bench-validate"
    print(f"load ({args.loader}) into {BENCH_DB} ...")
    started = time.monotonic()
    loaded = load.run_load(conninfo, data / "emails.db", data / "auth.db", runs_dir, loader=args.loader,
                           progress=None)
    print(f"  loaded in {time.monotonic() - started:.1f} s (ok: {loaded.ok})")
    if not loaded.ok:
        print("the load failed; nothing to validate", file=sys.stderr)
        return 1

    snapshot = loaded.run.dir / "snapshot"
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute("CHECKPOINT")  # the load's dirty pages are not the validation's cost
    counts_cold = time_counts(conninfo, snapshot / "emails.db", snapshot / "auth.db")
    started = time.monotonic()
    result = validate.run_validate(conninfo, runs_dir)
    seconds = time.monotonic() - started
    counts = time_counts(conninfo, snapshot / "emails.db", snapshot / "auth.db")

    rows = {name: t["source"] for name, t in result.report["tables"].items()}
    size = sum((snapshot / f).stat().st_size for f in ("emails.db", "auth.db"))
    print()
    print(f"rows: {', '.join(f'{k} {v:,}' for k, v in rows.items())}; SQLite {size / 2**20:,.0f} MiB")
    print(table(["what", "seconds", "before validate"], [
        ["full validation (every row, every column)", seconds, None],
        ["  of which the digest of both sides", result.report["seconds"]["digest"], None],
        ["SELECT count(*) SQLite, 3 tables", counts["sqlite"], counts_cold["sqlite"]],
        ["SELECT count(*) PostgreSQL, 3 tables", counts["postgresql"], counts_cold["postgresql"]],
    ]))
    target = TARGET_SECONDS.get(args.scale)
    if target:
        verdict = "met" if seconds <= target else "NOT met"
        print(f"target at {args.scale}: <= {target} s: {verdict}")
    print(f"validate ok: {result.ok}; report: {result.run.dir / 'validate.json'}")
    if not args.keep:
        with psycopg.connect(cfg.conninfo(), autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(BENCH_DB)))
    return 0 if result.ok else 1


if __name__ == "__main__":
    sys.exit(main())
