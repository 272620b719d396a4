"""The ordered SQL runner: applies sql/NNNN_*.sql once each, in order, with a ledger.

Each file runs in its own transaction together with its ledger row, so a file is
either applied and recorded or not at all. A file that was applied and has changed
since is refused: a fix to an applied object is a new file (STYLE.md).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

import psycopg

SQL_DIR = Path(__file__).resolve().parents[2] / "sql"
FILE_NAME = re.compile(r"^\d{4}_[a-z0-9_]+\.sql$")
# Serializes concurrent runners on one database (an arbitrary, fixed key).
LOCK_KEY = 0x6D61696C6D6967  # "mailmig"

BOOTSTRAP = """
CREATE SCHEMA IF NOT EXISTS migration;
CREATE TABLE IF NOT EXISTS migration.sql_ledger (
    name        text PRIMARY KEY,
    checksum    text NOT NULL,
    applied_at  timestamptz NOT NULL DEFAULT clock_timestamp(),
    duration_ms numeric NOT NULL
);
"""


class LedgerError(RuntimeError):
    """The sql/ directory and the database's ledger disagree."""


@dataclass(frozen=True)
class SqlFile:
    name: str
    path: Path
    checksum: str

    @classmethod
    def read(cls, path: Path) -> "SqlFile":
        return cls(path.name, path, hashlib.sha256(path.read_bytes()).hexdigest())


def sql_files(sql_dir: Path = SQL_DIR) -> list[SqlFile]:
    """The files of sql/, in the order they are applied."""
    files = []
    for path in sorted(Path(sql_dir).glob("*.sql")):
        if not FILE_NAME.match(path.name):
            raise LedgerError(f"{path}: name must be NNNN_lowercase_words.sql to have a place in the order")
        files.append(SqlFile.read(path))
    return files


def ledger(conn: psycopg.Connection) -> dict[str, str]:
    exists = conn.execute("SELECT to_regclass('migration.sql_ledger') IS NOT NULL").fetchone()[0]
    if not exists:
        return {}
    return dict(conn.execute("SELECT name, checksum FROM migration.sql_ledger").fetchall())


def plan(files: list[SqlFile], applied: dict[str, str]) -> list[SqlFile]:
    """The files still to apply; refuses changed or vanished applied files."""
    by_name = {f.name: f for f in files}
    changed = [f.name for f in files if f.name in applied and applied[f.name] != f.checksum]
    if changed:
        raise LedgerError(
            "already applied and changed since (a fix to an applied file must be a new file): "
            + ", ".join(changed)
        )
    vanished = sorted(set(applied) - set(by_name))
    if vanished:
        raise LedgerError("applied to the database but missing from sql/: " + ", ".join(vanished))
    return [f for f in files if f.name not in applied]


def apply_sql(conninfo: str, sql_dir: Path = SQL_DIR, progress=None) -> list[str]:
    """Apply every pending file of sql_dir; returns the names applied."""
    files = sql_files(sql_dir)
    applied_now = []
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute("SELECT pg_advisory_lock(%s)", (LOCK_KEY,))
        try:
            with conn.transaction():
                conn.execute(BOOTSTRAP)
            for sql_file in plan(files, ledger(conn)):
                with conn.transaction():
                    started = conn.execute("SELECT clock_timestamp()").fetchone()[0]
                    try:
                        conn.execute(sql_file.path.read_text())
                    except psycopg.Error as exc:
                        raise LedgerError(f"{sql_file.path}: {exc.diag.sqlstate or ''} {exc}".strip()) from exc
                    # a file may SET LOCAL ROLE mail_owner; the ledger is the runner's own
                    conn.execute("RESET ROLE")
                    conn.execute(
                        "INSERT INTO migration.sql_ledger (name, checksum, duration_ms)"
                        " VALUES (%s, %s, extract(epoch FROM clock_timestamp() - %s) * 1000)",
                        (sql_file.name, sql_file.checksum, started),
                    )
                applied_now.append(sql_file.name)
                if progress:
                    progress(sql_file.name)
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", (LOCK_KEY,))
    return applied_now


def status(conninfo: str, sql_dir: Path = SQL_DIR) -> list[tuple[str, str]]:
    """Each file of sql/ with its state: applied, pending or changed."""
    with psycopg.connect(conninfo) as conn:
        applied = ledger(conn)
    rows = []
    for f in sql_files(sql_dir):
        if f.name not in applied:
            rows.append((f.name, "pending"))
        elif applied[f.name] != f.checksum:
            rows.append((f.name, "CHANGED since applied"))
        else:
            rows.append((f.name, "applied"))
    return rows
