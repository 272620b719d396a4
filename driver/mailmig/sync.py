"""`mailmig sync`: the changes captured in the SQLite files, applied to PostgreSQL.

Each source file (emails.db, auth.db) has a changelog (mailmig.capture) and a position in
`migration.sync_position` (the last applied seq and the capture install it belongs to;
a load whose snapshot held the capture records where it starts). One batch:

1. one SQLite read transaction (one WAL snapshot): the capture is checked (installed,
   same install id as the position, no committed pause marker, the high-water mark not
   behind the position), the changelog rows past the position (up to `batch_rows`) and
   the current rows of their keys are read;
2. one PostgreSQL transaction: the rows are landed in staging exactly as a load lands
   them (plain rows in staging.<table>, the others whole in staging.hostile, the keys in
   staging.sync_keys); keys the changelog cannot name are pulled in from the same
   snapshot (migration.sync_pull_keys: rows a SQLite INSERT OR REPLACE deleted without a
   trigger, unique values moving between rows, the sessions of changed accounts);
   `migration.sync_apply_batch` brings every key to its source state through the load's
   own rules and moves the position, all or nothing; the heartbeat is written;
3. after the commit, the applied changelog rows are pruned in small write transactions.

Killed anywhere, a re-run starts from the committed position: a change is applied in
the transaction that moves the position past it, and pruned only after that commit.
Each key takes its current source state, so applying one twice changes nothing.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import sqlite3
import sys
import time
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import psycopg
from psycopg import sql
from psycopg.types.json import Jsonb

from mailmig import capture, faults, queries
from mailmig.audit import plain_row
from mailmig.mapping import DEFAULT_MAPPING, SOURCE_FILES, Table, load_mapping
from mailmig.runlock import RunLockBusy, exclusive_run
from mailmig.runs import new_run
from mailmig.sqlite_source import connect_readonly, encode_value, quote_identifier, rows_of_key_names, source_key
from mailmig.console import table as render

PULL_ROUNDS = 50  # a pulled key can pull others in; far more rounds than any real chain
# Failpoints (mailmig.faults, MAILMIG_FAULTS) of a batch, in order: after the SQLite read,
# after landing in staging, after applying (inside the transaction, before its commit),
# after the commit (before the prune).
FAULT_POINTS = ("sync_batch_read", "sync_batch_landed", "sync_batch_applied", "sync_batch_committed")
LATENCIES_KEPT = 200_000


class SyncError(RuntimeError):
    """The sync cannot go on safely; the message says why and what to do."""


@dataclass
class Source:
    """One legacy file and its mapped tables."""

    name: str  # emails_db | auth_db (the mapping's name; migration.sync_position.source)
    path: Path
    tables: list[Table]

    @property
    def label(self) -> str:
        return SOURCE_FILES[self.name]


def sources_of(emails_db: Path, auth_db: Path, mapping_path: Path = DEFAULT_MAPPING) -> list[Source]:
    tables = load_mapping(mapping_path)
    paths = {"emails_db": Path(emails_db), "auth_db": Path(auth_db)}
    return [Source(name, paths[name], capture.tables_of(tables, name))
            for name in SOURCE_FILES if capture.tables_of(tables, name)]


@dataclass
class Position:
    install_id: str
    seq: int
    seq_at: float | None  # `at` of changelog row `seq`, the anchor the sync never prunes


def read_position(conn: psycopg.Connection, source: Source) -> Position | None:
    row = conn.execute(queries.load("sync_position"), {"source": source.name}).fetchone()
    return Position(row[0], row[1], row[2]) if row else None


# -- the SQLite side ---------------------------------------------------------------------


@dataclass
class Batch:
    source: Source
    install_id: str
    from_seq: int
    to_seq: int
    source_seq: int  # the newest change in the file at this read
    to_seq_at: float | None  # `at` of changelog row to_seq (the new anchor)
    oldest_unapplied_at: float | None  # `at` of the first change after to_seq (left for the next batch)
    change_times: list[float] = field(default_factory=list)
    keys: dict[str, set[str]] = field(default_factory=dict)  # table -> key texts
    rows: dict[str, dict[str, tuple]] = field(default_factory=dict)  # table -> key -> row
    pulled: dict[str, set[str]] = field(default_factory=dict)
    null_keys: int = 0  # changelog rows whose key is NULL (a legacy sessions quirk): not syncable
    read_at: float = 0.0  # epoch seconds of the read (the snapshot)

    @property
    def changes(self) -> int:
        return len(self.change_times)


def _text(value) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def _columns(table: Table) -> str:
    return ", ".join(quote_identifier(c) for c in table.columns)


class SnapshotReader:
    """The read side of one source file: one read transaction (one WAL snapshot) per batch."""

    def __init__(self, source: Source):
        self.source = source
        self.conn = connect_readonly(source.path)
        self.conn.isolation_level = None  # BEGIN/ROLLBACK by hand: the snapshot is ours to hold

    def close(self) -> None:
        self.end()
        self.conn.close()

    def end(self) -> None:
        if self.conn.in_transaction:
            self.conn.execute("ROLLBACK")

    def read(self, position: Position | None, batch_rows: int) -> Batch:
        """Start a read transaction and read the next batch (no change: an empty batch)."""
        src = self.source
        self.end()
        self.conn.execute("BEGIN")
        state = capture.read_state(self.conn, src.path, src.tables)  # the first read fixes the snapshot
        check_capture(state, src, position)
        if position.seq_at is not None:
            anchor = self.conn.execute(f"SELECT at FROM {capture.CHANGELOG} WHERE seq = ?",
                                       (position.seq,)).fetchone()
            if anchor is None or float(anchor[0]) != position.seq_at:
                raise SyncError(
                    f"{src.path}: the changelog no longer holds the last applied change (seq {position.seq} "
                    f"of {datetime.fromtimestamp(position.seq_at, timezone.utc):%Y-%m-%d %H:%M:%S.%f} UTC"
                    + (", another change has its seq" if anchor else "")
                    + "): the file was replaced or restored from an older copy, or its changelog was edited; "
                    "changes may be missing. Load again into an empty database to start the sync over")
        batch = Batch(src, state.install_id, position.seq, position.seq,
                      max(state.high_water, state.last_seq or 0), position.seq_at, None, read_at=time.time())
        changes = self.conn.execute(
            f"SELECT seq, source_table, source_key, at FROM {capture.CHANGELOG} WHERE seq > ? ORDER BY seq LIMIT ?",
            (position.seq, batch_rows)).fetchall()
        if not changes:
            return batch
        batch.to_seq = changes[-1][0]
        batch.to_seq_at = float(changes[-1][3])
        after = self.conn.execute(f"SELECT at FROM {capture.CHANGELOG} WHERE seq > ? ORDER BY seq LIMIT 1",
                                  (batch.to_seq,)).fetchone()
        batch.oldest_unapplied_at = after[0] if after else None
        by_name = {t.name: t for t in src.tables}
        for _, table_name, key, at in changes:
            batch.change_times.append(float(at))
            table_name = _text(table_name)
            if table_name not in by_name:
                raise SyncError(f"{src.path}: the changelog names table {table_name}, which the mapping "
                                "does not map: capture and mapping disagree (re-install capture after a new load)")
            if key is None:
                batch.null_keys += 1
                continue
            table = by_name[table_name]
            batch.keys.setdefault(table_name, set()).add(source_key(key, table.columns[table.key]))
        for table in src.tables:
            batch.rows[table.name] = {}
            if table.name not in batch.keys:
                continue
            key_pos = list(table.columns).index(table.key)
            query = (f"SELECT {_columns(table)} FROM {quote_identifier(table.name)} "
                     f"WHERE {quote_identifier(table.key)} IN (SELECT source_key FROM {capture.CHANGELOG} "
                     "WHERE seq > ? AND seq <= ? AND source_table = ?)")
            for row in self.conn.execute(query, (batch.from_seq, batch.to_seq, table.name)):
                batch.rows[table.name][source_key(row[key_pos], table.columns[table.key])] = row
        return batch

    def rows_by_key(self, table: Table, keys: list[str]) -> dict[str, tuple]:
        """Current rows of the given source keys (their names: docs/contracts.md, "Source
        keys"), in the open read transaction."""
        found: dict[str, tuple] = {}
        key_pos = list(table.columns).index(table.key)
        kind = table.columns[table.key]
        head = f"SELECT rowid, {_columns(table)} FROM {quote_identifier(table.name)} WHERE "
        for where, params in rows_of_key_names(quote_identifier(table.key), keys, kind):
            for rowid, *row in self.conn.execute(head + where, params):
                found[source_key(row[key_pos], kind, rowid)] = tuple(row)
        return found


def check_capture(state: capture.CaptureState, source: Source, position: Position | None) -> None:
    """Refuse a file whose changelog cannot be trusted from the stored position."""
    path = source.path
    if position is None:
        raise SyncError(f"{path}: no sync start is recorded for {source.label}: install capture "
                        "(make capture-install) and then load (make load); the load records where the sync starts")
    if not state.installed:
        raise SyncError(f"{path}: change capture is {state.describe()}: changes made meanwhile were not "
                        "captured, so the sync cannot go on from its position. Re-install capture "
                        "(mailmig capture install), then load again into an empty database")
    if state.install_id != position.install_id:
        raise SyncError(f"{path}: change capture was reinstalled behind the sync's back (install "
                        f"{state.install_id}, the sync position belongs to install {position.install_id}): "
                        "changes between the two installs were not captured. Load again into an empty "
                        "database to start the sync over")
    if state.paused_rows:
        raise SyncError(f"{path}: {capture.PAUSE_TABLE} holds {state.paused_rows} committed row(s): a writer "
                        "suppressed capture and committed without clearing the marker, so capture is off "
                        "for every writer. Changes since then may be missing: delete the row, then load again")
    if max(state.high_water, state.last_seq or 0) < position.seq:
        raise SyncError(f"{path}: the changelog's high-water mark ({state.high_water}) is behind the sync "
                        f"position ({position.seq}): the file was replaced or restored from an older copy")


PRUNE_BUSY_TIMEOUT_MS = 10  # see Syncer.__init__


class Pruner:
    """Deletes applied changelog rows in small write transactions (after the commit),
    below the position: the row at the position stays, as the anchor."""

    def __init__(self, source: Source, prune_rows: int, busy_timeout_ms: int):
        self.source, self.prune_rows, self.busy_timeout_ms = source, prune_rows, busy_timeout_ms
        self.conn = capture.connect_writer(source.path, busy_timeout_ms)

    def prune(self, below_seq: int) -> int:
        removed = 0
        while True:
            try:
                cur = self.conn.execute(
                    f"DELETE FROM {capture.CHANGELOG} WHERE seq IN (SELECT seq FROM {capture.CHANGELOG} "
                    "WHERE seq < ? ORDER BY seq LIMIT ?)", (below_seq, self.prune_rows))
            except sqlite3.OperationalError as exc:
                if "locked" in str(exc) or "busy" in str(exc):
                    return removed  # the app holds the lock: prune next time, nothing is lost
                raise
            removed += cur.rowcount
            if cur.rowcount < self.prune_rows:
                return removed

    def close(self) -> None:
        self.conn.close()


# -- the PostgreSQL side -----------------------------------------------------------------


def _staging_text(value) -> str | None:
    """A plain value as the text staging holds (the load's COPY does the same)."""
    if value is None:
        return None
    if isinstance(value, bytes):
        return bytes(value).decode("utf-8")
    if isinstance(value, float):
        return repr(value)
    return str(value)


def land(cur: psycopg.Cursor, source: Source, rows: dict[str, dict[str, tuple]],
         keys: dict[str, set[str]], pulled: bool) -> None:
    """COPY the rows (plain into staging.<table>, the others whole into staging.hostile) and
    their keys (present or not) into staging.sync_keys."""
    for table in source.tables:
        table_rows = rows.get(table.name, {})
        plain, hostile = [], []
        for key, row in table_rows.items():
            (plain if plain_row(table, row) else hostile).append((key, row))
        if plain:
            query = sql.SQL("COPY {} ({}) FROM STDIN").format(
                sql.Identifier("staging", table.name), sql.SQL(", ").join(sql.Identifier(c) for c in table.columns))
            with cur.copy(query) as copy:
                for _, row in plain:
                    copy.write_row([_staging_text(v) for v in row])
        if hostile:
            with cur.copy("COPY staging.hostile (source_table, source_key, original) FROM STDIN") as copy:
                for key, row in hostile:
                    copy.write_row((table.name, key, Jsonb({c: encode_value(v) for c, v in zip(table.columns, row)})))
        table_keys = keys.get(table.name, set())
        if table_keys:
            with cur.copy("COPY staging.sync_keys (source_table, source_key, present, pulled) FROM STDIN") as copy:
                for key in table_keys:
                    copy.write_row((table.name, key, key in table_rows, pulled))


@dataclass
class BatchResult:
    source: str
    from_seq: int
    to_seq: int
    changes: int
    keys: int
    pulled: int
    loaded: int
    repaired: int
    rejected: int
    deleted: int
    pruned: int
    seconds: float
    null_keys: int = 0
    phases: dict = field(default_factory=dict)  # seconds of read, land, pull, apply, commit, prune


class Syncer:
    """Applies batches of one or more source files on one PostgreSQL connection that holds
    the one-writer lock for as long as it lives."""

    def __init__(self, conninfo: str, sources: list[Source], run_id: str, settings: dict,
                 following: bool = False, progress=print):
        self.conninfo, self.sources, self.run_id = conninfo, sources, run_id
        self.settings, self.following, self.progress = settings, following, progress or (lambda *_: None)
        self.pg: psycopg.Connection | None = None
        self.lock = contextlib.ExitStack()
        self.readers = {s.name: SnapshotReader(s) for s in sources}
        # pruning is opportunistic: waiting for the write lock (the app's, or the cut-over's,
        # held through its pause while it waits for this very sync) would stall the sync
        self.pruners = {s.name: Pruner(s, settings["prune_rows"], PRUNE_BUSY_TIMEOUT_MS) for s in sources}
        self.latencies: deque[float] = deque(maxlen=LATENCIES_KEPT)
        self.recent: deque[tuple[float, int]] = deque()  # (time, changes) of the last minute
        self.last_beat: dict[str, float] = {}
        self.behind: dict[str, bool] = {}  # the last heartbeat found changes to apply
        self.batches = 0

    # connection and lock
    def connect(self) -> None:
        """The one-run-at-a-time lock (mailmig.runlock, shared with the load), then the
        connection that applies; again after a server restart."""
        self.close_pg()
        self.lock.enter_context(exclusive_run(self.conninfo, "sync", self.run_id))
        conn = psycopg.connect(self.conninfo, autocommit=True, application_name=f"mailmig sync {self.run_id}"[:63])
        # the position commits with the batch and the changelog is pruned after it: the
        # commit must be durable before the prune (never asynchronous)
        conn.execute("SET synchronous_commit = on")
        # a batch's statements are short; compiling them (JIT) cost more than it saved
        conn.execute("SET jit = off")
        self.pg = conn

    def close_pg(self) -> None:
        try:
            if self.pg is not None:
                self.pg.close()
        finally:
            self.pg = None
            self.lock.close()

    def close(self) -> None:
        self.close_pg()
        for reader in self.readers.values():
            reader.close()
        for pruner in self.pruners.values():
            pruner.close()

    def rows_per_s(self) -> float:
        now = time.monotonic()
        while self.recent and now - self.recent[0][0] > 60:
            self.recent.popleft()
        if len(self.recent) < 2:
            return float(sum(n for _, n in self.recent))
        span = max(now - self.recent[0][0], 1.0)
        return sum(n for _, n in self.recent) / span

    def _beat(self, batch: Batch, applied_seq: int) -> None:
        """The heartbeat of one read: when it was, the position after it, and the oldest
        change it found unapplied (the first of the batch; none when it found nothing), so
        that lag = how old that change was when the sync looked."""
        oldest = batch.change_times[0] if batch.change_times else None
        self.pg.execute(queries.load("sync_beat"), {
            "source": batch.source.name, "run_id": self.run_id, "pid": os.getpid(), "following": self.following,
            "applied_seq": applied_seq, "source_seq": max(batch.source_seq, applied_seq),
            "oldest_unapplied_at": datetime.fromtimestamp(oldest, timezone.utc) if oldest is not None else None,
            "rows_per_s": round(self.rows_per_s(), 3), "now": datetime.fromtimestamp(batch.read_at, timezone.utc)})
        self.last_beat[batch.source.name] = time.monotonic()
        self.behind[batch.source.name] = oldest is not None

    def step(self, source: Source) -> BatchResult | None:
        """Read and apply one batch of one file; None when it had nothing to apply."""
        started = time.monotonic()
        reader = self.readers[source.name]
        position = read_position(self.pg, source)
        phases = {}
        mark = time.monotonic()

        def lap(name):
            nonlocal mark
            now = time.monotonic()
            phases[name] = round(now - mark, 4)
            mark = now

        try:
            batch = reader.read(position, self.settings["batch_rows"])  # refuses an untrusted file
            # rows a kill between an earlier commit and its prune left behind
            pruned = self.pruners[source.name].prune(position.seq)
            if not batch.changes:
                # caught up: say so at once after a batch, then at most once a second
                if self.behind.get(source.name) or time.monotonic() - self.last_beat.get(source.name, 0) >= 1.0:
                    self._beat(batch, position.seq)
                return None
            lap("read")
            faults.point("sync_batch_read")
            with self.pg.transaction():
                cur = self.pg.cursor()
                # what the sync writes came from SQLite: the reverse capture must not log it
                cur.execute(queries.load("sync_suppress_reverse_capture"))
                cur.execute(queries.load("sync_clear_landing"))
                land(cur, source, batch.rows, batch.keys, pulled=False)
                lap("land")
                self._pull(cur, reader, batch)
                cur.execute(queries.load("sync_analyze_landing"))
                lap("pull")
                faults.point("sync_batch_landed")
                row = cur.execute(queries.load("sync_apply_batch"), {
                    "run_id": self.run_id, "source": source.name, "install_id": batch.install_id,
                    "from_seq": batch.from_seq, "to_seq": batch.to_seq, "to_seq_at": batch.to_seq_at,
                    "changes": batch.changes,
                    "path": str(source.path.resolve())}).fetchone()
                self.recent.append((time.monotonic(), batch.changes))
                self._beat(batch, batch.to_seq)
                lap("apply")
                faults.point("sync_batch_applied")
            committed = time.time()
            lap("commit")
        finally:
            reader.end()
        self.latencies.extend(committed - at for at in batch.change_times)
        faults.point("sync_batch_committed")
        pruned += self.pruners[source.name].prune(batch.to_seq)
        lap("prune")
        self.batches += 1
        batch_id, keys, pulled, loaded, repaired, rejected, deleted = row
        return BatchResult(source.name, batch.from_seq, batch.to_seq, batch.changes, keys, pulled, loaded,
                           repaired, rejected, deleted, pruned, round(time.monotonic() - started, 3),
                           batch.null_keys, phases)

    def _pull(self, cur: psycopg.Cursor, reader: SnapshotReader, batch: Batch) -> None:
        """Land the keys sync_pull_keys names, read from the same snapshot, until none is new."""
        by_name = {t.name: t for t in batch.source.tables}
        for _ in range(PULL_ROUNDS):
            wanted: dict[str, list[str]] = {}
            for table_name, key in cur.execute(queries.load("sync_pull_keys")).fetchall():
                if table_name in by_name:
                    wanted.setdefault(table_name, []).append(key)
            if not wanted:
                return
            rows = {name: reader.rows_by_key(by_name[name], keys) for name, keys in wanted.items()}
            keys = {name: set(k) for name, k in wanted.items()}
            for name, k in keys.items():
                batch.pulled.setdefault(name, set()).update(k)
            land(cur, batch.source, rows, keys, pulled=True)
        raise SyncError(f"{batch.source.path}: keys kept pulling in more keys after {PULL_ROUNDS} rounds")


def percentile(values, q: float) -> float | None:
    data = sorted(values)
    if not data:
        return None
    index = min(len(data) - 1, max(0, round(q / 100 * (len(data) - 1))))
    return data[index]


@dataclass
class SyncResult:
    ok: bool
    report: dict


def run_sync(conninfo: str, emails_db: Path, auth_db: Path, runs_dir: Path, settings: dict,
             follow: bool = False, mapping_path: Path = DEFAULT_MAPPING, progress=print,
             stop_after: float | None = None) -> SyncResult:
    """Apply every captured change past the stored positions (drain), or with `follow`
    keep applying until SIGTERM/SIGINT (or `stop_after` seconds)."""
    progress = progress or (lambda *_: None)
    sources = sources_of(emails_db, auth_db, mapping_path)
    for source in sources:
        if not source.path.is_file():
            raise SyncError(f"{source.path}: no such SQLite file")
    run = new_run(runs_dir, "sync")
    report: dict = {"run_id": run.id, "follow": follow, "sources": {s.name: str(s.path.resolve()) for s in sources},
                    "batches": [], "totals": {}}
    syncer = Syncer(conninfo, sources, run.id, settings, following=follow, progress=progress)
    stop = {"now": False}
    previous = {}
    if follow:
        def on_signal(signum, frame):
            stop["now"] = True
        for signum in (signal.SIGTERM, signal.SIGINT):
            previous[signum] = signal.signal(signum, on_signal)
    started = time.monotonic()
    totals = {k: 0 for k in ("batches", "changes", "keys", "pulled", "loaded", "repaired", "rejected",
                             "deleted", "pruned", "null_keys")}
    apply_seconds = 0.0
    last_progress = started
    window = {"changes": 0, "since": started}
    try:
        syncer.connect()
        with syncer.pg.cursor() as cur:
            cur.execute(queries.load("sync_run_start"), {"run_id": run.id})
        progress(f"sync run {run.id} ({run.dir}){' following' if follow else ''}")
        errors_in_a_row = 0
        while not stop["now"]:
            applied_any = False
            try:
                for source in sources:
                    result = syncer.step(source)
                    if result is None:
                        continue
                    applied_any = True
                    apply_seconds += result.seconds
                    for key in totals:
                        totals[key] += 1 if key == "batches" else getattr(result, key, 0)
                    window["changes"] += result.changes
                    if len(report["batches"]) < 1000:
                        report["batches"].append(result.__dict__)
                    if not follow:
                        progress(f"   batch {source.label} seq {result.from_seq + 1}-{result.to_seq}: "
                                 f"{result.changes:,} changes, {result.keys:,} keys ({result.pulled} pulled in): "
                                 f"{result.loaded:,} loaded, {result.repaired:,} repaired, {result.rejected:,} "
                                 f"rejected, {result.deleted:,} deleted; committed; {result.pruned:,} pruned "
                                 f"({result.seconds:.2f} s)")
                errors_in_a_row = 0
            except psycopg.OperationalError as exc:
                # the server went away (a restart): in --follow, reconnect and go on from
                # the committed position; a one-shot sync fails and is re-run
                if not follow or errors_in_a_row >= 30:
                    raise
                errors_in_a_row += 1
                progress(f"   PostgreSQL connection lost ({str(exc).strip().splitlines()[0]}); reconnecting")
                time.sleep(min(5.0, 0.5 * errors_in_a_row))
                try:
                    syncer.connect()
                except (psycopg.OperationalError, RunLockBusy):
                    continue
                continue
            now = time.monotonic()
            if follow and now - last_progress >= settings["progress_seconds"]:
                _print_follow(syncer, sources, window, now, progress)
                last_progress = now
                window = {"changes": 0, "since": now}
            if stop_after is not None and now - started >= stop_after:
                break
            if not applied_any:
                if not follow:
                    break
                time.sleep(settings["poll_seconds"])
        if follow and syncer.pg is not None:
            _print_follow(syncer, sources, window, time.monotonic(), progress)
        if syncer.pg is not None:
            syncer.pg.execute(queries.load("sync_prune_history"), {"keep": settings["keep_history"]})
        ok = True
    except RunLockBusy:
        syncer.close()
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        shutil.rmtree(run.dir, ignore_errors=True)  # this run never started
        raise
    except BaseException as exc:
        report["error"] = str(exc) if isinstance(exc, (SyncError, psycopg.Error)) else f"{type(exc).__name__}: {exc}"
        ok = False
        _finish(conninfo, run, report, totals, started, apply_seconds, syncer, ok)
        syncer.close()
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        if isinstance(exc, psycopg.Error) and not isinstance(exc, psycopg.OperationalError):
            raise SyncError(report["error"]) from None
        raise
    _finish(conninfo, run, report, totals, started, apply_seconds, syncer, ok)
    syncer.close()
    for signum, handler in previous.items():
        signal.signal(signum, handler)
    _print_report(report, progress)
    progress(f"report: {run.dir / 'report.json'}")
    return SyncResult(ok, report)


def _print_follow(syncer: Syncer, sources, window, now, progress) -> None:
    rate = window["changes"] / max(now - window["since"], 1e-9)
    parts = []
    try:
        with syncer.pg.cursor() as cur:
            status = {r[0]: r for r in cur.execute(queries.load("sync_status")).fetchall()}
    except psycopg.Error:
        status = {}
    for source in sources:
        r = status.get(source.name)
        if r:
            parts.append(f"{source.label} seq {r[2]:,} backlog {r[11] or 0:,} lag {r[13] or 0:.2f} s")
    recent = list(syncer.latencies)[-max(window["changes"], 1):] if window["changes"] else []
    p99 = percentile(recent, 99)
    progress(f"   follow: {rate:,.1f} rows/s; " + "; ".join(parts)
             + (f"; applied within p99 {p99:.2f} s" if p99 is not None else ""))


def _finish(conninfo, run, report, totals, started, apply_seconds, syncer, ok) -> None:
    seconds = time.monotonic() - started
    lat = list(syncer.latencies)
    report["totals"] = totals
    report["seconds"] = round(seconds, 3)
    report["apply_seconds"] = round(apply_seconds, 3)
    report["changes_per_s"] = round(totals["changes"] / apply_seconds, 1) if apply_seconds > 0 else None
    report["latency_seconds"] = {"count": len(lat), "p50": percentile(lat, 50), "p99": percentile(lat, 99),
                                 "max": max(lat) if lat else None}
    report["ok"] = ok
    run.write_json("report.json", report)
    try:
        with psycopg.connect(conninfo, autocommit=True) as conn:
            conn.execute(queries.load("sync_run_finish"), {"status": "ok" if ok else "failed",
                                                           "report": Jsonb(report), "run_id": run.id})
            report["status"] = [list(r) for r in conn.execute(queries.load("sync_status")).fetchall()]
    except psycopg.Error:
        pass  # the report file is written; the database may be what failed


def _print_report(report: dict, progress) -> None:
    t = report["totals"]
    progress("sync report")
    progress(render(["batches", "changes", "keys", "pulled in", "loaded", "repaired", "rejected", "deleted",
                     "pruned", "changes/s"],
                    [[t["batches"], t["changes"], t["keys"], t["pulled"], t["loaded"], t["repaired"],
                      t["rejected"], t["deleted"], t["pruned"], report["changes_per_s"]]]))
    if t["null_keys"]:
        progress(f"   {t['null_keys']:,} changelog rows had a NULL key (a row SQLite let in without one): "
                 "not syncable, validate names them")
    lat = report["latency_seconds"]
    if lat["count"]:
        progress(f"   change to commit: p50 {lat['p50']:.3f} s, p99 {lat['p99']:.3f} s, max {lat['max']:.3f} s "
                 f"({lat['count']:,} changes)")


def drain(conninfo: str, emails_db: Path, auth_db: Path, runs_dir: Path, settings: dict,
          timeout: float = 60.0, mapping_path: Path = DEFAULT_MAPPING, progress=None) -> dict[str, int]:
    """Apply every change the files hold now (for the cut-over, during its write pause).

    The target is each file's newest changelog seq at the call. If no other sync holds the
    one-writer lock, this runs the batches itself; if a `--follow` sync holds it, it waits
    for that one's position to reach the target. Raises SyncError after `timeout` seconds.
    Returns {source: target seq}, each now applied.
    """
    sources = sources_of(emails_db, auth_db, mapping_path)
    targets = {}
    for source in sources:
        conn = connect_readonly(source.path)
        try:
            state = capture.read_state(conn, source.path, source.tables)
        finally:
            conn.close()
        if not state.installed:
            raise SyncError(f"{source.path}: change capture is {state.describe()}")
        targets[source.name] = max(state.high_water, state.last_seq or 0)
    deadline = time.monotonic() + timeout

    def behind(conn) -> list[str]:
        return [name for name, seq in targets.items()
                if not conn.execute(queries.load("sync_caught_up"), {"source": name, "seq": seq}).fetchone()[0]]

    with psycopg.connect(conninfo, autocommit=True) as conn:
        if not behind(conn):
            return targets  # a follower got there already: nothing to run or wait for
    try:
        result = run_sync(conninfo, emails_db, auth_db, runs_dir, settings, mapping_path=mapping_path,
                          progress=progress)
        if not result.ok:
            raise SyncError(result.report.get("error", "the sync failed"))
    except RunLockBusy:
        pass  # a --follow sync (or a load) holds the lock: wait for its position below
    with psycopg.connect(conninfo, autocommit=True) as conn:
        while True:
            waiting = behind(conn)
            if not waiting:
                return targets
            if time.monotonic() >= deadline:
                raise SyncError(f"drain: {', '.join(waiting)} not applied up to "
                                f"{', '.join(str(targets[n]) for n in waiting)} within {timeout} s")
            time.sleep(0.05)


# -- the load's half: where the sync starts ----------------------------------------------


def record_load_start(conninfo: str, run_id: str, snapshot_dir: Path, live_paths: dict[str, Path],
                      exact: bool, tables: list[Table] | None = None) -> dict[str, dict]:
    """After a load: per source file, record where the sync starts, from the capture state
    inside the load's snapshot copy (its install id and changelog high-water mark).
    `exact`: mail.* was empty when the load began. Returns per source what happened:
    {"capture": bool, "outcome": started | kept | impossible | no-capture, "seq", "message"}."""
    tables = tables if tables is not None else load_mapping()
    outcomes: dict[str, dict] = {}
    with psycopg.connect(conninfo, autocommit=True) as conn:
        for name, file_name in SOURCE_FILES.items():
            file_tables = capture.tables_of(tables, name)
            if not file_tables:
                continue
            snap = Path(snapshot_dir) / file_name
            reader = connect_readonly(snap)
            try:
                state = capture.read_state(reader, snap, file_tables)
                seq = max(state.high_water, state.last_seq or 0)
                anchor = (reader.execute(f"SELECT at FROM {capture.CHANGELOG} WHERE seq = ?", (seq,)).fetchone()
                          if state.installed else None)
            finally:
                reader.close()
            live = Path(live_paths[name]).resolve()
            if not state.installed:
                outcomes[name] = {
                    "capture": False, "outcome": "no-capture",
                    "message": f"{live}: change capture was {state.describe()} when the snapshot was taken: "
                               "a later sync is impossible from this load (install capture, then load again)"}
                continue
            outcome = conn.execute(queries.load("sync_start"), {
                "source": name, "install_id": state.install_id, "seq": seq,
                "seq_at": float(anchor[0]) if anchor else None, "path": str(live),
                "run_id": run_id, "exact": exact}).fetchone()[0]
            message = {
                "started": f"{live}: the sync starts after changelog seq {seq:,} (install {state.install_id})",
                "kept": f"{live}: the sync position of this capture install stays where it was (at or "
                        f"before seq {seq:,}); the changes after it are re-applied",
                "impossible": f"{live}: a later sync is impossible from this load: mail.* held rows before "
                              "it began that this snapshot may contradict, and no sync position of this "
                              "capture install covers them (load into an empty database)",
            }[outcome]
            outcomes[name] = {"capture": True, "outcome": outcome, "seq": seq, "install_id": state.install_id,
                              "message": message}
    return outcomes


# -- command line ------------------------------------------------------------------------


def _settings(cfg, args) -> dict:
    settings = dict(cfg.raw["sync"])
    if getattr(args, "batch_rows", None):
        settings["batch_rows"] = args.batch_rows
    return settings


def cmd_sync(args, cfg) -> int:
    files = cfg.source_files(args.emails_db, args.auth_db)
    emails_db, auth_db = files.emails_db, files.auth_db
    try:
        result = run_sync(cfg.conninfo(), emails_db, auth_db, cfg.runs_dir, _settings(cfg, args),
                          follow=args.follow, progress=lambda m: print(m, flush=True))
    except (SyncError, RunLockBusy) as exc:
        print(f"mailmig sync: {exc}", file=sys.stderr)
        return 1
    return 0 if result.ok else 1


def cmd_status(args, cfg) -> int:
    with psycopg.connect(cfg.conninfo(), autocommit=True) as conn:
        rows = conn.execute(queries.load("sync_status")).fetchall()
    if not rows:
        print("no sync position recorded (install capture, then `make load`)")
        return 0
    print(render(["source", "install", "position", "set by", "beat", "beat age s", "following", "backlog",
                  "lag s", "rows/s"],
                 [[r[0], r[1], r[2], r[3], r[8].strftime("%H:%M:%S") if r[8] else None,
                   round(r[9], 1) if r[9] is not None else None, r[6], r[11],
                   round(r[13], 2) if r[13] is not None else None, r[14]] for r in rows]))
    return 0


def add_commands(subparsers) -> None:
    p = subparsers.add_parser(
        "sync", help="apply the changes captured in the SQLite files to PostgreSQL (--follow: keep applying)",
        description="Reads each file's changelog (mailmig capture) past the position stored in "
                    "migration.sync_position, with the current rows of the changed keys, in one SQLite read "
                    "transaction per batch; applies each batch in one PostgreSQL transaction together with the "
                    "new position, by the load's conversion, repair and reject rules; then prunes the applied "
                    "changelog rows. Without --follow it applies everything there is and exits (0: every change "
                    "applied). With --follow it keeps applying until SIGTERM/Ctrl-C and prints the lag (age of "
                    "the oldest unapplied change) and rows/s. Killed at any point, a re-run reaches the same state.")
    p.add_argument("--emails-db", help="the live emails.db (default: sources.emails_db, EMAILS_DB)")
    p.add_argument("--auth-db", help="the live auth.db (default: sources.auth_db, AUTH_DB)")
    p.add_argument("--follow", action="store_true", help="keep applying new changes until stopped")
    p.add_argument("--batch-rows", type=int, help="changelog rows per batch (default: sync.batch_rows)")
    p.add_argument("--status", action="store_true", help="only print migration.sync_status and exit")
    p.set_defaults(func=lambda args, cfg: cmd_status(args, cfg) if args.status else cmd_sync(args, cfg))
