"""`mailmig load`: snapshot, audit, staging (pgloader or COPY), merge, account for every row.

The driver stays thin: it copies files, runs pgloader, and calls the plpgsql merge
(sql/3xxx) chunk by chunk on `merge_jobs` connections; the database does the converting,
repairing and rejecting. Every source row ends loaded, loaded after a recorded repair,
or rejected and kept whole; the run exits non-zero when that cannot be shown.
"""

from __future__ import annotations

import shutil
import sqlite3
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
from psycopg import sql

from mailmig import audit, snapshot, staging
from mailmig.mapping import DEFAULT_MAPPING, MappingError, check_against_database, load_mapping
from mailmig.runs import Run, mark_latest, new_run
from mailmig.textable import render

CHUNK_ROWS = 2000  # rows per merge transaction: small enough that a fallback is cheap


class LoadError(RuntimeError):
    """The load cannot account for every row, or a step failed; the message says which."""


@dataclass
class LoadResult:
    ok: bool
    run: Run
    report: dict = field(default_factory=dict)


class Stages:
    """Times each stage and keeps its figures for the report."""

    def __init__(self, progress):
        self.progress = progress
        self.items: list[dict] = []
        self.origin = time.monotonic()

    def run(self, name: str, fn, rows=None, nbytes=None):
        """Run one stage; stages may run at once on threads (`start` tells when each began)."""
        self.progress(f"== {name}")
        started = time.monotonic()
        result = fn()
        seconds = time.monotonic() - started
        self.record(name, seconds, rows(result) if callable(rows) else rows,
                    nbytes(result) if callable(nbytes) else nbytes, start=started - self.origin)
        return result

    def record(self, name, seconds, rows=None, nbytes=None, start=None):
        item = {"stage": name, "start": round(start, 3) if start is not None else None,
                "seconds": round(seconds, 3), "rows": rows, "bytes": nbytes,
                "rows_per_s": round(rows / seconds) if rows and seconds > 0 else None,
                "mb_per_s": round(nbytes / 1e6 / seconds, 1) if nbytes and seconds > 0 else None}
        self.items.append(item)
        self.progress(f"   {name}: {seconds:.1f} s"
                      + (f", {rows:,} rows" if rows is not None else "")
                      + (f", {nbytes / 1e6:,.1f} MB" if nbytes else ""))


class _StagingProgress(threading.Thread):
    """Prints the size of the staging tables while pgloader or COPY fills them."""

    def __init__(self, conninfo: str, tables: list[str], progress, every: float = 5.0):
        super().__init__(daemon=True)
        self.conninfo, self.tables, self.progress, self.every = conninfo, tables, progress, every
        self.stop = threading.Event()

    def run(self) -> None:
        try:
            with psycopg.connect(self.conninfo, autocommit=True) as conn:
                while not self.stop.wait(self.every):
                    parts = []
                    for t in self.tables:
                        size, = conn.execute("SELECT pg_total_relation_size(%s::regclass)",
                                             (f"staging.{t}",)).fetchone()
                        copying = conn.execute(
                            "SELECT coalesce(sum(tuples_processed), 0) FROM pg_stat_progress_copy "
                            "WHERE relid = %s::regclass", (f"staging.{t}",)).fetchone()[0]
                        parts.append(f"{t} {size / 1e6:,.0f} MB"
                                     + (f" (+{copying:,} rows in flight)" if copying else ""))
                    self.progress("   staging: " + ", ".join(parts))
        except psycopg.Error:
            return


PARTITIONED_TABLES = {"emails"}  # their merge waits for the partitions of the staged months


def _by_file(tables) -> dict[str, list]:
    by_file: dict[str, list] = {}
    for table in tables:
        by_file.setdefault(table.file_name, []).append(table)
    return by_file


def _merge_table(conninfo: str, run_id: str, table: str, jobs: int, progress) -> dict:
    """staging.<table> through migration.merge_chunk in block ranges on `jobs` connections."""
    with psycopg.connect(conninfo, autocommit=True) as conn:
        blocks, rows = conn.execute(
            sql.SQL("SELECT pg_relation_size({t}::regclass) / current_setting('block_size')::int, "
                    "(SELECT count(*) FROM {i})").format(
                t=sql.Literal(f"staging.{table}"), i=sql.Identifier("staging", table))).fetchone()
    totals = {"fast": 0, "loaded": 0, "repaired": 0, "rejected": 0, "present": 0, "fallback_chunks": 0}
    if rows == 0:
        return totals
    per_block = max(rows / max(blocks, 1), 1.0)
    step = max(1, int(CHUNK_ROWS / per_block))
    ranges = [(lo, lo + step) for lo in range(0, blocks + 1, step)]
    lock = threading.Lock()
    done = {"chunks": 0, "last": time.monotonic()}
    local = threading.local()
    connections = []

    def work(bounds):
        if not hasattr(local, "conn"):
            local.conn = psycopg.connect(conninfo, autocommit=True)
            # a larger GIN pending list is flushed less often, in bigger, cheaper batches;
            # a chunk is re-done after a crash anyway, so its commit need not wait for disk
            local.conn.execute("SET gin_pending_list_limit = '32MB'")
            local.conn.execute("SET work_mem = '64MB'")
            local.conn.execute("SET synchronous_commit = off")
            with lock:
                connections.append(local.conn)
        counts = local.conn.execute(
            "SELECT (c).fast, (c).loaded, (c).repaired, (c).rejected, (c).present, (c).fallback "
            "FROM migration.merge_chunk(%s, %s, %s, %s) c", (run_id, table, *bounds)).fetchone()
        with lock:
            for key, value in zip(("fast", "loaded", "repaired", "rejected", "present"), counts[:5]):
                totals[key] += value
            totals["fallback_chunks"] += int(counts[5])
            done["chunks"] += 1
            now = time.monotonic()
            if now - done["last"] >= 5 or done["chunks"] == len(ranges):
                done["last"] = now
                merged = totals["loaded"] + totals["rejected"] + totals["present"]
                progress(f"   merge {table}: {merged:,}/{rows:,} rows "
                         f"({done['chunks']}/{len(ranges)} chunks)")

    try:
        with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
            list(pool.map(work, ranges))
    finally:
        for c in connections:
            c.close()
    return totals


def _merge_hostile(conninfo: str, run_id: str, table: str) -> dict:
    with psycopg.connect(conninfo, autocommit=True) as conn:
        counts = conn.execute(
            "SELECT (c).loaded, (c).repaired, (c).rejected, (c).present "
            "FROM migration.merge_hostile(%s, %s) c", (run_id, table)).fetchone()
    return dict(zip(("loaded", "repaired", "rejected", "present"), counts))


def run_load(conninfo: str, emails_db: Path, auth_db: Path, runs_dir: Path,
             loader: str = "pgloader", merge_jobs: int = 2, pgloader_settings: dict | None = None,
             mapping_path: Path = DEFAULT_MAPPING, keep_work: bool = False,
             progress=print) -> LoadResult:
    progress = progress or (lambda *_: None)
    if loader == "pgloader" and not shutil.which("pgloader"):
        raise LoadError("pgloader is not installed (make system installs it; or use --loader copy)")
    tables = load_mapping(mapping_path)
    sources = {"emails.db": Path(emails_db), "auth.db": Path(auth_db)}
    run = new_run(runs_dir, "load")
    snap_dir = run.dir / "snapshot"
    work_dir = run.dir / "work"
    stages = Stages(progress)
    report: dict = {"run_id": run.id, "loader": loader, "merge_jobs": merge_jobs,
                    "sources": {k: str(v.resolve()) for k, v in sources.items()}}
    progress(f"load run {run.id} ({run.dir})")
    started = time.monotonic()

    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute("INSERT INTO migration.runs (run_id, kind) VALUES (%s, 'load')", (run.id,))
        column_map = conn.execute(
            "SELECT source_table, column_name, kind FROM migration.column_map").fetchall()
    copier = None
    try:
        check_against_database(tables, column_map)

        # 1. snapshot
        manifest, archiver = stages.run(
            "snapshot", lambda: snapshot.take_snapshot(sources, snap_dir),
            nbytes=lambda r: sum(f["size"] for f in r[0]["files"].values()))
        run.write_json("snapshot/manifest.json", manifest)
        report["snapshot"] = manifest
        # the loader's work copies are made beside the audit (the kernel copies, the
        # audit computes); the audit's hostile rows are deleted from them afterwards
        copier = ThreadPoolExecutor(max_workers=len(sources), thread_name_prefix="work-copy")
        copies = {name: copier.submit(staging.copy_work_file, snap_dir / name, work_dir / name)
                  for name in sources}

        # 2. audit (and the column check: a mapped table that differs stops here)
        def do_audit():
            results = []
            for table in tables:
                path = snap_dir / table.file_name
                label = f"{sources[table.file_name]}"
                try:
                    results.append(audit.audit_table_parallel(path, table, label, jobs=2))
                except sqlite3.DatabaseError as exc:
                    # a damaged file: let the integrity check say what is wrong, naming it
                    snapshot.integrity_check(path, f"{label} (its snapshot copy)")
                    raise LoadError(f"{label}: table {table.name} cannot be read: {exc}") from None
                progress(f"   audit {table.name}: {results[-1].rows:,} rows, "
                         f"{len(results[-1].hostile):,} hostile")
            return results

        audits = stages.run("audit", do_audit, rows=lambda r: sum(a.rows for a in r))
        unmapped = {name: audit.unmapped_tables(snap_dir / name, [t.name for t in tables if t.file_name == name])
                    for name in sources}
        report["audit"] = [a.as_report() for a in audits]
        report["unmapped_tables"] = unmapped
        _print_audit(audits, unmapped, progress)

        # 3. staging: hostile rows whole, the rest through pgloader (or COPY), then counted
        by_name = {a.table: a for a in audits}

        def do_staging():
            staging.truncate_staging(conninfo, tables)
            for table in tables:
                staging.store_hostile(conninfo, table, by_name[table.name].hostile)
            jobs = []
            for name, file_tables in _by_file(tables).items():
                copies[name].result()
                staging.delete_hostile(work_dir / name,
                                       {t.name: [k for k, _ in by_name[t.name].hostile] for t in file_tables},
                                       {t.name: t.key for t in file_tables})
                jobs.append([(t, work_dir / name, t.name) for t in file_tables])
            watcher = _StagingProgress(conninfo, [t.name for t in tables], progress)
            watcher.start()
            check_result = {}

            def check():  # the integrity check runs beside the load of staging
                snapshot.lower_priority()
                try:
                    check_result["seconds"] = snapshot.check_snapshot(
                        snap_dir, {name: f"{source} (its snapshot copy)" for name, source in sources.items()})
                except Exception as exc:  # reported below, naming the file
                    check_result["error"] = exc

            checker = threading.Thread(target=check, daemon=True)
            checker.start()
            try:
                def one_job(job):
                    done = []
                    for table, work, label in job:
                        if loader == "pgloader":
                            done.append(staging.run_pgloader(work, table, conninfo, pgloader_settings or {},
                                                             run.dir / "pgloader", progress, label))
                        else:
                            done.append(staging.copy_plain_rows(work, table, conninfo, progress))
                    return done

                with ThreadPoolExecutor(max_workers=len(jobs)) as pool:
                    loads = [load for done in pool.map(one_job, jobs) for load in done]
            finally:
                watcher.stop.set()
            checker.join()
            if "error" in check_result:
                raise LoadError(str(check_result["error"]))
            return loads, check_result["seconds"]

        loads, check_seconds = stages.run(
            f"staging ({loader})", do_staging,
            rows=lambda r: sum(by_name[t.name].rows for t in tables),
            nbytes=lambda r: sum(f["size"] for f in manifest["files"].values()))
        report["staging"] = {"loads": loads, "integrity_check_seconds": check_seconds, "tables": {}}
        shortfalls = []
        for table in tables:
            expected = by_name[table.name].rows - len(by_name[table.name].hostile)
            got = staging.staged_count(conninfo, table)
            report["staging"]["tables"][table.name] = {
                "expected_rows": expected, "staged_rows": got, "hostile_rows": len(by_name[table.name].hostile)}
            snap_rows = manifest["files"][table.file_name]["tables"].get(table.name)
            if got != expected or snap_rows != by_name[table.name].rows:
                codes = [f"{l.get('file', l['table'])} exited {l.get('exit_code')}"
                         for l in loads if l["table"] == table.name and loader == "pgloader"]
                shortfalls.append(f"staging.{table.name}: {got:,} rows loaded by {loader}, "
                                  f"{expected:,} expected (snapshot {snap_rows:,} rows, "
                                  f"{len(by_name[table.name].hostile):,} stored whole beside it)"
                                  + (f"; {', '.join(codes)}" if codes else ""))
        if shortfalls:
            raise LoadError("staging is short, whatever the loader's exit code said: "
                            + "; ".join(shortfalls) + f" (logs in {run.dir / 'pgloader'})")
        progress("   staging holds every snapshot row: " + ", ".join(
            f"{t.name} {by_name[t.name].rows:,}" for t in tables))

        # 4. merge. The tables without partitions merge beside the making of the
        # partitions (one connection scanning staging); the partitioned ones after it.
        def do_partitions():
            with psycopg.connect(conninfo, autocommit=True) as conn:
                return [r[0] for r in conn.execute(
                    "SELECT mail.ensure_partitions_for_months(migration.staged_email_months())")]

        merges = {}

        def merge(table):
            def do_merge():
                result = _merge_table(conninfo, run.id, table.name, merge_jobs, progress)
                hostile = _merge_hostile(conninfo, run.id, table.name)
                for key, value in hostile.items():
                    result[key] = result.get(key, 0) + value
                return result

            merges[table.name] = stages.run(
                f"merge {table.name}", do_merge, rows=by_name[table.name].rows,
                nbytes=manifest["files"][table.file_name]["size"] if table.name in PARTITIONED_TABLES else None)

        def merge_unpartitioned():  # in mapping order: accounts before the sessions that refer to them
            for table in tables:
                if table.name not in PARTITIONED_TABLES:
                    merge(table)

        with ThreadPoolExecutor(max_workers=2) as pool:
            made = pool.submit(stages.run, "partitions", do_partitions)
            merged = pool.submit(merge_unpartitioned)
            report["partitions_created"] = made.result()
            merged.result()
        for table in tables:
            if table.name in PARTITIONED_TABLES:
                merge(table)
        report["merge"] = {t.name: merges[t.name] for t in tables}

        # 5. sequences, statistics and the accounting of every row, on three connections:
        # ANALYZE is single-threaded, the accounting reads what it does not write
        def _on_own_connection(statements):
            """Run (query, params, tag) in order; returns {tag: first row} of the tagged ones."""
            rows = {}
            with psycopg.connect(conninfo, autocommit=True) as conn:
                for query, params, tag in statements:
                    cur = conn.execute(query, params)
                    if tag:
                        rows[tag] = cur.fetchone()
            return rows

        def do_finish():
            def set_sequence(seq, table):
                return ("SELECT migration.sequence_past_max(%s, %s)", (seq, table), None)

            def account_for(table):
                return ("SELECT * FROM migration.account_for(%s)", (table.name,), table.name)

            work = [
                [set_sequence("mail.emails_id_seq", "mail.emails"), ("ANALYZE mail.emails", None, None)],
                [set_sequence("mail.accounts_id_seq", "mail.accounts"),
                 ("ANALYZE mail.accounts, mail.sessions", None, None)]
                + [account_for(t) for t in tables if t.name not in PARTITIONED_TABLES],
                [account_for(t) for t in tables if t.name in PARTITIONED_TABLES],
            ]
            counted = {}
            with ThreadPoolExecutor(max_workers=len(work)) as pool:
                for rows in pool.map(_on_own_connection, work):
                    counted.update(rows)
            return counted

        counted = stages.run("sequences + analyze + accounting", do_finish)
        accounting = {}
        for table in tables:
            staged, loaded, repaired, rejected, unaccounted, doubly = counted[table.name]
            source = manifest["files"][table.file_name]["tables"][table.name]
            accounting[table.name] = {
                "source": source, "loaded": loaded, "repaired": repaired,
                "rejected": rejected, "unaccounted": unaccounted, "loaded_and_rejected": doubly,
                "ok": source == staged == loaded + rejected and unaccounted == 0 and doubly == 0}
        report["tables"] = accounting

        report["migrated_seconds"] = round(time.monotonic() - started, 3)
        progress(f"   migrated (snapshot to merged, indexed, analyzed, accounted for) in "
                 f"{report['migrated_seconds']:.1f} s")

        # 7. the archive of the snapshot. The copies are complete, checked and read-only
        # since stage 1; hashing and gzip are CPU the load needs, so they come last.
        def do_archive():
            archiver.start()
            archiver.join()
            if archiver.error:
                raise LoadError(f"snapshot archive failed: {archiver.error}")
            run.write_json("snapshot/manifest.json", manifest)  # now with each copy's sha256

        stages.run("snapshot sha256 + tar.gz", do_archive,
                   nbytes=lambda _: (snap_dir / "snapshot.tar.gz").stat().st_size)
        report["ok"] = all(t["ok"] for t in accounting.values())
    except (LoadError, snapshot.SnapshotError, MappingError, staging.StagingError) as exc:
        report["ok"] = False
        report["error"] = str(exc)
        _finish(conninfo, run, report, stages, started)
        raise LoadError(str(exc)) from None
    except BaseException as exc:
        report["ok"] = False
        report["error"] = f"{type(exc).__name__}: {exc}"
        _finish(conninfo, run, report, stages, started)
        raise
    finally:
        if copier is not None:
            copier.shutdown(wait=True, cancel_futures=True)
    if not keep_work:
        shutil.rmtree(work_dir, ignore_errors=True)
    _finish(conninfo, run, report, stages, started)
    if report["ok"]:
        mark_latest(runs_dir, run)
    _print_report(report, progress)
    progress(f"report: {run.dir / 'report.json'}")
    return LoadResult(report["ok"], run, report)


def _finish(conninfo, run, report, stages, started):
    report["stages"] = stages.items
    report["total_seconds"] = round(time.monotonic() - started, 3)
    run.write_json("report.json", report)
    try:
        with psycopg.connect(conninfo, autocommit=True) as conn:
            conn.execute(
                "UPDATE migration.runs SET finished_at = now(), status = %s, report = %s WHERE run_id = %s",
                ("ok" if report.get("ok") else "failed",
                 psycopg.types.json.Jsonb(report), run.id))
    except psycopg.Error:
        pass  # the report file is written; the database may be what failed


def _print_audit(audits, unmapped, progress):
    rows = []
    for a in audits:
        for column, issues in sorted(a.issues.items()):
            for issue, n in sorted(issues.items()):
                rows.append([a.table, column, issue, n])
    progress("audit: values PostgreSQL will not take as they are (per table and column)")
    if rows:
        progress(render(["table", "column", "issue", "rows"], rows))
    else:
        progress("   none")
    progress("   rows stored whole beside pgloader (hostile): " + ", ".join(
        f"{a.table} {len(a.hostile):,}" for a in audits))
    for name, tables in unmapped.items():
        if tables:
            progress(f"   {name}: tables not in the mapping, left alone: {', '.join(tables)}")


def _print_report(report, progress):
    rows = [[name, t["source"], t["loaded"], t["repaired"], t["rejected"], t["unaccounted"], t["ok"]]
            for name, t in report["tables"].items()]
    progress("load report")
    progress(render(["table", "source", "loaded", "repaired", "rejected", "unaccounted", "ok"], rows))
    progress(render(["stage", "from s", "seconds", "rows", "rows/s", "MB/s"],
                    [[s["stage"], s.get("start"), s["seconds"], s["rows"], s["rows_per_s"], s["mb_per_s"]]
                     for s in sorted(report["stages"], key=lambda s: s.get("start") or 0)]))
    progress("   (stages that overlap ran at once: partitions beside the merge of the tables "
             "without partitions)")
    progress(f"total {report['total_seconds']:.1f} s; "
             + ("every source row is loaded or rejected" if report["ok"]
                else "NOT every source row is accounted for"))


def cmd_load(args, cfg) -> int:
    sources = cfg.sources
    emails_db = Path(args.emails_db) if args.emails_db else sources.emails_db
    auth_db = Path(args.auth_db) if args.auth_db else sources.auth_db
    load_cfg = cfg.raw["load"]
    settings = {k[len("pgloader_"):]: v for k, v in load_cfg.items() if k.startswith("pgloader_")}
    result = run_load(cfg.conninfo(), emails_db, auth_db, cfg.runs_dir,
                      loader=args.loader or load_cfg["loader"],
                      merge_jobs=args.merge_jobs or load_cfg["merge_jobs"],
                      pgloader_settings=settings, keep_work=args.keep_work)
    return 0 if result.ok else 1


def add_commands(subparsers) -> None:
    p = subparsers.add_parser(
        "load", help="migrate emails.db and auth.db into PostgreSQL (snapshot, audit, staging, merge)",
        description="Snapshot the SQLite files (online backup API, integrity check, sha256, tar.gz), "
                    "audit what PostgreSQL will not take as it is, load staging with pgloader (rows it "
                    "would lose are stored whole beside it) or COPY, merge into mail.* with the "
                    "documented conversions and repairs, and account for every row: exit 1 unless "
                    "source = loaded + rejected for every table. Re-running adds nothing. "
                    "The report is printed and written to runs/<run id>/report.json.")
    p.add_argument("--emails-db", help="the legacy emails.db (default: sources.emails_db, EMAILS_DB)")
    p.add_argument("--auth-db", help="the legacy auth.db (default: sources.auth_db, AUTH_DB)")
    p.add_argument("--loader", choices=["pgloader", "copy"], help="what fills staging (default: load.loader)")
    p.add_argument("--merge-jobs", type=int, help="connections merging at once (default: load.merge_jobs)")
    p.add_argument("--keep-work", action="store_true", help="keep the work copies pgloader read")
    p.set_defaults(func=cmd_load)
