"""`mailmig bench`: SQLite against PostgreSQL through mailmig.store, side by side, in one run."""

from __future__ import annotations

import json
import os
import platform
import sqlite3
import sys
import time
from dataclasses import asdict, replace
from pathlib import Path

import psycopg

from mailmig.bench import plots, report, verdict, workloads
from mailmig.bench.datasets import (
    drop_working_copy,
    ensure_dataset,
    retention_now,
    working_copy,
)
from mailmig.bench.mail import templates
from mailmig.bench.sysio import ServerProcesses
from mailmig.bench.workloads import Bench, Plan
from mailmig.bench.writers import WriterSpec
from mailmig.runs import mark_latest, new_run
from mailmig.store import PostgresBackend, SQLiteBackend, pool_settings

SEED_RATE_PER_HOUR = 1000  # the seed plan: "1000+ emails an hour"

PLANS = {
    # a few minutes: the shape of every figure, not the figures that count
    "small": Plan(scale="small", emails=5_000, accounts=4_000, big_inbox=2_000,
                  search_volumes=[(20_000, 16_000, 2_000)], single_writes=500, warmup=5, inbox_reads=100,
                  search_reads=30, search_budget_s=10, writer_counts=[1, 10, 100, 200], writer_seconds=6,
                  writer_processes=4, paced_writers=10, seed_rate_per_hour=SEED_RATE_PER_HOUR, rate_multiplier=100,
                  baseline_s=2, tail_s=2, long_read_s=4),
    # the figures that count (the lead runs it on a quiet machine)
    "seed": Plan(scale="seed", emails=261_000, accounts=250_000, big_inbox=20_000,
                 search_volumes=[(1_000_000, 960_000, 20_000)], single_writes=3_000, warmup=20, inbox_reads=300,
                 search_reads=100, search_budget_s=60, writer_counts=[1, 10, 100, 200], writer_seconds=30,
                 writer_processes=4, paced_writers=10, seed_rate_per_hour=SEED_RATE_PER_HOUR, rate_multiplier=100,
                 baseline_s=3, tail_s=3, long_read_s=15),
}
QUICK = dict(search_volumes=[], single_writes=150, warmup=3, inbox_reads=30, search_reads=10, search_budget_s=3,
             writer_seconds=2.5, baseline_s=1, tail_s=1, long_read_s=1.5)


def plan_for(scale: str, quick: bool = False, **overrides) -> Plan:
    plan = PLANS[scale]
    if quick:
        plan = replace(plan, **QUICK)
    return replace(plan, **overrides) if overrides else plan


def machine(conninfo: str) -> dict:
    model = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
        mem = int(next(line for line in Path("/proc/meminfo").read_text().splitlines()
                       if line.startswith("MemTotal")).split()[1]) / 1024 / 1024
    except (OSError, StopIteration):
        mem = 0
    with psycopg.connect(conninfo, autocommit=True) as conn:
        pg = conn.execute("SHOW server_version").fetchone()[0]
        settings = dict(conn.execute(
            "SELECT name, setting || coalesce(unit, '') FROM pg_settings WHERE name = ANY(%s)",
            (["shared_buffers", "max_connections", "synchronous_commit", "fsync", "wal_level", "max_wal_size",
              "effective_cache_size", "maintenance_work_mem", "checkpoint_completion_target", "wal_buffers"],)))
    os_name = platform.platform()
    try:
        os_name = next(line.split("=", 1)[1].strip('"') for line in Path("/etc/os-release").read_text().splitlines()
                       if line.startswith("PRETTY_NAME="))
    except (OSError, StopIteration):
        pass
    return {"cpus": os.cpu_count(), "cpu_model": model, "memory_gib": round(mem, 1), "os": os_name,
            "kernel": platform.release(), "postgres": pg, "postgres_settings": settings,
            "sqlite": sqlite3.sqlite_version, "python": platform.python_version(),
            "load_average_at_start": list(os.getloadavg())}


def run_bench(cfg, plan: Plan, progress=print, keep_work: bool = False, command: str = "mailmig bench",
              data_dir: Path | None = None) -> dict:
    """Every workload on both stores; returns the report (also written under runs/)."""
    started = time.monotonic()
    server = ServerProcesses(None)
    if cfg.is_local:
        cluster = cfg.cluster()
        cluster.start()
        server = ServerProcesses(cluster.pid())
    run = new_run(cfg.runs_dir, "bench")
    progress(f"bench run {run.id} ({run.dir}), SCALE={plan.scale}")
    base = Path(data_dir) if data_dir else cfg.root / "data" / "bench"
    phases: dict[str, float] = {}

    def phase(name):
        phases[name] = time.monotonic()
        progress(f"== {name} ({time.monotonic() - started:.0f} s into the run)")

    phase("datasets")
    main = ensure_dataset(cfg, f"{plan.scale}_{plan.emails}", plan.emails, plan.accounts, plan.big_inbox, base,
                          progress)
    extra = [ensure_dataset(cfg, f"search_{n}", n, a, b, base, progress) for n, a, b in plan.search_volumes]
    copy = working_copy(cfg, main, base / "work", progress)
    sqlite_backend = postgres_backend = None
    try:
        with psycopg.connect(copy.conninfo, autocommit=True) as conn:
            conn.execute("SELECT mail.ensure_partitions()")  # the premake job's work: this month's partition
        settings = pool_settings(cfg)
        busy = cfg.raw["app"]["sqlite_busy_timeout_ms"]
        sqlite_backend = SQLiteBackend(copy.emails_db, copy.auth_db, busy_timeout_ms=busy)
        postgres_backend = PostgresBackend(copy.conninfo, settings)
        mails = templates()
        typical, typical_sizes = workloads.typical_inboxes(copy.emails_db)
        pool_kwargs = {"min_size": settings.min_size, "max_size": settings.max_size, "max_idle": settings.max_idle,
                       "timeout": settings.timeout, "connect_timeout": settings.connect_timeout,
                       "check": settings.check, "prepare": settings.prepare,
                       "group_writers": settings.group_writers, "group_max": settings.group_max}

        def spec(store: str, tag: str) -> WriterSpec:
            return WriterSpec(store=store, tag=f"{run.id[-6:]}.{tag}.{store}", templates=mails, inboxes=typical,
                              emails_db=str(copy.emails_db), auth_db=str(copy.auth_db), busy_timeout_ms=busy,
                              conninfo=copy.conninfo, pool=pool_kwargs)

        bench = Bench(plan, sqlite_backend, postgres_backend, spec, server, cfg.conninfo("postgres"), copy.conninfo,
                      copy.emails_db, mails, typical, progress)
        r: dict = {"run_id": run.id, "command": command, "plan": asdict(plan), "machine": machine(copy.conninfo),
                   "dataset": {"name": main.name, "sqlite_rows": main.sqlite_rows, "postgres_rows": main.postgres_rows,
                               "big_inbox": main.big_inbox, "kept_in": str(main.dir), "database": main.database},
                   "configuration": {"sqlite": sqlite_backend.status(), "postgres_pool": settings.as_dict(),
                                     "sqlite_pragmas": _sqlite_pragmas(copy.emails_db, busy)}}
        phase("1+7. one writer: insert latency and bytes written per email")
        r["single_writer"] = workloads.single_writer(bench)
        phase("2. an inbox's newest 100")
        r["inbox"] = workloads.inbox_reads(bench, typical)
        r["inbox"]["typical_sizes"] = typical_sizes
        phase("3. full-text search")
        grades = workloads.plant_judged_set(bench)
        r["ranking"] = workloads.ranking(bench, grades)
        r["search"] = [workloads.search(bench, {"sqlite": sqlite_backend, "postgres": postgres_backend},
                                        copy.emails_db, main.sqlite_rows)]
        for ds in extra:
            progress(f"   search volume {ds.name} (read-only, the kept dataset)")
            volume_sqlite = SQLiteBackend(ds.emails_db, ds.auth_db, busy_timeout_ms=busy)
            volume_pg = PostgresBackend(cfg.conninfo(ds.database), settings)
            try:
                r["search"].append(workloads.search(bench, {"sqlite": volume_sqlite, "postgres": volume_pg},
                                                    ds.emails_db, ds.sqlite_rows))
            finally:
                volume_sqlite.close()
                volume_pg.close()
        phase(f"4. concurrent writers {plan.writer_counts}")
        r["writers"] = workloads.concurrent_writers(bench)
        phase("5. ingest during retention")
        now, cutoff = retention_now(copy.emails_db)
        r["retention"] = workloads.retention(bench, now, cutoff)
        phase("6. ingest during a long read and during VACUUM/ANALYZE")
        r["long_read"] = workloads.long_read(bench)
        r["maintenance"] = workloads.maintenance(bench)
    finally:
        for backend in (sqlite_backend, postgres_backend):
            if backend is not None:
                backend.close()
        if not keep_work:
            drop_working_copy(cfg, copy)
    phase("8. verdicts, report, plots")
    r["key_metrics"] = verdict.key_metrics(r)
    r["issue_targets"] = verdict.issue_targets(r)
    r["claim"] = verdict.claim(r)
    r["seconds"] = round(time.monotonic() - started, 1)
    r["phase_started_s"] = {k: round(v - started, 1) for k, v in phases.items()}
    r["plots"] = [str(p.relative_to(cfg.root)) if p.is_relative_to(cfg.root) else str(p)
                  for p in plots.all_plots(r, run.dir)]
    run.write_json("bench.json", r)
    (run.dir / "bench.md").write_text(report.markdown(r))
    mark_latest(cfg.runs_dir, run)
    progress("")
    progress(report.terminal(r))
    progress("")
    progress(f"written: {run.dir / 'bench.json'}, {run.dir / 'bench.md'} (the tables for README), plots "
             f"{', '.join(Path(p).name for p in r['plots'])} in {run.dir} (runs/latest-bench links to it); "
             f"{r['seconds']:.0f} s in all")
    return r


def _sqlite_pragmas(emails_db: Path, busy: int) -> dict:
    backend_like = sqlite3.connect(emails_db, timeout=busy / 1000)
    try:
        backend_like.execute(f"PRAGMA busy_timeout={int(busy)}")
        return {name: backend_like.execute(f"PRAGMA {name}").fetchone()[0]
                for name in ("journal_mode", "synchronous", "busy_timeout", "page_size", "cache_size",
                             "wal_autocheckpoint")}
    finally:
        backend_like.close()


def cmd_bench(args, cfg) -> int:
    overrides = {}
    if args.writers:
        overrides["writer_counts"] = [int(w) for w in args.writers.split(",")]
    if args.writer_seconds:
        overrides["writer_seconds"] = args.writer_seconds
    if args.writer_processes:
        overrides["writer_processes"] = args.writer_processes
    if args.no_volume:
        overrides["search_volumes"] = []
    plan = plan_for(args.scale, quick=args.quick, **overrides)
    command = "mailmig bench " + " ".join(sys.argv[2:]) if len(sys.argv) > 2 else "mailmig bench"
    run_bench(cfg, plan, keep_work=args.keep_work, command=command.strip(), data_dir=args.data_dir)
    return 0


def add_commands(subparsers) -> None:
    p = subparsers.add_parser(
        "bench", help="SQLite against PostgreSQL through the store, side by side (make bench)",
        description="Runs both stores through mailmig.store on the same generated data (mailmig demo-data + "
                    "mailmig load, kept under data/bench/ and reused), on this machine, in one run: one "
                    "writer's insert latency and bytes written per email, an inbox's newest 100, full-text "
                    "search at the dataset's volume and a larger one (with a ranking judgment), 1/10/100/200 "
                    "concurrent writers, ingest during retention, a long read and VACUUM/ANALYZE; then the seed "
                    "plan's key metrics pass/MISSED and its '2-3x faster under load' claim as measured. Prints "
                    "the tables and writes runs/<run id>/bench.json, bench.md and PNG plots.")
    p.add_argument("--scale", choices=sorted(PLANS), default="small",
                   help="small (default: a few minutes) or seed (261,000 emails, and a 1,000,000-email search volume "
                        "built on first use: about 9 GB of SQLite plus PostgreSQL's tables, about 50 GB free "
                        "while it loads; the figures that count)")
    p.add_argument("--quick", action="store_true",
                   help="a smoke run under two minutes: small data, short phases, no second search volume")
    p.add_argument("--no-volume", action="store_true", help="skip the larger search volume")
    p.add_argument("--writers", help="comma-separated writer counts (default 1,10,100,200)")
    p.add_argument("--writer-seconds", type=float, help="seconds per concurrent-writer point")
    p.add_argument("--writer-processes", type=int,
                   help="processes the writers are spread over (default 4; PostgreSQL's pool is shared out)")
    p.add_argument("--data-dir", type=Path, help="where the datasets are kept and reused (default data/bench)")
    p.add_argument("--keep-work", action="store_true", help="keep the working copies (data/bench/work, *_work database)")
    p.set_defaults(func=cmd_bench)
