"""The SQL runner: versioned migrations once each, then re-applied definitions.

Two kinds of files (STYLE: pg_partman's sql/tables + sql/functions, Flyway's
versioned and repeatable migrations):

- `sql/migrations/NNNN_<what>.sql`: what holds data (schemas, tables, indexes, types,
  and the functions stored data depends on). Applied once, in order, each in its own
  transaction with its ledger row. Immutable: an applied file that changed, or that
  vanished, stops the run, naming it.
- `sql/functions/<schema>/<name>.sql`: one function or view per file, CREATE OR
  REPLACE, its grants and comment beside it. Applied after the migrations whenever the
  file is new or its checksum changed, with `check_function_bodies = off` so that the
  order of mere definitions does not matter; a file that also runs something declares
  the files it needs with `-- requires: functions/<schema>/<name>.sql` header lines.

Both kinds are recorded in `migration.sql_ledger` (name = the path under sql/, kind,
checksum). A database built by the old runner (one forward-only sequence of
`sql/NNNN_*.sql` files, the last of them 3320) is adopted in place: its ledger rows
become the baseline migrations 0001-0007, and every definition is re-applied.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path

import psycopg

from mailmig import queries
from mailmig.config import PROJECT_ROOT
from mailmig.mapping import DEFAULT_MAPPING, load_mapping

SQL_DIR = PROJECT_ROOT / "sql"
MIGRATION_NAME = re.compile(r"^migrations/\d{4}_[a-z0-9_]+\.sql$")
FUNCTION_NAME = re.compile(r"^functions/[a-z_][a-z0-9_]*/[a-z_][a-z0-9_]*\.sql$")
REQUIRES = re.compile(r"^--\s*requires:\s*(\S+)\s*$")
# Serializes concurrent runners on one database (an arbitrary, fixed key).
LOCK_KEY = 0x6D61696C6D6967  # "mailmig"

# The files of the old runner's last state (commit 79f647a), which the baseline
# migrations 0001-0007 replace; their definitions are now files of sql/functions/.
LEGACY_FILES = frozenset({
    "1000_schemas_roles.sql", "1100_mail_tables.sql", "1110_search_vector_lz4.sql",
    "1200_message_id_guard.sql", "1210_guard_email_id_unique.sql", "1300_mail_indexes.sql",
    "1400_search.sql", "1500_insert_email.sql", "1600_privileges.sql", "2000_partitions.sql",
    "2100_expiry.sql", "2900_initial_partitions.sql", "3000_staging_tables.sql",
    "3010_staging_no_autovacuum.sql", "3020_staging_lz4.sql", "3100_migration_bookkeeping.sql",
    "3200_conversions.sql", "3300_merge.sql", "3310_merge_chunk_skip_rest.sql",
    "3320_sequence_past_max.sql",
})
BASELINE = ("migrations/0001_schemas_roles.sql", "migrations/0002_mail_tables.sql",
            "migrations/0003_message_id_guard.sql", "migrations/0004_mail_indexes.sql",
            "migrations/0005_mail_privileges.sql", "migrations/0006_staging_tables.sql",
            "migrations/0007_migration_bookkeeping.sql")


class LedgerError(RuntimeError):
    """The sql/ directory and the database's ledger disagree, or a file failed."""


@dataclass(frozen=True)
class SqlFile:
    name: str  # the path under sql/, e.g. "functions/mail/insert_email.sql"
    path: Path | None
    checksum: str
    kind: str = "migration"  # or "function"
    requires: tuple[str, ...] = field(default=())

    @classmethod
    def read(cls, sql_dir: Path, path: Path) -> "SqlFile":
        name = path.relative_to(sql_dir).as_posix()
        text = path.read_bytes()
        kind = "migration" if name.startswith("migrations/") else "function"
        requires = []
        for line in text.decode("utf-8").splitlines():
            match = REQUIRES.match(line)
            if match:
                requires.append(match.group(1))
            elif line.strip() and not line.startswith("--"):
                break  # headers come first
        return cls(name, path, hashlib.sha256(text).hexdigest(), kind, tuple(requires))


@dataclass
class Plan:
    migrations: list[SqlFile]  # pending, in order
    functions: list[SqlFile]  # new or changed, dependencies first
    adopt_legacy: bool = False


def sql_files(sql_dir: Path = SQL_DIR) -> tuple[list[SqlFile], list[SqlFile]]:
    """(migrations in order, function files in dependency order) of sql_dir."""
    sql_dir = Path(sql_dir)
    migrations, functions = [], []
    for path in sorted(sql_dir.rglob("*.sql")):
        name = path.relative_to(sql_dir).as_posix()
        if MIGRATION_NAME.match(name):
            migrations.append(SqlFile.read(sql_dir, path))
        elif FUNCTION_NAME.match(name):
            functions.append(SqlFile.read(sql_dir, path))
        else:
            raise LedgerError(f"{path}: not a place the runner knows: migrations/NNNN_lowercase_words.sql "
                              "or functions/<schema>/<lowercase_name>.sql")
    numbers = [m.name.split("/")[1][:4] for m in migrations]
    doubled = sorted({n for n in numbers if numbers.count(n) > 1})
    if doubled:
        raise LedgerError(f"{sql_dir}/migrations: two files share the number(s) {', '.join(doubled)}")
    return migrations, _dependency_order(functions)


def _dependency_order(functions: list[SqlFile]) -> list[SqlFile]:
    by_name = {f.name: f for f in functions}
    ordered: list[SqlFile] = []
    state: dict[str, str] = {}

    def visit(f: SqlFile, chain: tuple[str, ...]) -> None:
        if state.get(f.name) == "done":
            return
        if state.get(f.name) == "visiting":
            raise LedgerError("sql/: circular requires: " + " -> ".join(chain + (f.name,)))
        state[f.name] = "visiting"
        for needed in f.requires:
            if needed not in by_name:
                raise LedgerError(f"sql/{f.name}: requires {needed}, which is not a file of sql/functions")
            visit(by_name[needed], chain + (f.name,))
        state[f.name] = "done"
        ordered.append(f)

    for f in functions:  # path order where nothing else decides
        visit(f, ())
    return ordered


def ledger(conn: psycopg.Connection) -> dict[str, tuple[str, str]]:
    """name -> (kind, checksum) of what the database has applied."""
    if not conn.execute("SELECT to_regclass('migration.sql_ledger') IS NOT NULL").fetchone()[0]:
        return {}
    has_kind = conn.execute(queries.load("ledger_has_kind")).fetchone()[0]
    query = "ledger_rows" if has_kind else "ledger_rows_legacy"
    return {name: (kind, checksum) for name, kind, checksum in conn.execute(queries.load(query))}


def plan(migrations: list[SqlFile], functions: list[SqlFile],
         applied: dict[str, tuple[str, str]]) -> Plan:
    """What to apply; refuses changed or vanished migrations and unknown legacy states."""
    legacy = {name for name in applied if "/" not in name}
    adopt = False
    if legacy:
        missing = sorted(LEGACY_FILES - legacy)
        unknown = sorted(legacy - LEGACY_FILES)
        if missing or unknown:
            raise LedgerError(
                "this database was built by the old runner but not at its last state "
                f"(missing {', '.join(missing) or 'none'}; unknown {', '.join(unknown) or 'none'}): "
                "it cannot be adopted in place; rebuild it from sql/")
        adopt = True
        applied = {name: v for name, v in applied.items() if "/" in name}
        applied.update({name: ("migration", None) for name in BASELINE})
    by_name = {f.name: f for f in migrations}
    changed = [f.name for f in migrations
               if f.name in applied and applied[f.name][1] not in (None, f.checksum)]
    if changed:
        raise LedgerError("migrations are immutable once applied, and these changed since "
                          "(a change to what holds data is a new migration): " + ", ".join(changed))
    vanished = sorted(n for n, (kind, _) in applied.items() if kind == "migration" and n not in by_name)
    if vanished:
        raise LedgerError("applied to the database but missing from sql/: " + ", ".join(vanished))
    pending = [f for f in migrations if f.name not in applied]
    last = max((n for n, (k, _) in applied.items() if k == "migration"), default="")
    late = [f.name for f in pending if f.name < last]
    if late:
        raise LedgerError(f"pending migrations sort before {last}, already applied: " + ", ".join(late)
                          + " (a database is built in one order: renumber them after it, or rebuild "
                          "a development database)")
    stale = [f for f in functions if applied.get(f.name, (None, None))[1] != f.checksum]
    return Plan(pending, stale, adopt)


def _apply_one(conn: psycopg.Connection, sql_file: SqlFile, progress) -> None:
    with conn.transaction():
        started = conn.execute("SELECT clock_timestamp()").fetchone()[0]
        if sql_file.kind == "function":
            # definitions refer to each other; their bodies are checked when first run
            conn.execute("SET LOCAL check_function_bodies = off")
        try:
            conn.execute(sql_file.path.read_text())
        except psycopg.Error as exc:
            raise LedgerError(f"{sql_file.path}: {exc.diag.sqlstate or ''} {exc}".strip()) from exc
        # a file may SET LOCAL ROLE mail_owner; the ledger is the runner's own
        conn.execute("RESET ROLE")
        conn.execute(queries.load("ledger_record"),
                     {"name": sql_file.name, "kind": sql_file.kind, "checksum": sql_file.checksum,
                      "started": started, "note": None})
    if progress:
        progress(sql_file.name)


def _adopt_legacy(conn: psycopg.Connection, migrations: list[SqlFile], progress) -> None:
    by_name = {f.name: f for f in migrations}
    with conn.transaction():
        conn.execute(queries.load("ledger_forget_legacy"))
        for name in BASELINE:
            conn.execute(queries.load("ledger_record"),
                         {"name": name, "kind": "migration", "checksum": by_name[name].checksum,
                          "started": None, "note": "adopted: built by the old runner (sql/1000-3320)"})
    if progress:
        progress("adopted the old runner's ledger as migrations 0001-0007")


def fill_column_map(conn: psycopg.Connection, mapping_path: Path = DEFAULT_MAPPING) -> int:
    """migration.column_map := the mapping's columns (config/mapping.yaml is their one source)."""
    rows = [row for table in load_mapping(mapping_path) for row in table.column_map_rows()]
    with conn.transaction():
        conn.execute(queries.load("column_map_clear"))
        with conn.cursor() as cur:
            cur.executemany(queries.load("column_map_insert"), rows)
    return len(rows)


def apply_sql(conninfo: str, sql_dir: Path = SQL_DIR, progress=None,
              mapping_path: Path | None = DEFAULT_MAPPING) -> list[str]:
    """Apply pending migrations, then new or changed definitions; returns the names applied."""
    migrations, functions = sql_files(sql_dir)
    applied_now: list[str] = []

    def done(name: str) -> None:
        if "/" in name:
            applied_now.append(name)
        if progress:
            progress(name)

    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute("SELECT pg_advisory_lock(%s)", (LOCK_KEY,))
        try:
            with conn.transaction():
                conn.execute(queries.load("ledger_bootstrap"))
            work = plan(migrations, functions, ledger(conn))
            if work.adopt_legacy:
                _adopt_legacy(conn, migrations, progress)
            for sql_file in work.migrations:
                _apply_one(conn, sql_file, done)
            if mapping_path is not None and _has_column_map(conn):
                fill_column_map(conn, mapping_path)
            for sql_file in work.functions:
                _apply_one(conn, sql_file, done)
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", (LOCK_KEY,))
    return applied_now


def _has_column_map(conn: psycopg.Connection) -> bool:
    return conn.execute("SELECT to_regclass('migration.column_map') IS NOT NULL").fetchone()[0]


def status(conninfo: str, sql_dir: Path = SQL_DIR) -> list[tuple[str, str, str]]:
    """(kind, name, state) of every file of sql/ and every ledger row without a file.

    States: applied; pending; changed (a definition: re-applied by the next
    `schema apply`); CHANGED (a migration: refused); vanished; legacy (a database of
    the old runner, adopted by the next `schema apply`)."""
    migrations, functions = sql_files(sql_dir)
    with psycopg.connect(conninfo) as conn:
        applied = ledger(conn)
    legacy = any("/" not in name for name in applied)
    rows = []
    for f in migrations + sorted(functions, key=lambda f: f.name):
        kind_checksum = applied.get(f.name)
        if kind_checksum is None:
            state = "legacy" if legacy and f.name in BASELINE else "pending"
        elif kind_checksum[1] == f.checksum:
            state = "applied"
        else:
            state = "CHANGED since applied" if f.kind == "migration" else "changed"
        rows.append((f.kind, f.name, state))
    known = {f.name for f in migrations + functions}
    for name, (kind, _) in sorted(applied.items()):
        if "/" in name and name not in known:
            rows.append((kind, name, "vanished" if kind == "migration" else "removed from sql/"))
    return rows
