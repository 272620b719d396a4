"""Reverse capture and the reverse sync: PostgreSQL's changes carried back into SQLite.

After a cut-over PostgreSQL is the active store. So that a rollback keeps every email
received since, `mailmig reverse-capture install` puts row triggers on mail.emails
(the partitioned parent: every partition, present and future), mail.accounts and
mail.sessions that log each changed key into `migration.reverse_changelog` in the
writer's transaction, with `pg_current_xact_id()`. `mailmig sync --reverse` reads the
log in (xid, seq) order, only below the oldest running transaction (identity values
commit out of order; xids below the horizon cannot appear later), reads the current
rows of those keys in the same REPEATABLE READ snapshot (in the legacy forms, by the
`migration.legacy_*_rows` functions), reduces them to one net state per key (present:
upsert; absent: delete) and writes them to the SQLite files:

- one `BEGIN IMMEDIATE` transaction per file and pass, with the forward change capture
  suppressed for it (the forward sync must not echo these writes back);
- only the columns whose value differs (compared in validate's canonical forms), so a
  legacy row holding bytes PostgreSQL repaired keeps its original bytes when, say, only
  its read flag changes;
- the FTS5 index `emails_fts` (external content, content_rowid=id) kept in step: the
  old subject and body removed (read in SQL, byte-exact) before a delete or a change of
  them, the new ones added after;
- then the position advances in PostgreSQL. Killed between the SQLite commit and that,
  the next pass writes the same keys' current states again: applying a key's current
  state is idempotent, so the effect is exactly once.

A pass holds a session advisory lock, so a `--follow` process and a rollback's drain
never interleave. The cut-over starts the reverse sync (`migration.reverse_sync_start`)
at the moment of the switch; earlier changes are SQLite's own.
"""

from __future__ import annotations

import signal
import sqlite3
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import psycopg

from mailmig import faults, queries
from mailmig.mapping import Table, load_mapping
from mailmig.sqlite_source import SqliteText, encode_value, quote_identifier, rows_of_key_names
from mailmig.validate import CANONICALIZERS, Repair

BUSY_TIMEOUT_MS = 5000  # the app's setting: wait for its write lock, never fail at once
BATCH = 1000  # changelog rows per pass
LOCK_KEY = 0x6D61696C72657673  # "mailrevs": one reverse sync pass at a time per database
FTS_TABLE = "emails_fts"
FORWARD_PAUSE_TABLE = "mailmig_capture_pause"  # the forward capture's suppression marker
LEGACY_ROWS_QUERY = {"emails": "reverse_legacy_emails", "accounts": "reverse_legacy_accounts",
                     "sessions": "reverse_legacy_sessions"}
INT_KEYS = {"emails", "accounts"}
# order of application inside one file: children's deletes first, parents' upserts first
DELETE_ORDER = ("sessions", "accounts", "emails")
UPSERT_ORDER = ("accounts", "sessions", "emails")


_ABSENT = object()  # a row the file does not hold


class ReverseSyncError(RuntimeError):
    """The reverse sync cannot go on; the message says why and what to do."""


class ReverseConflict(ReverseSyncError):
    """A row PostgreSQL holds cannot be written to SQLite without losing another one."""


class DrainTimeout(ReverseSyncError):
    """The reverse changes were not all carried before the deadline."""


# -- reverse capture (install, status, uninstall): thin calls of the SQL functions ----


def capture_install(conninfo: str, lock_timeout: str = "5s") -> dict:
    with psycopg.connect(conninfo, autocommit=True) as conn:
        row = conn.execute(queries.load("reverse_capture_install"), {"lock_timeout": lock_timeout}).fetchone()
    return {"install_id": row[0], "created": list(row[1]), "already": row[2]}


def capture_uninstall(conninfo: str, lock_timeout: str = "5s") -> dict:
    with psycopg.connect(conninfo, autocommit=True) as conn:
        row = conn.execute(queries.load("reverse_capture_uninstall"), {"lock_timeout": lock_timeout}).fetchone()
    return {"removed": list(row[0]), "changelog_rows": row[1]}


def capture_status(conninfo: str) -> dict:
    with psycopg.connect(conninfo, autocommit=True) as conn:
        cur = conn.execute(queries.load("reverse_capture_status"))
        row = cur.fetchone()
        return dict(zip([d.name for d in cur.description], row))


# -- the SQLite side -----------------------------------------------------------------


def connect_target(path: Path) -> sqlite3.Connection:
    """A writer connection to a legacy file, set up as the app's (WAL, busy_timeout),
    lossless text (SqliteText) so that values compare by their exact bytes."""
    path = Path(path)
    if not path.is_file():
        raise ReverseSyncError(f"{path}: no such SQLite file")
    conn = sqlite3.connect(path, isolation_level=None, timeout=BUSY_TIMEOUT_MS / 1000, check_same_thread=False)
    conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    conn.text_factory = SqliteText
    return conn


def _has_table(conn: sqlite3.Connection, name: str) -> bool:
    return conn.execute("SELECT 1 FROM sqlite_master WHERE name = ? AND type = 'table'", (name,)).fetchone() \
        is not None


def legacy_canon(kind: str, value) -> bytes | None:
    """validate's canonical form of a value PostgreSQL rendered in the legacy form."""
    if isinstance(value, str):
        value = SqliteText(value.encode("utf-8"))
    canon = CANONICALIZERS[kind](value)
    return canon if not isinstance(canon, Repair) else None


def same_value(kind: str, sqlite_value, legacy_value) -> bool:
    """Does SQLite already hold what PostgreSQL holds, by validate's rules? A legacy value
    that the load repaired counts as equal when PostgreSQL holds the repaired value."""
    target = legacy_canon(kind, legacy_value)
    current = CANONICALIZERS[kind](sqlite_value)
    if isinstance(current, Repair):
        return any(option == target or not isinstance(option, (bytes, type(None)))
                   for option in current.options.values())
    if not isinstance(current, (bytes, type(None))):  # a Reject: the row was not loadable
        return False
    return current == target


@dataclass
class FileApply:
    """What one pass wrote to one file."""

    upserts: int = 0
    inserts: int = 0
    deletes: int = 0
    unchanged: int = 0
    columns_written: int = 0
    fts_updates: int = 0


class SqliteWriter:
    """Writes net per-key states into one legacy file (one transaction per call)."""

    def __init__(self, path: Path, tables: list[Table]):
        self.path = Path(path)
        self.conn = connect_target(self.path)
        self.tables = {t.name: t for t in tables}
        self.has_fts = _has_table(self.conn, FTS_TABLE) and "emails" in self.tables
        self.has_forward_capture = _has_table(self.conn, FORWARD_PAUSE_TABLE)
        self.source_names: dict = {}  # (table, key): source key name, for the call to apply()

    def close(self) -> None:
        self.conn.close()

    # statements (identifiers from the mapping, through the one quoting helper)
    def _select(self, table: Table, where: str) -> str:
        cols = ", ".join(quote_identifier(c) for c in table.columns)
        return f"SELECT {cols} FROM {quote_identifier(table.name)} WHERE {where}"

    def _insert(self, table: Table) -> str:
        cols = ", ".join(quote_identifier(c) for c in table.columns)
        marks = ", ".join("?" * len(table.columns))
        return f"INSERT INTO {quote_identifier(table.name)} ({cols}) VALUES ({marks})"

    def _delete(self, table: Table, where: str) -> str:
        return f"DELETE FROM {quote_identifier(table.name)} WHERE {where}"

    def _update(self, table: Table, columns: list[str], where: str) -> str:
        sets = ", ".join(f"{quote_identifier(c)} = ?" for c in columns)
        return f"UPDATE {quote_identifier(table.name)} SET {sets} WHERE {where}"

    def _where(self, name: str, key, source_name: str | None) -> tuple[str, list]:
        """The WHERE of one row: by PostgreSQL's key, or, for a row the load stored under a
        repaired key (a BLOB or non-UTF-8 session id), by the value its source name names."""
        table = self.tables[name]
        column = quote_identifier(table.key)
        if source_name is not None and source_name != str(key):
            found = rows_of_key_names(column, [source_name], "int" if name in INT_KEYS else "text")
            if found:
                return found[0]
        return f"{column} = ?", [key]

    def current_value(self, name: str, source_name: str, column: str):
        """One column of the row of a source key name as the file holds it now (_ABSENT:
        no such row)."""
        table = self.tables[name]
        found = rows_of_key_names(quote_identifier(table.key), [source_name], "int" if name in INT_KEYS else "text")
        if not found:  # a name no row of this key column can have
            return _ABSENT
        where, params = found[0]
        row = self.conn.execute(f"SELECT {quote_identifier(column)} FROM {quote_identifier(table.name)} "
                                f"WHERE {where}", params).fetchone()
        return _ABSENT if row is None else row[0]

    def _fts(self, op: str, key) -> None:
        if self.has_fts:
            self.conn.execute(queries.load(f"reverse_sqlite_fts_{op}"), (key,))

    def apply(self, states: dict[str, dict], resolve: "_Resolver",
              source_names: dict | None = None) -> FileApply:
        """Write `states` ({table: {key: legacy row dict or None}}) in one transaction.

        `resolve(table, key)` returns PostgreSQL's state of another key in the same
        snapshot (used when a row conflicts on a unique column with a row whose own
        change is still to come). `source_names` ({(table, key): source key name}) names
        the SQLite row of a key the load repaired."""
        done = FileApply()
        self.source_names = source_names or {}
        conn = self.conn
        try:
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            raise ReverseSyncError(f"{self.path}: could not take the write lock within "
                                   f"{BUSY_TIMEOUT_MS} ms: {exc}") from None
        try:
            if self.has_forward_capture:
                # the forward capture's triggers skip this transaction's writes
                conn.execute(f"INSERT INTO {quote_identifier(FORWARD_PAUSE_TABLE)} (writer) VALUES (?)",
                             ("mailmig sync --reverse",))
            for name in DELETE_ORDER:
                for key, row in states.get(name, {}).items():
                    if row is None:
                        self._write(name, key, None, done, resolve, set())
            for name in UPSERT_ORDER:
                for key, row in states.get(name, {}).items():
                    if row is not None:
                        self._write(name, key, row, done, resolve, set())
            if self.has_forward_capture:
                conn.execute(f"DELETE FROM {quote_identifier(FORWARD_PAUSE_TABLE)}")
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        return done

    def _write(self, name: str, key, row: dict | None, done: FileApply, resolve: "_Resolver", seen: set) -> None:
        table = self.tables[name]
        where, params = self._where(name, key, self.source_names.get((name, str(key))))
        current = self.conn.execute(self._select(table, where), params).fetchone()
        if row is None:
            if current is not None:
                if name == "emails":
                    self._fts("delete", key)
                self.conn.execute(self._delete(table, where), params)
                done.deletes += 1
            else:
                done.unchanged += 1
            return
        if current is None:
            values = [row[c] for c in table.columns]
            self._guarded(name, key, row, lambda: self.conn.execute(self._insert(table), values), resolve, seen)
            if name == "emails":
                self._fts("insert", key)
                done.fts_updates += 1
            done.inserts += 1
            done.columns_written += len(values)
            return
        changed = [c for c, value in zip(table.columns, current)
                   if not same_value(table.columns[c], value, row[c])]
        if not changed:
            done.unchanged += 1
            return
        text_changed = name == "emails" and ("subject" in changed or "body" in changed)
        if text_changed:
            self._fts("delete", key)
        self._guarded(name, key, row,
                      lambda: self.conn.execute(self._update(table, changed, where), [row[c] for c in changed] + params),
                      resolve, seen)
        if text_changed:
            self._fts("insert", key)
            done.fts_updates += 1
        done.upserts += 1
        done.columns_written += len(changed)

    def _guarded(self, name: str, key, row: dict, write: Callable, resolve: "_Resolver", seen: set) -> None:
        """Run `write`; on a unique conflict, first bring the conflicting row to its own
        PostgreSQL state (its change is still to come), then write again."""
        for _ in range(4):
            try:
                write()
                return
            except sqlite3.IntegrityError as exc:
                conflicts = self._conflicting_keys(name, key, row)
                if not conflicts:
                    raise ReverseConflict(f"{self.path}: {name} {key}: {exc}") from None
                for other_table, other_key in conflicts:
                    if (other_table, other_key) in seen:
                        raise ReverseConflict(f"{self.path}: {name} {key} and {other_table} {other_key} "
                                              f"conflict in a cycle: {exc}") from None
                    seen.add((other_table, other_key))
                    state = resolve(other_table, other_key)
                    if state is None and not resolve.pending(other_table, other_key):
                        raise ReverseConflict(
                            f"{self.path}: PostgreSQL's {name} {key} conflicts on a unique column with "
                            f"SQLite's {other_table} {other_key}, which PostgreSQL does not hold and whose "
                            f"removal was never captured ({resolve.why_absent(other_table, other_key)}); "
                            "nothing was written: resolve the two rows by hand") from None
                    self._write(other_table, other_key, state, FileApply(), resolve, seen)
        raise ReverseConflict(f"{self.path}: {name} {key}: unique conflicts keep recurring")

    def _conflicting_keys(self, name: str, key, row: dict) -> list[tuple[str, object]]:
        found = []
        if name == "emails":
            for (other,) in self.conn.execute(queries.load("reverse_sqlite_email_by_message_id"),
                                              (row["message_id"], key)):
                found.append(("emails", other))
        elif name == "accounts":
            for (other,) in self.conn.execute(queries.load("reverse_sqlite_account_by_email_or_token"),
                                              (row["email"], row["token"], key)):
                found.append(("accounts", other))
        return found


# -- one pass, drain, follow ---------------------------------------------------------


@dataclass
class PassResult:
    changes: int = 0  # changelog rows read
    keys: int = 0  # distinct keys written (net states)
    files: dict = field(default_factory=dict)  # file name -> FileApply
    horizon: int = 0  # the xid horizon the pass read below
    lag_seconds: float | None = None  # age of the oldest change read, when read
    full: bool = False  # the batch was full: more may be waiting
    seconds: float = 0.0


class _Resolver:
    """PostgreSQL's state of any key, in the pass's snapshot."""

    def __init__(self, cur, position):
        self.cur = cur
        self.position = position

    def __call__(self, table: str, key):
        return fetch_states(self.cur, table, [key]).get(key)

    def pending(self, table: str, key) -> bool:
        """Is a change of this key logged after the position (seen or not yet)?"""
        return self.cur.execute(queries.load("reverse_key_pending"),
                                {"table": table, "key": str(key), "xid": self.position[0],
                                 "seq": self.position[1]}).fetchone()[0]

    def why_absent(self, table: str, key) -> str:
        row = self.cur.execute(queries.load("reverse_key_rejected"),
                               {"table": table, "key": str(key)}).fetchone()
        return f"the load rejected it: {row[0]}" if row else "not in migration.rejects either"


def source_names(cur, states: dict) -> dict:
    """{(table, key as text): source key name} for the keys of text-keyed tables whose
    name differs from the key (rows the load stored under a repaired key)."""
    names = {}
    for table, per in states.items():
        if table in INT_KEYS or not per:
            continue
        for key, name in cur.execute(queries.load("reverse_source_names"),
                                     {"table": table, "keys": [str(k) for k in per]}).fetchall():
            if name != key:
                names[(table, key)] = name
    return names


def fetch_states(cur, table: str, keys: list) -> dict:
    """{key: legacy row dict or None (absent)} for keys of one table."""
    typed = [int(k) for k in keys] if table in INT_KEYS else [str(k) for k in keys]
    cur.execute(queries.load(LEGACY_ROWS_QUERY[table]), {"keys": typed})
    names = [d.name for d in cur.description]
    states = {k: None for k in typed}
    for values in cur.fetchall():
        row = dict(zip(names, values))
        states[row["id"]] = row
    return states


class ReverseSync:
    """Carries reverse changes to the two legacy files; one instance per process."""

    def __init__(self, conninfo: str, emails_db: Path, auth_db: Path, batch: int = BATCH,
                 tables: list[Table] | None = None):
        self.conninfo = conninfo
        self.batch = batch
        tables = tables or load_mapping()
        self.file_of = {t.name: t.source for t in tables}
        self.writers = {
            "emails_db": SqliteWriter(emails_db, [t for t in tables if t.source == "emails_db"]),
            "auth_db": SqliteWriter(auth_db, [t for t in tables if t.source == "auth_db"]),
        }
        self.conn = psycopg.connect(conninfo, autocommit=True)
        self.read = psycopg.connect(conninfo)  # one REPEATABLE READ snapshot per pass

    def close(self) -> None:
        for writer in self.writers.values():
            writer.close()
        self.read.close()
        self.conn.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _lock(self, timeout_s: float | None):
        if timeout_s is not None:
            self.conn.execute(queries.load("set_lock_timeout"), {"ms": str(max(1, int(timeout_s * 1000)))})
        try:
            self.conn.execute(queries.load("reverse_sync_lock"), {"key": LOCK_KEY})
        except psycopg.errors.LockNotAvailable:
            raise DrainTimeout("another reverse sync pass holds the lock past the deadline") from None
        finally:
            if timeout_s is not None:
                self.conn.execute(queries.load("set_lock_timeout"), {"ms": "0"})

    def _unlock(self) -> None:
        self.conn.execute(queries.load("reverse_sync_unlock"), {"key": LOCK_KEY})

    def run_pass(self, lock_timeout_s: float | None = None) -> PassResult:
        """Read one batch below the horizon, write it to SQLite, advance the position."""
        started = time.monotonic()
        result = PassResult()
        self._lock(lock_timeout_s)
        try:
            try:
                position = self._read_and_apply(result)
            finally:
                self.read.rollback()  # the snapshot ends; nothing was written in it
            faults.point("reverse_after_sqlite_commit")  # SQLite has it, the position not yet
            self._advance(*position, result.changes, result.keys, result.lag_seconds)
        finally:
            self._unlock()
        result.seconds = time.monotonic() - started
        return result

    def _read_and_apply(self, result: PassResult) -> tuple:
        """One snapshot: the changes, the keys' current states, written to SQLite.
        Returns (install id, xid, seq) of the position reached."""
        self.read.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        cur = self.read.cursor()
        state = cur.execute(queries.load("reverse_sync_state")).fetchone()
        if state is None:
            raise ReverseSyncError(
                "the reverse sync has not started: a cut-over starts it (mailmig cutover), "
                "or it was removed with reverse capture (mailmig reverse-capture uninstall)")
        install_id, capture_install_id, installed, missing, after_xid, after_seq, horizon = state
        if not installed:
            raise ReverseSyncError("reverse capture is not installed completely (" + "; ".join(missing)
                                   + "): changes may be missing; run `mailmig reverse-capture install` "
                                   "and cut over again")
        if capture_install_id != install_id:
            raise ReverseSyncError(
                f"reverse capture was reinstalled (install {capture_install_id}, the reverse sync started "
                f"on {install_id}): changes made while it was off are lost to the reverse sync; validate "
                "and cut over again to restart it")
        result.horizon = int(str(horizon))
        changes = cur.execute(queries.load("reverse_changes"),
                              {"xid": after_xid, "seq": after_seq, "limit": self.batch}).fetchall()
        result.changes = len(changes)
        result.full = len(changes) >= self.batch
        if not changes:
            result.lag_seconds = 0.0
            return install_id, after_xid, after_seq
        now = cur.execute(queries.load("clock_now")).fetchone()[0]
        result.lag_seconds = max(0.0, (now - min(c[5] for c in changes)).total_seconds())
        keys: dict[str, dict] = {}
        for _, _, table, key, _, _ in changes:
            keys.setdefault(table, {})[key] = True  # distinct keys, first-seen order
        states = {table: fetch_states(cur, table, list(ks)) for table, ks in keys.items()}
        result.keys = sum(len(s) for s in states.values())
        names = source_names(cur, states)
        faults.point("reverse_before_apply")  # a drain made slow on purpose (fault tests)
        resolver = _Resolver(cur, (after_xid, after_seq))
        for source, writer in self.writers.items():
            mine = {t: s for t, s in states.items() if self.file_of.get(t) == source}
            if mine:
                result.files[writer.path.name] = writer.apply(mine, resolver, names)
        self._drop_superseded_repairs(cur, states, names)
        last = changes[-1]
        return install_id, last[0], last[1]

    def _drop_superseded_repairs(self, cur, states: dict, names: dict) -> None:
        """A repair record describes a source value the load repaired. Once the reverse
        sync has replaced that value in SQLite (the app changed the column in
        PostgreSQL) or removed the row, the record describes nothing: delete it, or
        validate would report the source as differing from its record. Decided by the
        files' state, so a pass killed before this and run again gets the same result."""
        keyed = [(t, names.get((t, str(k)), str(k))) for t, per in states.items() for k in per]
        if not keyed:
            return
        recorded = cur.execute(queries.load("reverse_repairs_of_keys"),
                               {"tables": [t for t, _ in keyed], "keys": [k for _, k in keyed]}).fetchall()
        stale = []
        for table, key, column, original in recorded:
            writer = self.writers[self.file_of[table]]
            current = writer.current_value(table, key, column)
            if current is _ABSENT or encode_value(current) != original:
                stale.append((table, key, column))
        if stale:
            self.conn.execute(queries.load("reverse_repairs_delete"),
                              {"tables": [s[0] for s in stale], "keys": [s[1] for s in stale],
                               "columns": [s[2] for s in stale]})

    def _advance(self, install_id, xid, seq, changes, keys, lag) -> None:
        self.conn.execute(queries.load("reverse_sync_advance"),
                          {"install_id": install_id, "xid": xid, "seq": seq, "changes": changes,
                           "keys": keys, "lag": lag})

    def prune(self, limit: int = 5000) -> int:
        return self.conn.execute(queries.load("reverse_changelog_prune"), {"limit": limit}).fetchone()[0]

    def drain(self, deadline: float | None = None,
              progress: Callable[[str], None] | None = None) -> dict:
        """Carry every change of every transaction that finished before this call.

        Done when a pass reads a partial batch below a horizon at or past the next xid
        as of the call (every transaction older than the call has finished). Raises
        DrainTimeout naming what holds the horizon when `deadline` (time.monotonic())
        passes first."""
        started = time.monotonic()
        target = int(str(self.conn.execute(queries.load("reverse_next_xid")).fetchone()[0]))
        totals = {"passes": 0, "changes": 0, "keys": 0}
        while True:
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                raise DrainTimeout(self._horizon_holder(target))
            result = self.run_pass(lock_timeout_s=remaining)
            totals["passes"] += 1
            totals["changes"] += result.changes
            totals["keys"] += result.keys
            if not result.full and result.horizon >= target:
                totals["seconds"] = round(time.monotonic() - started, 3)
                return totals
            if progress:
                progress(f"reverse drain: {totals['changes']} changes, horizon {result.horizon} < {target}")
            if not result.full:
                time.sleep(0.01)

    def _horizon_holder(self, target: int) -> str:
        row = self.conn.execute(queries.load("reverse_horizon_holder")).fetchone()
        if row is None or row[0] is None:
            return f"the reverse changes were not all carried before the deadline (target xid {target})"
        pid, age, state, query = row
        return (f"the reverse changes were not all carried before the deadline: transaction of pid {pid} "
                f"({state}, running {age:.1f} s: {query!r}) holds the horizon below xid {target}")

    def follow(self, stop: threading.Event, interval: float = 0.2,
               progress: Callable[[str], None] | None = None, report_every: float = 5.0) -> dict:
        """Keep carrying changes until `stop` is set; prints lag and rows/s every
        `report_every` seconds; survives PostgreSQL restarts (retries with backoff)."""
        totals = {"passes": 0, "changes": 0, "keys": 0, "errors": 0, "pruned": 0}
        last_report = time.monotonic()
        window_changes = 0
        backoff = interval
        while not stop.is_set():
            try:
                result = self.run_pass()
                backoff = interval
            except (psycopg.OperationalError, psycopg.errors.AdminShutdown) as exc:
                totals["errors"] += 1
                if progress:
                    progress(f"reverse sync: PostgreSQL unavailable ({str(exc).strip().splitlines()[0]}); "
                             f"retrying in {backoff:.1f} s")
                stop.wait(backoff)
                backoff = min(backoff * 2, 5.0)
                self._reconnect()
                continue
            totals["passes"] += 1
            totals["changes"] += result.changes
            totals["keys"] += result.keys
            window_changes += result.changes
            if not result.full:
                totals["pruned"] += self.prune()
                stop.wait(interval)
            now = time.monotonic()
            if progress and now - last_report >= report_every:
                status = self.status()
                progress(f"reverse sync: lag {status['lag_seconds'] or 0:.2f} s, backlog {status['backlog']}, "
                         f"{window_changes / (now - last_report):.0f} changes/s, {totals['changes']} carried")
                last_report, window_changes = now, 0
        return totals

    def _reconnect(self) -> None:
        for name in ("conn", "read"):
            try:
                getattr(self, name).close()
            except psycopg.Error:
                pass
        try:
            self.conn = psycopg.connect(self.conninfo, autocommit=True)
            self.read = psycopg.connect(self.conninfo)
        except psycopg.OperationalError:
            pass  # still down: the next pass fails and the loop waits again

    def status(self) -> dict:
        cur = self.conn.execute(queries.load("reverse_capture_status"))
        return dict(zip([d.name for d in cur.description], cur.fetchone()))


def start(conninfo: str) -> dict:
    """Start the reverse sync now (the cut-over calls it during its pause)."""
    with psycopg.connect(conninfo, autocommit=True) as conn:
        row = conn.execute(queries.load("reverse_sync_start")).fetchone()
    return {"install_id": row[0], "after_xid": str(row[1])}



# -- the commands ----------------------------------------------------------------------


def _print_status(status: dict) -> None:
    state = "installed" if status["installed"] else "NOT installed"
    print(f"reverse capture: {state}" + (f" (install {status['install_id']}, {status['installed_at']:%Y-%m-%d %H:%M:%S}Z)"
                                         if status["install_id"] else ""))
    for what in status["missing"] or []:
        print(f"  missing: {what}")
    print(f"changelog rows: {status['changelog_rows']:,}; not yet carried to SQLite: {status['backlog']:,}"
          + (f" (oldest {status['oldest_unapplied_age_s']:.1f} s old)" if status["oldest_unapplied_age_s"] else ""))
    if status["sync_started"]:
        beat = status["heartbeat_age_s"]
        print(f"reverse sync: started; {status['applied_changes']:,} changes carried as {status['applied_keys']:,} "
              f"key states; last heartbeat {'never' if beat is None else f'{beat:.1f} s ago'}; "
              f"lag {status['lag_seconds'] or 0:.2f} s")
    else:
        print("reverse sync: not started (a cut-over starts it)")


def cmd_capture(args, cfg) -> int:
    conninfo = cfg.conninfo()
    if args.action == "install":
        result = capture_install(conninfo, args.lock_timeout)
        if result["already"]:
            print(f"reverse capture already installed (install {result['install_id']}): nothing changed")
        else:
            print(f"reverse capture installed (install {result['install_id']}): row triggers on "
                  + ", ".join(result["created"]))
    elif args.action == "uninstall":
        result = capture_uninstall(conninfo, args.lock_timeout)
        print(("removed reverse capture from " + ", ".join(result["removed"])) if result["removed"]
              else "reverse capture was not installed")
        print(f"dropped {result['changelog_rows']:,} changelog rows and the reverse sync position: "
              "the rollback window is closed")
        return 0
    status = capture_status(conninfo)
    _print_status(status)
    return 1 if args.check and not status["installed"] else 0


def cmd_sync_reverse(args, cfg) -> int:
    files = cfg.source_files(getattr(args, "emails_db", None), getattr(args, "auth_db", None))
    emails_db, auth_db = files.emails_db, files.auth_db
    progress = lambda message: print(message, file=sys.stderr, flush=True)  # noqa: E731
    with ReverseSync(cfg.conninfo(), emails_db, auth_db) as sync:
        if getattr(args, "follow", False):
            stop = threading.Event()
            for sig in (signal.SIGTERM, signal.SIGINT):
                signal.signal(sig, lambda *_: stop.set())
            print(f"sync --reverse --follow: PostgreSQL -> {emails_db}, {auth_db} (SIGTERM or ^C stops)",
                  flush=True)
            totals = sync.follow(stop, progress=progress)
            print(f"sync --reverse stopped: {totals['changes']:,} changes in {totals['passes']:,} passes, "
                  f"{totals['errors']} connection errors, {totals['pruned']:,} changelog rows pruned")
            return 0
        started = time.monotonic()
        totals = sync.drain(progress=progress)
        pruned = 0
        while (batch := sync.prune()) > 0:
            pruned += batch
        print(f"sync --reverse: {totals['changes']:,} changes carried as {totals['keys']:,} key states in "
              f"{totals['passes']} passes, {time.monotonic() - started:.2f} s; {pruned:,} changelog rows pruned")
        _print_status(sync.status())
    return 0


def _run_sync(args, cfg, forward):
    if getattr(args, "reverse", False):
        return cmd_sync_reverse(args, cfg)
    if forward is None:
        print("mailmig sync: only --reverse is available in this build", file=sys.stderr)
        return 2
    return forward(args, cfg)


def add_commands(subparsers) -> None:
    parser = subparsers.add_parser(
        "reverse-capture",
        help="record PostgreSQL's changes for the way back to SQLite (install|status|uninstall)",
        description="Row triggers on mail.emails (every partition, present and future), mail.accounts "
        "and mail.sessions log each changed key into migration.reverse_changelog, so that "
        "`mailmig sync --reverse` and `mailmig rollback` carry what PostgreSQL received back into the "
        "SQLite files. Install before the cut-over (the cut-over refuses without it); uninstall closes "
        "the rollback window.",
    )
    parser.add_argument("action", choices=("install", "status", "uninstall"))
    parser.add_argument("--lock-timeout", default="5s",
                        help="how long install/uninstall wait for in-flight writes (default 5s)")
    parser.add_argument("--check", action="store_true", help="status: exit 1 unless installed")
    parser.set_defaults(func=cmd_capture)

    # `sync --reverse` belongs to the forward sync's command: extend its parser when it is
    # there (the forward sync module registers first), make a reverse-only one otherwise.
    sync = subparsers.choices.get("sync")
    if sync is None:
        sync = subparsers.add_parser(
            "sync", help="carry changes between the stores (--reverse: PostgreSQL to SQLite)",
            description="`--reverse`: carry every change recorded by reverse capture into the SQLite "
            "files (net state per key, legacy forms, FTS5 kept in step), once or with --follow.")
        sync.add_argument("--follow", action="store_true", help="keep carrying changes until SIGTERM/^C")
        sync.add_argument("--emails-db", help="emails.db to write (default: sources.emails_db)")
        sync.add_argument("--auth-db", help="auth.db to write (default: sources.auth_db)")
        forward = None
    else:
        forward = sync.get_default("func")
    sync.add_argument("--reverse", action="store_true",
                      help="PostgreSQL to SQLite: the changes recorded by reverse capture since the cut-over")
    sync.set_defaults(func=lambda args, cfg: _run_sync(args, cfg, forward))
