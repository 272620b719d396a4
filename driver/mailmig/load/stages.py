"""The stages of a load, in order: snapshot, audit, staging, merge (with the partitions),
finish (sequences, ANALYZE, the accounting of every row), archive.

Each stage is one function taking the `Load` it belongs to: it times itself on the
stage clock, prints its progress, writes its section of the report and returns what the
next stages need. Some stages keep work running beside them where a core would idle
(said at each).
"""

from __future__ import annotations

import sqlite3
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import psycopg

from mailmig import audit, queries, snapshot, staging
from mailmig.load.clock import Stages
from mailmig.load.merge import CHUNK_ROWS, PARTITIONED_TABLES, merge_hostile, merge_table
from mailmig.load.report import print_audit
from mailmig.load.watch import StagingProgress
from mailmig.mapping import SOURCE_FILES, Table
from mailmig.runs import Run


class LoadError(RuntimeError):
    """The load cannot account for every row, or a step failed; the message says which."""


@dataclass
class Load:
    """What the stages of one load share."""

    conninfo: str
    run: Run
    tables: list[Table]
    sources: dict[str, Path]  # file name (emails.db, auth.db) -> the source file
    loader: str
    merge_jobs: int
    pgloader_settings: dict
    progress: object
    stages: Stages
    report: dict = field(default_factory=dict)
    merge_chunk_rows: int = CHUNK_ROWS

    @property
    def snap_dir(self) -> Path:
        return self.run.dir / "snapshot"

    @property
    def work_dir(self) -> Path:
        return self.run.dir / "work"

    def by_file(self) -> dict[str, list[Table]]:
        by_file: dict[str, list[Table]] = {}
        for table in self.tables:
            by_file.setdefault(table.file_name, []).append(table)
        return by_file


# 1. snapshot ---------------------------------------------------------------------------
def take_snapshot(load: Load) -> tuple[dict, snapshot.Archiver]:
    """A consistent copy of each source file; the archiver of the copies, started last."""
    manifest, archiver = load.stages.run(
        "snapshot", lambda: snapshot.take_snapshot(load.sources, load.snap_dir),
        nbytes=lambda r: sum(f["size"] for f in r[0]["files"].values()))
    load.run.write_json("snapshot/manifest.json", manifest)
    load.report["snapshot"] = manifest
    return manifest, archiver


def start_work_copies(load: Load) -> tuple[ThreadPoolExecutor, dict[str, Future]]:
    """The loader's work copies, made beside the audit (the kernel copies, the audit
    computes); the audit's hostile rows are deleted from them afterwards."""
    copier = ThreadPoolExecutor(max_workers=len(load.sources), thread_name_prefix="work-copy")
    copies = {name: copier.submit(staging.copy_work_file, load.snap_dir / name, load.work_dir / name)
              for name in load.sources}
    return copier, copies


# 2. audit ------------------------------------------------------------------------------
def audit_snapshot(load: Load) -> dict[str, audit.TableAudit]:
    """What PostgreSQL will not take as it is, per table and column (and the column check:
    a mapped table that differs stops here)."""
    def do_audit():
        results = []
        for table in load.tables:
            path = load.snap_dir / table.file_name
            label = f"{load.sources[table.file_name]}"
            try:
                results.append(audit.audit_table_parallel(path, table, label, jobs=2))
            except sqlite3.DatabaseError as exc:
                # a damaged file: let the integrity check say what is wrong, naming it
                snapshot.integrity_check(path, f"{label} (its snapshot copy)")
                raise LoadError(f"{label}: table {table.name} cannot be read: {exc}") from None
            load.progress(f"   audit {table.name}: {results[-1].rows:,} rows, "
                          f"{len(results[-1].hostile):,} hostile")
        return results

    audits = load.stages.run("audit", do_audit, rows=lambda r: sum(a.rows for a in r))
    unmapped = {name: audit.unmapped_tables(load.snap_dir / name,
                                            [t.name for t in load.tables if t.file_name == name])
                for name in load.sources}
    load.report["audit"] = [a.as_report() for a in audits]
    load.report["unmapped_tables"] = unmapped
    print_audit(audits, unmapped, load.progress)
    return {a.table: a for a in audits}


# 3. staging ----------------------------------------------------------------------------
def fill_staging(load: Load, audits: dict[str, audit.TableAudit], copies: dict[str, Future],
                 manifest: dict) -> None:
    """Hostile rows stored whole, the rest through pgloader (or COPY) from the work copies,
    with the snapshot's integrity check beside it; then every table counted."""
    def do_staging():
        for table, columns, remade in staging.prepare_staging(load.conninfo):
            if remade:
                load.progress(f"   staging.{table} made from the mapping ({columns} columns)")
        for table in load.tables:
            staging.store_hostile(load.conninfo, table, audits[table.name].hostile)
        jobs = []
        for name, file_tables in load.by_file().items():
            copies[name].result()
            staging.delete_hostile(load.work_dir / name,
                                   {t.name: audits[t.name].hostile_rowids for t in file_tables})
            jobs.append([(t, load.work_dir / name, t.name) for t in file_tables])
        expected = sum(audits[t.name].rows - len(audits[t.name].hostile) for t in load.tables)
        watcher = StagingProgress(load.conninfo, [t.name for t in load.tables], load.progress,
                                  expected if load.loader == "copy" else None)
        watcher.start()
        checker = _IntegrityCheck(load)
        checker.start()
        try:
            with ThreadPoolExecutor(max_workers=len(jobs)) as pool:
                loads = [one for done in pool.map(lambda job: _load_file(load, job), jobs) for one in done]
        finally:
            watcher.stop.set()
            watcher.join()
        checker.join()
        if checker.error is not None:
            raise LoadError(str(checker.error))
        return loads, checker.seconds

    loads, check_seconds = load.stages.run(
        f"staging ({load.loader})", do_staging,
        rows=lambda r: sum(audits[t.name].rows for t in load.tables),
        nbytes=lambda r: sum(f["size"] for f in manifest["files"].values()))
    load.report["staging"] = {"loads": loads, "integrity_check_seconds": check_seconds, "tables": {}}
    _check_staged_counts(load, audits, loads, manifest)


def _load_file(load: Load, job: list) -> list[dict]:
    """The tables of one work file, one after the other (one loader process per file)."""
    done = []
    for table, work, label in job:
        if load.loader == "pgloader":
            done.append(staging.run_pgloader(work, table, load.conninfo, load.pgloader_settings,
                                             load.run.dir / "pgloader", load.progress, label))
        else:
            done.append(staging.copy_plain_rows(work, table, load.conninfo, load.progress))
    return done


class _IntegrityCheck(threading.Thread):
    """The snapshot's integrity check, run beside the load of staging at a lower priority."""

    def __init__(self, load: Load):
        super().__init__(daemon=True)
        self.load = load
        self.seconds = None
        self.error: Exception | None = None

    def run(self) -> None:
        snapshot.lower_priority()
        try:
            self.seconds = snapshot.check_snapshot(
                self.load.snap_dir,
                {name: f"{source} (its snapshot copy)" for name, source in self.load.sources.items()})
        except Exception as exc:  # reported by the stage, naming the file
            self.error = exc


def _check_staged_counts(load: Load, audits, loads: list[dict], manifest: dict) -> None:
    """Staging must hold every snapshot row, whatever the loader's exit code said."""
    shortfalls = []
    for table in load.tables:
        audited = audits[table.name]
        expected = audited.rows - len(audited.hostile)
        got = staging.staged_count(load.conninfo, table)
        load.report["staging"]["tables"][table.name] = {
            "expected_rows": expected, "staged_rows": got, "hostile_rows": len(audited.hostile)}
        snap_rows = manifest["files"][table.file_name]["tables"].get(table.name)
        if got != expected or snap_rows != audited.rows:
            codes = [f"{one.get('file', one['table'])} exited {one.get('exit_code')}"
                     for one in loads if one["table"] == table.name and load.loader == "pgloader"]
            shortfalls.append(f"staging.{table.name}: {got:,} rows loaded by {load.loader}, "
                              f"{expected:,} expected (snapshot {snap_rows:,} rows, "
                              f"{len(audited.hostile):,} stored whole beside it)"
                              + (f"; {', '.join(codes)}" if codes else ""))
    if shortfalls:
        raise LoadError("staging is short, whatever the loader's exit code said: "
                        + "; ".join(shortfalls) + f" (logs in {load.run.dir / 'pgloader'})")
    load.progress("   staging holds every snapshot row: " + ", ".join(
        f"{t.name} {audits[t.name].rows:,}" for t in load.tables))


# 4. partitions and merge ---------------------------------------------------------------
def make_partitions(load: Load) -> list:
    """The partitions of every month the staged emails fall in."""
    with psycopg.connect(load.conninfo, autocommit=True) as conn:
        return [r[0] for r in conn.execute(queries.load("load_partitions"))]


def merge_one_table(load: Load, table: Table, audits, manifest: dict) -> dict:
    """staging.<table> into mail.<table>: the block ranges, then the hostile rows."""
    def do_merge():
        result = merge_table(load.conninfo, load.run.id, table.name, load.merge_jobs, load.progress,
                             load.merge_chunk_rows)
        for key, value in merge_hostile(load.conninfo, load.run.id, table.name, load.progress).items():
            result[key] = result.get(key, 0) + value
        return result

    return load.stages.run(
        f"merge {table.name}", do_merge, rows=audits[table.name].rows,
        nbytes=manifest["files"][table.file_name]["size"] if table.name in PARTITIONED_TABLES else None)


def merge_into_mail(load: Load, audits, manifest: dict) -> None:
    """The tables without partitions merge beside the making of the partitions (one
    connection scanning staging); the partitioned ones after it. In mapping order:
    accounts before the sessions that refer to them."""
    merges = {}

    def merge_unpartitioned():
        for table in load.tables:
            if table.name not in PARTITIONED_TABLES:
                merges[table.name] = merge_one_table(load, table, audits, manifest)

    with ThreadPoolExecutor(max_workers=2) as pool:
        made = pool.submit(load.stages.run, "partitions", lambda: make_partitions(load))
        merged = pool.submit(merge_unpartitioned)
        load.report["partitions_created"] = made.result()
        merged.result()
    for table in load.tables:
        if table.name in PARTITIONED_TABLES:
            merges[table.name] = merge_one_table(load, table, audits, manifest)
    load.report["merge"] = {t.name: merges[t.name] for t in load.tables}


# 5. sequences, statistics, the accounting of every row ---------------------------------
def _on_own_connection(conninfo: str, statements: list) -> dict:
    """Run (named query, params, tag) in order; returns {tag: first row} of the tagged ones."""
    rows = {}
    with psycopg.connect(conninfo, autocommit=True) as conn:
        for query, params, tag in statements:
            cur = conn.execute(queries.load(query), params)
            if tag:
                rows[tag] = cur.fetchone()
    return rows


def finish_and_account(load: Load, manifest: dict) -> dict:
    """Sequences past the largest ids, ANALYZE, and where every staged row ended, on three
    connections: ANALYZE is single-threaded, the accounting reads what it does not write.
    Returns the per-table accounting (report["tables"])."""
    def set_sequence(seq, table):
        return ("sequence_past_max", (seq, table), None)

    def account_for(table):
        return ("account_for", (table.name,), table.name)

    def do_finish():
        work = [
            [set_sequence("mail.emails_id_seq", "mail.emails"), ("analyze_emails", None, None)],
            [set_sequence("mail.accounts_id_seq", "mail.accounts"), ("analyze_accounts_sessions", None, None)]
            + [account_for(t) for t in load.tables if t.name not in PARTITIONED_TABLES],
            [account_for(t) for t in load.tables if t.name in PARTITIONED_TABLES],
        ]
        counted = {}
        with ThreadPoolExecutor(max_workers=len(work)) as pool:
            for rows in pool.map(lambda statements: _on_own_connection(load.conninfo, statements), work):
                counted.update(rows)
        return counted

    counted = load.stages.run("sequences + analyze + accounting", do_finish)
    accounting = {}
    for table in load.tables:
        staged, loaded, repaired, rejected, unaccounted, doubly = counted[table.name]
        source = manifest["files"][table.file_name]["tables"][table.name]
        accounting[table.name] = {
            "source": source, "loaded": loaded, "repaired": repaired,
            "rejected": rejected, "unaccounted": unaccounted, "loaded_and_rejected": doubly,
            "ok": source == staged == loaded + rejected and unaccounted == 0 and doubly == 0}
    load.report["tables"] = accounting
    return accounting


# 6. the archive of the snapshot --------------------------------------------------------
def archive_snapshot(load: Load, archiver: snapshot.Archiver, manifest: dict) -> None:
    """sha256 and tar.gz of the snapshot. The copies are complete, checked and read-only
    since the snapshot stage; hashing and gzip are CPU the load needs, so they come last."""
    def do_archive():
        archiver.start()
        archiver.join()
        if archiver.error:
            raise LoadError(f"snapshot archive failed: {archiver.error}")
        load.run.write_json("snapshot/manifest.json", manifest)  # now with each copy's sha256

    load.stages.run("snapshot sha256 + tar.gz", do_archive,
                    nbytes=lambda _: (load.snap_dir / "snapshot.tar.gz").stat().st_size)


# 7. where the live sync starts ------------------------------------------------------------
def mail_is_empty(load: Load) -> bool:
    """Before anything is merged: does mail.* hold nothing (then, once merged, it is exactly
    the snapshot's state, and a sync can start at the snapshot's changelog position)?"""
    with psycopg.connect(load.conninfo, autocommit=True) as conn:
        return conn.execute(queries.load("mail_is_empty")).fetchone()[0]


def record_sync_start(load: Load, exact: bool) -> dict:
    """With change capture installed in a file, its changelog position inside the snapshot
    is where the sync of that file starts (migration.sync_start): a change made during the
    load is then neither lost nor applied twice. Without capture, say that a later sync is
    impossible from this run."""
    from mailmig import sync

    live = {source: load.sources[file_name] for source, file_name in SOURCE_FILES.items()}
    outcomes = load.stages.run("sync start", lambda: sync.record_load_start(
        load.conninfo, load.run.id, load.snap_dir, live, exact, load.tables))
    for outcome in outcomes.values():
        load.progress(f"   {outcome['message']}")
    load.report["sync_start"] = outcomes
    return outcomes
