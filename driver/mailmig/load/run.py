"""One load: the stages of mailmig.load.stages in order, the report whatever happens."""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

import psycopg

from mailmig import queries, snapshot, staging
from mailmig.load import stages as stage
from mailmig.load.clock import Stages
from mailmig.load.merge import CHUNK_ROWS, MergeFault
from mailmig.load.report import print_report, write_report
from mailmig.load.stages import Load, LoadError
from mailmig.mapping import DEFAULT_MAPPING, MappingError, check_against_database, load_mapping
from mailmig.runlock import RunLockBusy, exclusive_run
from mailmig.runs import Run, mark_latest, new_run


@dataclass
class LoadResult:
    ok: bool
    run: Run
    report: dict = field(default_factory=dict)


def run_load(conninfo: str, emails_db: Path, auth_db: Path, runs_dir: Path,
             loader: str = "pgloader", merge_jobs: int = 2, pgloader_settings: dict | None = None,
             mapping_path: Path = DEFAULT_MAPPING, keep_work: bool = False,
             progress=print, merge_chunk_rows: int = CHUNK_ROWS) -> LoadResult:
    progress = progress or (lambda *_: None)
    if loader == "pgloader" and not shutil.which("pgloader"):
        raise LoadError("pgloader is not installed (make system installs it; or use --loader copy)")
    tables = load_mapping(mapping_path)
    sources = {"emails.db": Path(emails_db), "auth.db": Path(auth_db)}
    run = new_run(runs_dir, "load")
    try:
        # one load (or sync) at a time: a second one would truncate staging under this one
        with exclusive_run(conninfo, "load", run.id):
            return _run_load(conninfo, run, tables, sources, runs_dir, loader, merge_jobs, pgloader_settings,
                             keep_work, progress, merge_chunk_rows)
    except RunLockBusy as busy:
        shutil.rmtree(run.dir, ignore_errors=True)  # nothing was done under this run id
        raise LoadError(str(busy)) from None


def _run_load(conninfo, run, tables, sources, runs_dir, loader, merge_jobs, pgloader_settings, keep_work,
              progress, merge_chunk_rows) -> LoadResult:
    load = Load(conninfo, run, tables, sources, loader, merge_jobs,
                pgloader_settings or {}, progress, Stages(progress), merge_chunk_rows=merge_chunk_rows)
    load.report.update({"run_id": run.id, "loader": loader, "merge_jobs": merge_jobs,
                        "merge_chunk_rows": merge_chunk_rows,
                        "sources": {k: str(v.resolve()) for k, v in sources.items()}})
    progress(f"load run {run.id} ({run.dir})")
    started = time.monotonic()

    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute(queries.load("load_run_start"), (run.id,))
        column_map = conn.execute(queries.load("column_map_rows")).fetchall()
    copier = None
    report = load.report
    try:
        check_against_database(load.tables, column_map)
        exact = stage.mail_is_empty(load)  # before anything is merged (the sync's start)
        manifest, archiver = stage.take_snapshot(load)
        copier, copies = stage.start_work_copies(load)
        audits = stage.audit_snapshot(load)
        stage.fill_staging(load, audits, copies, manifest)
        stage.merge_into_mail(load, audits, manifest)
        accounting = stage.finish_and_account(load, manifest)
        if all(t["ok"] for t in accounting.values()):
            stage.record_sync_start(load, exact)
        report["migrated_seconds"] = round(time.monotonic() - started, 3)
        progress(f"   migrated (snapshot to merged, indexed, analyzed, accounted for) in "
                 f"{report['migrated_seconds']:.1f} s")
        stage.archive_snapshot(load, archiver, manifest)
        report["ok"] = all(t["ok"] for t in accounting.values())
    except (LoadError, snapshot.SnapshotError, MappingError, staging.StagingError, MergeFault) as exc:
        report["ok"] = False
        report["error"] = str(exc)
        write_report(conninfo, run, report, load.stages, started)
        raise LoadError(str(exc)) from None
    except BaseException as exc:
        report["ok"] = False
        report["error"] = f"{type(exc).__name__}: {exc}"
        write_report(conninfo, run, report, load.stages, started)
        raise
    finally:
        if copier is not None:
            copier.shutdown(wait=True, cancel_futures=True)
    if not keep_work:
        shutil.rmtree(load.work_dir, ignore_errors=True)
    write_report(conninfo, run, report, load.stages, started)
    if report["ok"]:
        mark_latest(runs_dir, run)
    print_report(report, progress)
    progress(f"report: {run.dir / 'report.json'}")
    return LoadResult(report["ok"], run, report)
