"""The benchmark's data: legacy files made by `mailmig demo-data` (plus one large inbox),
loaded into PostgreSQL by `mailmig load`, kept under data/bench/<name>/ and in the
database mailmig_bench_<name>, reused by later runs while their parameters match.

Every run measures on working copies (the SQLite files copied, the database cloned with
CREATE DATABASE ... TEMPLATE), because its workloads write and expire mail; the search
volumes are only read, so they are measured on the kept datasets themselves.
"""

from __future__ import annotations

import json
import random
import shutil
import sqlite3
import time
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import psycopg
from psycopg import sql

from mailmig.bench.mail import BIG_INBOX
from mailmig.demo_data import EmailMaker, build_corpus, generate
from mailmig.sqlrunner import apply_sql

DATA_SEED = 42
DATA_END = date(2026, 11, 1)  # fixed, so that a dataset made on another day is the same one
FORMAT = 1                     # bump when the way a dataset is made changes
# Measured at seed volume: 2.36 GB of SQLite for 261,000 emails; PostgreSQL holds them in
# less. Building also needs the load's snapshot copy, its work copy and its archive.
SQLITE_BYTES_PER_EMAIL = 9_100
BUILD_BYTES_PER_EMAIL = 4 * SQLITE_BYTES_PER_EMAIL + 12_000
# the copies, plus SQLite's VACUUM (a temporary copy of the file and a WAL as large)
COPY_BYTES_PER_EMAIL = 3 * SQLITE_BYTES_PER_EMAIL + 12_000


class BenchError(RuntimeError):
    """The benchmark cannot run as asked (disk space, a failed load, ...)."""


@dataclass
class Dataset:
    name: str
    dir: Path
    database: str
    emails: int          # normal emails asked of the generator
    big_inbox: int       # emails of BIG_INBOX on top
    sqlite_rows: int     # rows of emails.db (hostile rows and the big inbox included)
    postgres_rows: int   # rows of mail.emails after the load (rejected hostile rows missing)

    @property
    def emails_db(self) -> Path:
        return self.dir / "emails.db"

    @property
    def auth_db(self) -> Path:
        return self.dir / "auth.db"


def check_free_space(path: Path, need: int, what: str) -> None:
    """Stop with a clear message before filling the disk."""
    path.mkdir(parents=True, exist_ok=True)
    free = shutil.disk_usage(path).free
    if free < need:
        raise BenchError(f"{what} needs about {need / 1e9:.1f} GB free under {path}, and only "
                         f"{free / 1e9:.1f} GB is: free some space (make clean, or remove data/bench/) "
                         "or run a smaller scale")


def _database_exists(admin: str, name: str) -> bool:
    with psycopg.connect(admin, autocommit=True) as conn:
        return conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone() is not None


def _emails_in(conninfo: str) -> int:
    with psycopg.connect(conninfo, autocommit=True) as conn:
        return conn.execute("SELECT count(*) FROM mail.emails").fetchone()[0]


def add_big_inbox(emails_db: Path, count: int, seed: int = DATA_SEED, end: date = DATA_END) -> None:
    """`count` emails for BIG_INBOX over the dataset's 90 days, FTS5 entries included; one
    in ten is about an invoice payment (the seed plan's search phrase)."""
    rng = random.Random(f"big-inbox:{seed}")
    maker = EmailMaker(build_corpus(seed + 1), rng, [BIG_INBOX], {BIG_INBOX})
    stop = int(datetime(end.year, end.month, end.day, tzinfo=timezone.utc).timestamp())
    start = stop - 90 * 86400
    conn = sqlite3.connect(emails_db, isolation_level=None)
    try:
        next_id = conn.execute("SELECT coalesce(max(id), 0) + 1 FROM emails").fetchone()[0]
        conn.execute("BEGIN")
        for n in range(count):
            epoch = start + (stop - start) * n // max(1, count)
            row = maker.row(next_id + n, epoch)
            if n % 10 == 0:
                row["subject"] = f"Invoice payment {rng.randint(1000, 9999)} received"
                row["body"] = "We confirm the invoice payment below.\n\n" + row["body"]
            conn.execute("INSERT INTO emails (id, message_id, from_address, to_address, subject, body, html, headers,"
                         " raw_email, size, starred, is_read, spam_score, created_at) VALUES"
                         " (:id, :message_id, :from_address, :to_address, :subject, :body, :html, :headers,"
                         " :raw_email, :size, :starred, :is_read, :spam_score, :created_at)", row)
            conn.execute("INSERT INTO emails_fts (rowid, subject, body) VALUES (?, ?, ?)",
                         (row["id"], row["subject"], row["body"]))
        conn.execute("COMMIT")
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        conn.close()


def ensure_dataset(cfg, name: str, emails: int, accounts: int, big_inbox: int, base: Path,
                   progress=print) -> Dataset:
    """The dataset `name`, made (generated, loaded) unless a matching one is kept."""
    out = base / name
    database = f"mailmig_bench_{name}".replace("-", "_")
    marker = out / "bench-dataset.json"
    wanted = {"emails": emails, "accounts": accounts, "big_inbox": big_inbox, "seed": DATA_SEED,
              "end": DATA_END.isoformat(), "format": FORMAT, "database": database}
    admin = cfg.conninfo("postgres")
    if marker.exists() and (out / "emails.db").exists():
        kept = json.loads(marker.read_text())
        if ({k: kept.get(k) for k in wanted} == wanted and _database_exists(admin, database)
                and _emails_in(cfg.conninfo(database)) == kept.get("postgres_rows")):
            progress(f"dataset {name}: reusing {out} and database {database} "
                     f"({kept['sqlite_rows']:,} emails in SQLite, {kept['postgres_rows']:,} in PostgreSQL)")
            return Dataset(name, out, database, emails, big_inbox, kept["sqlite_rows"], kept["postgres_rows"])
    check_free_space(out, (emails + big_inbox) * BUILD_BYTES_PER_EMAIL,
                     f"building the {emails + big_inbox:,}-email dataset {name}")
    progress(f"dataset {name}: generating {emails:,} emails + a {big_inbox:,}-email inbox into {out} "
             "(mailmig demo-data) ...")
    started = time.monotonic()
    if marker.exists():
        marker.unlink()

    def generated(step, done, total):
        progress(f"   {step}: {done:,}/{total:,}")

    generate(out, emails=emails, accounts=accounts, seed=DATA_SEED, end=DATA_END, progress=generated)
    add_big_inbox(out / "emails.db", big_inbox)
    with sqlite3.connect(out / "emails.db") as conn:
        sqlite_rows = conn.execute("SELECT count(*) FROM emails").fetchone()[0]
    progress(f"   generated in {time.monotonic() - started:.1f} s; loading into {database} (mailmig load) ...")
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(database)))
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(database)))
    conninfo = cfg.conninfo(database)
    apply_sql(conninfo)
    from mailmig.load import run_load

    load_cfg = cfg.raw["load"]
    settings = {k[len("pgloader_"):]: v for k, v in load_cfg.items() if k.startswith("pgloader_")}
    result = run_load(conninfo, out / "emails.db", out / "auth.db", out / "load-runs", loader=load_cfg["loader"],
                      merge_jobs=load_cfg["merge_jobs"], pgloader_settings=settings,
                      progress=lambda line: progress(f"   {line}"))
    if not result.ok:
        raise BenchError(f"loading the dataset {name} failed: see {result.run.dir / 'report.json'}")
    shutil.rmtree(result.run.dir / "snapshot", ignore_errors=True)  # the bench needs the files, not the copies
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute("VACUUM (ANALYZE) mail.emails")
    postgres_rows = _emails_in(conninfo)
    marker.write_text(json.dumps({**wanted, "sqlite_rows": sqlite_rows, "postgres_rows": postgres_rows,
                                  "built_seconds": round(time.monotonic() - started, 1)}, indent=2) + "\n")
    progress(f"dataset {name}: ready in {time.monotonic() - started:.1f} s")
    return Dataset(name, out, database, emails, big_inbox, sqlite_rows, postgres_rows)


@dataclass
class WorkingCopy:
    emails_db: Path
    auth_db: Path
    database: str
    conninfo: str


def clone_database(admin_conninfo: str, source: str, target: str) -> None:
    """`target` afresh as a copy of `source` (its sessions ended first: a template must be
    unused), copied file by file where the server can (PostgreSQL 15: no WAL for the copy)."""
    with psycopg.connect(admin_conninfo, autocommit=True) as conn:
        version = conn.info.server_version
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(target)))
        conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (source,))
        strategy = sql.SQL(" STRATEGY = FILE_COPY") if version >= 150000 else sql.SQL("")
        conn.execute(sql.SQL("CREATE DATABASE {} TEMPLATE {}{}").format(
            sql.Identifier(target), sql.Identifier(source), strategy))


def working_copy(cfg, dataset: Dataset, work_dir: Path, progress=print) -> WorkingCopy:
    """Fresh copies of a dataset's two files and its database, for workloads that write."""
    need = int(dataset.sqlite_rows * COPY_BYTES_PER_EMAIL)
    check_free_space(work_dir, need, f"the working copies of the dataset {dataset.name}")
    started = time.monotonic()
    with sqlite3.connect(dataset.emails_db) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    work_dir.mkdir(parents=True, exist_ok=True)
    copies = []
    for source in (dataset.emails_db, dataset.auth_db):
        target = work_dir / source.name
        for suffix in ("", "-wal", "-shm"):
            stale = target.with_name(target.name + suffix)
            if stale.exists():
                stale.unlink()
        shutil.copyfile(source, target)
        copies.append(target)
    database = f"{dataset.database}_work"
    clone_database(cfg.conninfo("postgres"), dataset.database, database)
    progress(f"working copies of {dataset.name}: {work_dir} and database {database} "
             f"({time.monotonic() - started:.1f} s)")
    return WorkingCopy(copies[0], copies[1], database, cfg.conninfo(database))


def drop_working_copy(cfg, copy: WorkingCopy) -> None:
    with psycopg.connect(cfg.conninfo("postgres"), autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(copy.database)))
    for path in (copy.emails_db, copy.auth_db):
        for suffix in ("", "-wal", "-shm"):
            target = path.with_name(path.name + suffix)
            if target.exists():
                target.unlink()


def retention_now(emails_db: Path) -> tuple[datetime, datetime]:
    """(now, cutoff) for a retention that expires exactly the oldest month of the data:
    the cutoff is the first day of the month after the oldest email, `now` 90 days later."""
    with sqlite3.connect(emails_db) as conn:
        oldest = conn.execute("SELECT min(created_at) FROM emails WHERE typeof(created_at) = 'text'"
                              " AND created_at GLOB '20[0-9][0-9]-[01][0-9]-[0-3][0-9]*'"
                              " AND created_at >= ?", ((DATA_END - timedelta(days=120)).isoformat(),)).fetchone()[0]
    year, month = int(oldest[:4]), int(oldest[5:7])
    cutoff = datetime(year + month // 12, month % 12 + 1, 1, tzinfo=timezone.utc)
    return cutoff + timedelta(days=90), cutoff
