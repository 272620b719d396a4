"""The store's group commit at W writers: saves/s and latency for each setting, side by side.

    make bench-group-commit                    # SCALE=small by default; SCALE=seed for the figures that count
    .venv/bin/python bench/bench_group_commit.py --scale seed --writers 100 --seconds 15

W writer threads in one process (the service is one process) save emails through
PostgresBackend.save_email as fast as they can (closed loop), once per setting of
`app.group_commit_writers` / `group_commit_max` (0 = one statement per save), each on a
fresh clone of the database `make bench SCALE=...` built (mailmig_bench_<scale>_<n>: run
it first). Prints per setting: saves/s, p50/p95/p99/max ms, errors, the server's CPU
(all postgres processes, 200% = two cores), groups written. This is where README's
"Why the 100-writer p99 misses 50 ms" settings come from.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import psycopg
from psycopg import sql

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import cluster_conninfo  # noqa: E402

from mailmig.bench.datasets import clone_database  # noqa: E402
from mailmig.bench.mail import templates  # noqa: E402
from mailmig.bench.stats import summarize  # noqa: E402
from mailmig.bench.sysio import ServerProcesses  # noqa: E402
from mailmig.bench.writers import OK, WriterSpec, run_writers  # noqa: E402
from mailmig.config import load_config  # noqa: E402

DATASETS = {"small": "mailmig_bench_small_5000", "seed": "mailmig_bench_seed_261000"}
WORK_DB = "mailmig_bench_group_commit"
SETTINGS = [(0, 25), (1, 25), (2, 25), (3, 25), (4, 25), (4, 12)]


def clone(source: str) -> str:
    admin = cluster_conninfo("postgres")
    with psycopg.connect(admin, autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (source,)).fetchone():
            raise SystemExit(f"bench_group_commit: database {source} does not exist: run `make bench SCALE=...` first")
    clone_database(admin, source, WORK_DB)
    dsn = cluster_conninfo(WORK_DB)
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("SELECT mail.ensure_partitions()")
    return dsn


def drop() -> None:
    with psycopg.connect(cluster_conninfo("postgres"), autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(WORK_DB)))


def inboxes(dsn: str) -> list[str]:
    with psycopg.connect(dsn) as conn:
        return [r[0] for r in conn.execute(
            "SELECT to_address FROM mail.emails WHERE to_address LIKE '%%@%%' AND length(to_address) < 200 "
            "GROUP BY to_address ORDER BY count(*) DESC OFFSET 1 LIMIT 200")]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scale", choices=sorted(DATASETS), default="small")
    parser.add_argument("--writers", type=int, default=100)
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--processes", type=int, default=1, help="writer processes (default 1, as the service)")
    args = parser.parse_args()
    cfg = load_config()
    postmaster = cfg.cluster().pid() if cfg.is_local else None
    server = ServerProcesses(postmaster)
    mails = templates()
    rows = []
    try:
        for group_writers, group_max in SETTINGS:
            dsn = clone(DATASETS[args.scale])
            pool = {"min_size": 1, "max_size": 20, "max_idle": 30, "timeout": 2, "connect_timeout": 2,
                    "check": True, "prepare": True, "group_writers": group_writers * args.processes,
                    "group_max": group_max}
            spec = WriterSpec(store="postgres", tag=f"gc{group_writers}.{group_max}", templates=mails,
                              inboxes=inboxes(dsn), conninfo=dsn, pool=pool)
            print(f"group_commit_writers {group_writers}, group_commit_max {group_max}: {args.writers} writers "
                  f"for {args.seconds:g} s ...", flush=True)
            run = run_writers(spec, args.writers, args.processes, duration=args.seconds, server=server)
            ok = [lat for _, lat, code in run.records if code == OK]
            stats = summarize(ok)
            groups = [p["group_commit"] for p in run.processes if p.get("group_commit")]
            row = {"writers": group_writers, "max": group_max, "per_s": len(ok) / run.window_seconds,
                   "errors": len(run.records) - len(ok), **stats,
                   "server_pct": 100 * run.server["cpu_seconds"] / run.window_seconds if run.server else None,
                   "groups": sum(g["groups"] for g in groups)}
            rows.append(row)
            print(f"   {row['per_s']:,.0f} saves/s, p50 {stats['p50_ms']} ms, p99 {stats['p99_ms']} ms, "
                  f"{row['errors']} errors", flush=True)
    finally:
        drop()
    print(f"\n{args.writers} writers, {args.processes} process(es), {args.seconds:g} s each, "
          f"{args.scale} dataset (a fresh clone per setting)")
    print(f"{'group_commit_writers':>20} {'max':>4} {'saves/s':>8} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} "
          f"{'max ms':>8} {'errors':>6} {'server CPU':>10} {'groups':>7}")
    for r in rows:
        cpu = f"{r['server_pct']:.0f}%" if r["server_pct"] is not None else "-"
        print(f"{r['writers']:>20} {r['max']:>4} {r['per_s']:>8,.0f} {r['p50_ms']:>8} {r['p95_ms']:>8} "
              f"{r['p99_ms']:>8} {r['max_ms']:>8} {r['errors']:>6} {cpu:>10} {r['groups']:>7}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
