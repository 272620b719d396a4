"""Change capture inside the legacy SQLite files: triggers that log changed keys.

`mailmig capture install` adds, to each file, AFTER INSERT/UPDATE/DELETE triggers on its
mapped tables (emails; accounts, sessions) that append one row per changed key to a
changelog table in the same file, in the writer's own transaction:

    mailmig_changelog(seq INTEGER PRIMARY KEY AUTOINCREMENT, source_table, source_key, op, at)

Keys only (the declared primary key, never the rowid: VACUUM renumbers the rowids of
tables without an INTEGER PRIMARY KEY), never copies of the rows: the sync reads the
current row of each key. `seq` has AUTOINCREMENT so that it never goes backwards, even
after the sync has pruned every row. An UPDATE that changes the key logs both keys.
Nothing is put on the FTS5 table or its shadow tables (only mapped tables get triggers).

Beside it, `mailmig_capture` holds one row: the install id (new at every fresh install;
the sync stores it with its position and refuses a file whose install id differs, i.e.
capture was uninstalled or reinstalled behind its back), when, and the format.
`mailmig_capture_pause` is the marker a writer sets inside its own transaction to keep
its writes out of the changelog (the reverse direction of a rollback must not be echoed
back): see `suppressed()`.

Install and uninstall run in one `BEGIN IMMEDIATE` transaction (the write lock, waited
for up to the busy timeout), are idempotent, and are safe while the app writes: SQLite
re-prepares the app's statements after the schema change. Uninstall removes exactly
what install added, so that `sqlite_master` is as it was before.
"""

from __future__ import annotations

import contextlib
import json
import secrets
import sqlite3
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from mailmig.mapping import SOURCE_FILES, Table
from mailmig.sqlite_source import quote_identifier

CHANGELOG = "mailmig_changelog"
INSTALL_TABLE = "mailmig_capture"
PAUSE_TABLE = "mailmig_capture_pause"
FORMAT = 1
# Epoch seconds with SQLite's millisecond clock ('now' is fixed within one statement).
NOW_EPOCH = "(julianday('now') - 2440587.5) * 86400.0"
OPS = ("I", "U", "D")  # insert, update (the new key), delete (or the old key of an update that changed it)


class CaptureError(RuntimeError):
    """Capture cannot be installed, read or trusted; the message names the file."""


def quote_text(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


# -- the objects install creates -----------------------------------------------------

CHANGELOG_DDL = (
    f"CREATE TABLE {CHANGELOG} (\n"
    "  seq          INTEGER PRIMARY KEY AUTOINCREMENT,\n"
    "  source_table TEXT NOT NULL,\n"
    "  source_key,  -- the declared primary key, stored with its own storage class\n"
    "  op           TEXT NOT NULL,  -- I insert, U update, D delete (or the old key of a key change)\n"
    "  at           REAL NOT NULL   -- epoch seconds of the change\n"
    ")"
)
INSTALL_DDL = (
    f"CREATE TABLE {INSTALL_TABLE} (\n"
    "  install_id              TEXT NOT NULL,\n"
    "  installed_at            TEXT NOT NULL,\n"
    "  format                  INTEGER NOT NULL,\n"
    "  tables                  TEXT NOT NULL,\n"
    "  created_sqlite_sequence INTEGER NOT NULL\n"
    ")"
)
PAUSE_DDL = (
    f"CREATE TABLE {PAUSE_TABLE} (\n"
    "  writer TEXT  -- who suppresses capture for its own transaction; empty when committed\n"
    ")"
)


def trigger_name(table: str, op: str) -> str:
    return f"mailmig_capture_{table}_{op}"


def _log_values(table: str, key_expr: str, op: str) -> str:
    return f"{quote_text(table)}, {key_expr}, '{op}', {NOW_EPOCH}"


def trigger_ddl(table: Table) -> dict[str, str]:
    """The three triggers of one mapped table: name -> CREATE statement."""
    t, k = quote_identifier(table.name), quote_identifier(table.key)
    insert_into = f"INSERT INTO {CHANGELOG} (source_table, source_key, op, at)"
    when = f"WHEN NOT EXISTS (SELECT 1 FROM {PAUSE_TABLE})"
    return {
        trigger_name(table.name, "insert"):
            f"CREATE TRIGGER {trigger_name(table.name, 'insert')} AFTER INSERT ON {t}\n{when}\nBEGIN\n"
            f"  {insert_into} VALUES ({_log_values(table.name, f'NEW.{k}', 'I')});\nEND",
        trigger_name(table.name, "update"):
            f"CREATE TRIGGER {trigger_name(table.name, 'update')} AFTER UPDATE ON {t}\n{when}\nBEGIN\n"
            # an UPDATE that changes the key: the old key is gone (logged before the new one)
            f"  {insert_into} SELECT {_log_values(table.name, f'OLD.{k}', 'D')} WHERE OLD.{k} IS NOT NEW.{k};\n"
            f"  {insert_into} VALUES ({_log_values(table.name, f'NEW.{k}', 'U')});\nEND",
        trigger_name(table.name, "delete"):
            f"CREATE TRIGGER {trigger_name(table.name, 'delete')} AFTER DELETE ON {t}\n{when}\nBEGIN\n"
            f"  {insert_into} VALUES ({_log_values(table.name, f'OLD.{k}', 'D')});\nEND",
    }


def expected_objects(tables: list[Table]) -> dict[str, tuple[str, str, str]]:
    """Every object install creates in one file: name -> (type, tbl_name, sql)."""
    objects = {
        CHANGELOG: ("table", CHANGELOG, CHANGELOG_DDL),
        INSTALL_TABLE: ("table", INSTALL_TABLE, INSTALL_DDL),
        PAUSE_TABLE: ("table", PAUSE_TABLE, PAUSE_DDL),
    }
    for table in tables:
        for name, ddl in trigger_ddl(table).items():
            objects[name] = ("trigger", table.name, ddl)
    return objects


# -- state ---------------------------------------------------------------------------


@dataclass
class CaptureState:
    """What one file holds of capture, read in one read transaction."""

    path: Path
    installed: bool = False  # every object present and as install creates it
    present: list[str] = field(default_factory=list)  # objects of ours that exist
    missing: list[str] = field(default_factory=list)
    differing: list[str] = field(default_factory=list)  # exist with other SQL (an older format or tampered)
    install_id: str | None = None
    installed_at: str | None = None
    tables: list[str] = field(default_factory=list)
    changelog_rows: int = 0
    first_seq: int | None = None
    last_seq: int | None = None
    high_water: int = 0  # the largest seq ever assigned (sqlite_sequence): survives pruning
    oldest_at: float | None = None  # epoch seconds of the oldest changelog row
    paused_rows: int = 0  # committed pause markers: capture is off for everybody (a writer forgot to clear)

    @property
    def partial(self) -> bool:
        return bool(self.present) and not self.installed

    def describe(self) -> str:
        if self.installed:
            return "installed"
        if not self.present:
            return "not installed"
        parts = []
        if self.missing:
            parts.append("missing " + ", ".join(self.missing))
        if self.differing:
            parts.append("changed " + ", ".join(self.differing))
        return "INCOMPLETE (" + "; ".join(parts) + ")"


def _text(value) -> str | None:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return value


def read_state(conn: sqlite3.Connection, path: Path, tables: list[Table]) -> CaptureState:
    """The capture objects of a file and its changelog's figures (call inside a read
    transaction when the figures must agree with other reads)."""
    state = CaptureState(Path(path))
    expected = expected_objects(tables)
    found = {_text(name): (_text(kind), _text(tbl), _text(ddl)) for kind, name, tbl, ddl in conn.execute(
        "SELECT type, name, tbl_name, sql FROM sqlite_master WHERE name LIKE 'mailmig\\_%' ESCAPE '\\'")}
    for name, spec in expected.items():
        if name not in found:
            state.missing.append(name)
            continue
        state.present.append(name)
        if found[name] != spec:
            state.differing.append(name)
    # objects of ours for tables no longer mapped, or from another format, count as present
    for name, (kind, _, _) in found.items():
        if name not in expected and (name.startswith("mailmig_capture_") or name == CHANGELOG):
            state.present.append(name)
            state.differing.append(name)
    state.installed = not state.missing and not state.differing
    if INSTALL_TABLE in found:
        row = conn.execute(f"SELECT install_id, installed_at, tables FROM {INSTALL_TABLE}").fetchall()
        if len(row) == 1:
            state.install_id, state.installed_at = _text(row[0][0]), _text(row[0][1])
            try:
                state.tables = json.loads(_text(row[0][2]))
            except (TypeError, ValueError):
                state.tables = []
        else:
            state.installed = False
            state.differing.append(f"{INSTALL_TABLE} ({len(row)} rows, not 1)")
    if CHANGELOG in found:
        rows, first, last, oldest = conn.execute(
            f"SELECT count(*), min(seq), max(seq), min(at) FROM {CHANGELOG}").fetchone()
        state.changelog_rows, state.first_seq, state.last_seq, state.oldest_at = rows, first, last, oldest
        hw = conn.execute("SELECT seq FROM sqlite_sequence WHERE name = ?", (CHANGELOG,)).fetchone()
        state.high_water = int(hw[0]) if hw else 0
    if PAUSE_TABLE in found:
        state.paused_rows = conn.execute(f"SELECT count(*) FROM {PAUSE_TABLE}").fetchone()[0]
    return state


def tables_of(tables: list[Table], source: str) -> list[Table]:
    """The mapped tables of one source file (`emails_db` or `auth_db`)."""
    return [t for t in tables if t.source == source]


def source_of(path_name: str) -> str:
    for source, name in SOURCE_FILES.items():
        if name == path_name:
            return source
    raise KeyError(path_name)


# -- install / uninstall -------------------------------------------------------------


def connect_writer(path: Path, busy_timeout_ms: int) -> sqlite3.Connection:
    """A connection that may write the file, waiting up to the busy timeout for the lock."""
    path = Path(path)
    if not path.is_file():
        raise CaptureError(f"{path}: no such SQLite file")
    # No open()/close() of the file outside SQLite here: closing any descriptor of a
    # database file drops every POSIX lock this process holds on it, including those of
    # its live SQLite connections, and another process may then corrupt the file
    # (sqlite.org/howtocorrupt.html, 2.2). SQLite itself says whether it is a database.
    conn = sqlite3.connect(path, isolation_level=None, timeout=busy_timeout_ms / 1000, check_same_thread=False)
    try:
        conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
        conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
    except sqlite3.DatabaseError as exc:
        conn.close()
        if "not a database" in str(exc):
            raise CaptureError(f"{path}: not a SQLite database") from None
        raise CaptureError(f"{path}: cannot be read: {exc}") from None
    return conn


@contextlib.contextmanager
def write_transaction(conn: sqlite3.Connection, path: Path, busy_timeout_ms: int):
    """BEGIN IMMEDIATE (the write lock, waited for) ... COMMIT, or ROLLBACK on error."""
    try:
        conn.execute("BEGIN IMMEDIATE")
    except sqlite3.OperationalError as exc:
        raise CaptureError(f"{path}: could not take the write lock within {busy_timeout_ms} ms "
                           f"(busy_timeout): {exc}") from None
    try:
        yield
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def _check_tables(conn: sqlite3.Connection, path: Path, tables: list[Table]) -> None:
    for table in tables:
        row = conn.execute("SELECT type, sql FROM sqlite_master WHERE name = ? AND type IN ('table', 'view')",
                           (table.name,)).fetchone()
        if row is None:
            raise CaptureError(f"{path}: table {table.name} (named by the mapping) is missing")
        kind, ddl = _text(row[0]), _text(row[1]) or ""
        if kind != "table" or ddl.lstrip().upper().startswith("CREATE VIRTUAL"):
            raise CaptureError(f"{path}: {table.name} is a {'view' if kind == 'view' else 'virtual table'}; "
                               "capture puts triggers on ordinary tables only")
        columns = [_text(r[1]) for r in conn.execute(f"PRAGMA table_info({quote_identifier(table.name)})")]
        if table.key not in columns:
            raise CaptureError(f"{path}: table {table.name} has no column {table.key} (its key in the mapping)")


@dataclass
class InstallResult:
    path: Path
    install_id: str
    created: list[str]
    already: bool
    replaced: CaptureState | None = None  # the incomplete capture that was replaced
    seconds: float = 0.0


def _drop_ours(conn: sqlite3.Connection, state: CaptureState) -> list[str]:
    """Drop every capture object of the file (triggers first); returns their names."""
    kinds = dict(conn.execute("SELECT name, type FROM sqlite_master WHERE name IN (%s)"
                              % ",".join("?" * len(state.present)), state.present).fetchall()) \
        if state.present else {}
    removed = []
    for name in sorted(kinds, key=lambda n: kinds[n] != "trigger"):
        conn.execute(f"DROP {'TRIGGER' if kinds[name] == 'trigger' else 'TABLE'} {quote_identifier(name)}")
        removed.append(name)
    if conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'sqlite_sequence'").fetchone():
        conn.execute("DELETE FROM sqlite_sequence WHERE name = ?", (CHANGELOG,))
    return removed


def install(path: Path, tables: list[Table], busy_timeout_ms: int = 5000) -> InstallResult:
    """Install capture on the mapped `tables` of one file (idempotent)."""
    path = Path(path)
    started = time.monotonic()
    conn = connect_writer(path, busy_timeout_ms)
    try:
        with write_transaction(conn, path, busy_timeout_ms):
            _check_tables(conn, path, tables)
            state = read_state(conn, path, tables)
            if state.installed:
                return InstallResult(path, state.install_id, [], True, seconds=time.monotonic() - started)
            replaced = None
            if state.present:
                # an incomplete capture may have missed changes: start over under a new id,
                # so that a sync holding the old id refuses instead of trusting the gap
                replaced = state
                _drop_ours(conn, state)
            had_sequence = conn.execute(
                "SELECT 1 FROM sqlite_master WHERE name = 'sqlite_sequence'").fetchone() is not None
            install_id = secrets.token_hex(8)
            created = []
            for name, (_, _, ddl) in expected_objects(tables).items():
                conn.execute(ddl)
                created.append(name)
            conn.execute(f"INSERT INTO {INSTALL_TABLE} VALUES (?, ?, ?, ?, ?)",
                         (install_id, datetime.now(timezone.utc).isoformat(timespec="seconds"), FORMAT,
                          json.dumps([t.name for t in tables]), int(not had_sequence)))
        return InstallResult(path, install_id, created, False, replaced, time.monotonic() - started)
    finally:
        conn.close()


@dataclass
class UninstallResult:
    path: Path
    removed: list[str]
    changelog_rows: int  # rows dropped with the changelog (applied or not)
    install_id: str | None
    sqlite_sequence_left: bool = False  # install created sqlite_sequence, which SQLite cannot drop
    seconds: float = 0.0


def uninstall(path: Path, tables: list[Table], busy_timeout_ms: int = 5000) -> UninstallResult:
    """Remove every capture object from one file (idempotent)."""
    path = Path(path)
    started = time.monotonic()
    conn = connect_writer(path, busy_timeout_ms)
    try:
        with write_transaction(conn, path, busy_timeout_ms):
            state = read_state(conn, path, tables)
            created_sequence = False
            if INSTALL_TABLE in state.present:
                row = conn.execute(f"SELECT created_sqlite_sequence FROM {INSTALL_TABLE}").fetchone()
                created_sequence = bool(row and row[0])
            removed = _drop_ours(conn, state)
            left = False
            if created_sequence:
                left = conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'sqlite_sequence'").fetchone() \
                    is not None
        return UninstallResult(path, removed, state.changelog_rows, state.install_id, left,
                               time.monotonic() - started)
    finally:
        conn.close()


# -- suppression (the writer of the reverse direction) ---------------------------------


@contextlib.contextmanager
def suppressed(conn: sqlite3.Connection, writer: str = "mailmig"):
    """Keep the writes of the enclosing transaction out of the changelog.

    Use inside a write transaction of `conn` (BEGIN IMMEDIATE ... COMMIT): it inserts the
    marker row, which the triggers' WHEN clause sees, and deletes it before the
    transaction commits. Other connections never see the marker (it is uncommitted, and
    SQLite has one writer at a time), so only this transaction's writes go uncaptured.
    A marker committed by mistake would switch capture off for everybody: the sync and
    `capture status` refuse and report such a file.
    """
    if not conn.in_transaction:
        raise CaptureError("capture.suppressed() needs an open write transaction (BEGIN IMMEDIATE first)")
    conn.execute(f"INSERT INTO {PAUSE_TABLE} (writer) VALUES (?)", (writer,))
    try:
        yield conn
    finally:
        conn.execute(f"DELETE FROM {PAUSE_TABLE}")


# -- command line --------------------------------------------------------------------


def _files(args, cfg) -> list[tuple[str, Path, list[Table]]]:
    from mailmig.mapping import load_mapping

    tables = load_mapping()
    files = cfg.source_files(args.emails_db, args.auth_db)
    paths = {"emails_db": files.emails_db, "auth_db": files.auth_db}
    return [(name, paths[name], tables_of(tables, name)) for name in SOURCE_FILES if tables_of(tables, name)]


def cmd_install(args, cfg) -> int:
    busy = cfg.raw["sync"]["busy_timeout_ms"]
    for name, path, tables in _files(args, cfg):
        result = install(path, tables, busy)
        names = ", ".join(t.name for t in tables)
        if result.already:
            print(f"{path}: capture already installed on {names} (install {result.install_id}); nothing changed")
            continue
        if result.replaced is not None:
            print(f"{path}: capture was {result.replaced.describe()} (install {result.replaced.install_id}): "
                  "changes made while it was incomplete were not captured; removed and installed anew")
        print(f"{path}: capture installed on {names} (install {result.install_id}, "
              f"{len(result.created)} objects, write lock held {result.seconds * 1000:.1f} ms)")
    print("a sync starts from the next load: `make load` records where (its snapshot holds the changelog)")
    return 0


def cmd_uninstall(args, cfg) -> int:
    busy = cfg.raw["sync"]["busy_timeout_ms"]
    for name, path, tables in _files(args, cfg):
        result = uninstall(path, tables, busy)
        if not result.removed:
            print(f"{path}: capture not installed; nothing changed")
            continue
        print(f"{path}: capture removed ({len(result.removed)} objects, {result.changelog_rows:,} changelog "
              f"rows dropped, write lock held {result.seconds * 1000:.1f} ms); a sync of install "
              f"{result.install_id} is no longer possible")
        if result.sqlite_sequence_left:
            print(f"{path}: sqlite_sequence, created by the install, stays (SQLite cannot drop it; it is empty)")
    return 0


def _age(epoch: float | None) -> str:
    if epoch is None:
        return "-"
    return f"{max(0.0, time.time() - epoch):,.1f} s"


def cmd_status(args, cfg) -> int:
    """Installed or not, backlog and the oldest unapplied change's age, per file."""
    import psycopg

    from mailmig import queries
    from mailmig.sqlite_source import connect_readonly

    positions: dict[str, tuple] = {}
    pg_note = None
    try:
        with psycopg.connect(cfg.conninfo(), autocommit=True, connect_timeout=5) as conn:
            if conn.execute(queries.load("sync_bookkeeping_exists")).fetchone()[0]:
                for name in SOURCE_FILES:
                    row = conn.execute(queries.load("sync_position"), {"source": name}).fetchone()
                    if row:
                        positions[name] = row
    except psycopg.Error as exc:
        pg_note = f"PostgreSQL not reachable ({str(exc).strip().splitlines()[0]}): backlog counted from no position"
    code = 0
    for name, path, tables in _files(args, cfg):
        if not path.is_file():
            print(f"{path}: no such file")
            code = 1
            continue
        conn = connect_readonly(path)
        try:
            conn.execute("BEGIN")
            state = read_state(conn, path, tables)
            position = positions.get(name)
            since = position[1] if position and position[0] == state.install_id else 0
            backlog, oldest = (conn.execute(f"SELECT count(*), min(at) FROM {CHANGELOG} WHERE seq > ?",
                                            (since,)).fetchone() if CHANGELOG in state.present else (0, None))
            conn.execute("ROLLBACK")
        finally:
            conn.close()
        print(f"{path}: capture {state.describe()}"
              + (f", install {state.install_id} since {state.installed_at}" if state.install_id else ""))
        if not state.present:
            continue
        print(f"   changelog: {state.changelog_rows:,} rows (seq {state.first_seq or '-'}..{state.last_seq or '-'}, "
              f"high-water {state.high_water:,}), oldest {_age(state.oldest_at)} old")
        if position is None:
            print(f"   sync position: none recorded ({pg_note or 'a load with capture installed records it'})")
        elif position[0] != state.install_id:
            print(f"   sync position: belongs to install {position[0]}, not this one: a sync refuses this file")
            code = 1
        else:
            print(f"   sync position: seq {position[1]:,} (set by {position[4]}); backlog {backlog:,} changes, "
                  f"oldest unapplied {_age(oldest)} old")
        if state.paused_rows:
            print(f"   WARNING: {state.paused_rows} committed row(s) in {PAUSE_TABLE}: capture is off for "
                  "every writer until they are deleted")
            code = 1
        if state.partial:
            code = 1
    return code


def add_commands(subparsers) -> None:
    p = subparsers.add_parser(
        "capture", help="change-capture triggers in the legacy SQLite files (install, status, uninstall)",
        description="Triggers on emails (emails.db) and accounts, sessions (auth.db) that log each changed "
                    f"key into {CHANGELOG} in the same file, in the writer's transaction; `mailmig sync` "
                    "applies them. Install and uninstall take the write lock briefly (sync.busy_timeout_ms), "
                    "are idempotent and safe while the app writes.")
    sub = p.add_subparsers(dest="capture_command", metavar="ACTION", required=True)
    for action, func, text in [
        ("install", cmd_install, "add the changelog and the triggers (again: nothing changes)"),
        ("status", cmd_status, "installed or not, backlog, age of the oldest unapplied change"),
        ("uninstall", cmd_uninstall, "remove exactly what install added (its changelog too)"),
    ]:
        q = sub.add_parser(action, help=text, description=text)
        q.add_argument("--emails-db", help="the live emails.db (default: sources.emails_db, EMAILS_DB)")
        q.add_argument("--auth-db", help="the live auth.db (default: sources.auth_db, AUTH_DB)")
        q.set_defaults(func=func)
