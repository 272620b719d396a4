"""Benchmark of the live sync (issue 12): three figures, side by side, in one run.

    make bench-sync SCALE=seed      # or: .venv/bin/python bench/bench_sync.py --scale seed

1. capture overhead: the app's insert of one email (BEGIN IMMEDIATE, INSERT ... ON CONFLICT
   (message_id) DO NOTHING, its FTS5 entry, COMMIT; a connection set up as the app's) timed
   one by one, the same loop without and with the capture triggers, in alternating rounds
   on a copy of the dataset's emails.db; p50 and p99 per insert. Once as the app runs
   (synchronous=FULL, SQLite's default: an fsync per commit) and once with
   synchronous=NORMAL, where no fsync hides the triggers' own cost.
2. sync throughput: capture installed, the dataset loaded (--loader copy), then a backlog
   of mixed changes written to the files (70% inserts of new emails, 20% flag updates and
   10% deletes of random existing emails: 100,000 at SCALE=seed, 10,000 at small) and
   applied by one `mailmig sync`; changes/s against the load's merge of the emails
   (rows/s of its `merge emails` stage, measured in the same run).
3. --follow lag: `mailmig sync --follow` running while a writer process receives 28
   emails/s (100x the seed's rate) plus flag updates (10/s); per change, the time from
   the change (its `at` in the changelog) to the commit that applied it (p50/p99, the
   follower's report), and the heartbeat's lag (age of the oldest unapplied change)
   sampled twice a second. Target: p99 under 1 s.

Uses data/bench/<scale>/ (generated once, shared with the other benchmarks), copied to
data/bench/sync-<scale>/ (capture changes the files); the database `mailmig_bench_sync` on
the configured target (the project-local cluster, started if needed).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import PROJECT, dataset, fresh_database  # noqa: E402

import psycopg  # noqa: E402

from mailmig import capture, sync  # noqa: E402
from mailmig.config import load_config  # noqa: E402
from mailmig.console import table  # noqa: E402
from mailmig.legacy_app import EMAIL_COLUMNS, INSERT_EMAIL, LegacyApp  # noqa: E402
from mailmig.load import run_load  # noqa: E402
from mailmig.mapping import load_mapping  # noqa: E402

BENCH_DB = "mailmig_bench_sync"
BACKLOG = {"small": 10_000, "seed": 100_000}
FOLLOW_SECONDS = {"small": 20, "seed": 60}
INSERTS = {"small": 1000, "seed": 2000}  # per variant of the capture overhead, per setting
TABLES = load_mapping()


def percentile(values, q):
    data = sorted(values)
    return data[min(len(data) - 1, round(q / 100 * (len(data) - 1)))] if data else None


def ms(seconds):
    return None if seconds is None else round(seconds * 1000, 3)


# 1. capture overhead --------------------------------------------------------------------
def insert_timings(app: LegacyApp, n: int) -> list[float]:
    times = []
    for _ in range(n):
        started = time.perf_counter()
        app.insert_email()
        times.append(time.perf_counter() - started)
    return times


def capture_overhead(emails: Path, auth: Path, inserts: int, rounds: int = 10) -> list[dict]:
    results = []
    for synchronous in ("FULL", "NORMAL"):
        app = LegacyApp(emails, auth, seed=random.SystemRandom().getrandbits(32))
        app.emails.execute(f"PRAGMA synchronous = {synchronous}")
        per = {"without": [], "with": []}
        insert_timings(app, 50)  # warm the page cache and the statement cache
        for _ in range(rounds):  # alternating, so that drift of the machine hits both alike
            for variant in ("without", "with"):
                if variant == "with":
                    capture.install(emails, capture.tables_of(TABLES, "emails_db"))
                per[variant] += insert_timings(app, inserts // rounds)
                if variant == "with":
                    capture.uninstall(emails, capture.tables_of(TABLES, "emails_db"))
        app.close()
        for variant, times in per.items():
            results.append({"synchronous": synchronous, "triggers": variant, "inserts": len(times),
                            "p50_ms": ms(percentile(times, 50)), "p99_ms": ms(percentile(times, 99)),
                            "mean_ms": ms(statistics.fmean(times))})
    return results


# 2. throughput ----------------------------------------------------------------------------
def make_backlog(emails: Path, changes: int) -> dict:
    """70% inserts, 20% flag updates, 10% deletes, in random order, in transactions of 1,000.
    Updates and deletes pick among the rows that exist at that moment (new ones included)."""
    app = LegacyApp(emails, None, seed=random.SystemRandom().getrandbits(32))
    conn = app.emails
    rng = random.Random(7)
    ids = [r[0] for r in conn.execute("SELECT id FROM emails")]
    plan = ["insert"] * int(changes * 0.7) + ["update"] * int(changes * 0.2) + ["delete"] * int(changes * 0.1)
    rng.shuffle(plan)
    started = time.monotonic()
    for start in range(0, len(plan), 1000):
        conn.execute("BEGIN IMMEDIATE")
        for op in plan[start:start + 1000]:
            if op == "insert" or not ids:
                row = app._email_values()
                cur = conn.execute(INSERT_EMAIL, [row[c] for c in EMAIL_COLUMNS if c != "id"])
                if cur.rowcount:
                    ids.append(cur.lastrowid)
            elif op == "update":
                conn.execute("UPDATE emails SET is_read = CASE WHEN is_read = 1 THEN 0 ELSE 1 END WHERE id = ?",
                             (ids[rng.randrange(len(ids))],))
            else:
                i = rng.randrange(len(ids))
                ids[i], ids[-1] = ids[-1], ids[i]
                conn.execute("DELETE FROM emails WHERE id = ?", (ids.pop(),))
        conn.execute("COMMIT")
    logged = conn.execute("SELECT count(*) FROM mailmig_changelog").fetchone()[0]
    app.close()
    return {"planned": len(plan), "changelog_rows": logged, "seconds": round(time.monotonic() - started, 1)}


# 3. follow ------------------------------------------------------------------------------
def follow_lag(dsn: str, emails: Path, auth: Path, runs: Path, seconds: float, rate: float, updates: float) -> dict:
    env = {**os.environ, "POSTGRES_DSN": dsn, "MAILMIG_RUNS_DIR": str(runs)}
    env.pop("MAILMIG_FAULTS", None)
    follower = subprocess.Popen([str(PROJECT / ".venv" / "bin" / "mailmig"), "sync", "--follow",
                                 "--emails-db", str(emails), "--auth-db", str(auth)],
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, cwd=PROJECT)
    lines = []
    reader = threading.Thread(target=lambda: lines.extend(follower.stdout), daemon=True)
    reader.start()
    deadline = time.monotonic() + 60
    while not any("following" in line for line in list(lines)):
        if follower.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError("the follower did not start:\n" + "".join(lines))
        time.sleep(0.1)
    samples = []
    stop = threading.Event()

    def sample():
        with psycopg.connect(dsn, autocommit=True) as conn:
            while not stop.wait(0.5):
                for source, lag in conn.execute("SELECT source, lag_seconds FROM migration.sync_status(clock_timestamp())"):
                    if source == "emails_db" and lag is not None:
                        samples.append(lag)

    sampler = threading.Thread(target=sample, daemon=True)
    writer = subprocess.Popen([sys.executable, "-m", "mailmig.legacy_app", "--emails-db", str(emails),
                               "--auth-db", str(auth), "--emails-per-s", str(rate), "--updates-per-s", str(updates),
                               "--seconds", str(seconds)], stdout=subprocess.PIPE, text=True)
    sampler.start()
    out, _ = writer.communicate()
    written = json.loads(out.strip().splitlines()[-1])
    sync.drain(dsn, emails, auth, runs, dict(load_config().raw["sync"]), timeout=60)
    stop.set()
    sampler.join()
    follower.send_signal(signal.SIGTERM)
    follower.wait(timeout=60)
    reader.join(timeout=10)
    if follower.returncode != 0:
        raise RuntimeError("the follower failed:\n" + "".join(lines))
    report_line = [line for line in lines if line.startswith("report: ")][-1]
    report = json.loads(Path(report_line.split(" ", 1)[1].strip()).read_text())
    latency = report["latency_seconds"]
    return {"seconds": seconds, "emails_per_s": rate, "updates_per_s": updates, "written": written,
            "changes_applied": report["totals"]["changes"], "latency": latency,
            "lag_samples": len(samples), "lag_p50": percentile(samples, 50), "lag_p99": percentile(samples, 99),
            "lag_max": max(samples) if samples else None,
            "progress_lines": [line.rstrip() for line in lines if "follow:" in line][-3:]}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scale", choices=("small", "seed"), default="small")
    parser.add_argument("--changes", type=int, help="the backlog of part 2 (default 10,000 small, 100,000 seed)")
    parser.add_argument("--follow-seconds", type=float, help="length of part 3 (default 20 small, 60 seed)")
    parser.add_argument("--rate", type=float, default=28.0, help="emails/s of part 3's writer (default 28)")
    parser.add_argument("--updates", type=float, default=10.0, help="flag updates/s of part 3's writer (default 10)")
    args = parser.parse_args()
    changes = args.changes or BACKLOG[args.scale]
    follow_seconds = args.follow_seconds or FOLLOW_SECONDS[args.scale]
    started = time.monotonic()
    load_average = os.getloadavg()
    print(f"bench-sync at SCALE={args.scale}; load average at the start {load_average[0]:.2f} "
          f"(2 cores: a busy machine shows in every figure)", flush=True)

    source = dataset(args.scale)
    work = PROJECT / "data" / "bench" / f"sync-{args.scale}"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    for name in ("emails.db", "auth.db"):
        shutil.copyfile(source / name, work / name)
    emails, auth, runs = work / "emails.db", work / "auth.db", work / "runs"

    print(f"\n== 1. capture overhead on the app's insert ({INSERTS[args.scale]:,} inserts per variant)", flush=True)
    overhead = capture_overhead(emails, auth, INSERTS[args.scale])
    print(table(["synchronous", "triggers", "inserts", "p50 ms", "p99 ms", "mean ms"],
                [[r["synchronous"], r["triggers"], r["inserts"], r["p50_ms"], r["p99_ms"], r["mean_ms"]]
                 for r in overhead]))

    print(f"\n== 2. sync throughput: capture, load, a backlog of {changes:,} mixed changes, one sync", flush=True)
    dsn = fresh_database(BENCH_DB)
    capture.install(emails, capture.tables_of(TABLES, "emails_db"))
    capture.install(auth, capture.tables_of(TABLES, "auth_db"))
    loaded = run_load(dsn, emails, auth, runs, loader="copy", progress=None)
    if not loaded.ok:
        print(f"the load failed: {loaded.report.get('error')}", file=sys.stderr)
        return 1
    merge = next(s for s in loaded.report["stages"] if s["stage"] == "merge emails")
    print(f"   load: merge emails {merge['rows']:,} rows in {merge['seconds']:.1f} s = {merge['rows_per_s']:,} rows/s",
          flush=True)
    backlog = make_backlog(emails, changes)
    print(f"   backlog: {backlog['changelog_rows']:,} changelog rows written in {backlog['seconds']} s", flush=True)
    settings = dict(load_config().raw["sync"])
    synced = sync.run_sync(dsn, emails, auth, runs, settings,
                           progress=lambda line: print(line, flush=True) if line.startswith("   batch") else None)
    if not synced.ok:
        print(f"the sync failed: {synced.report.get('error')}", file=sys.stderr)
        return 1
    totals = synced.report["totals"]
    phases = {}
    for batch in synced.report["batches"]:
        for name, seconds in batch["phases"].items():
            phases[name] = phases.get(name, 0) + seconds
    print(f"   sync: {totals['changes']:,} changes ({totals['keys']:,} keys: {totals['loaded']:,} loaded, "
          f"{totals['deleted']:,} deleted, {totals['rejected']:,} rejected) in {synced.report['apply_seconds']:.1f} s "
          f"= {synced.report['changes_per_s']:,} changes/s; batches of {settings['batch_rows']:,}; time in "
          + ", ".join(f"{k} {v:.1f} s" for k, v in phases.items()), flush=True)

    print(f"\n== 3. --follow under a writer: {args.rate:g} emails/s + {args.updates:g} flag updates/s for "
          f"{follow_seconds:g} s", flush=True)
    follow = follow_lag(dsn, emails, auth, runs, follow_seconds, args.rate, args.updates)
    for line in follow["progress_lines"]:
        print(line)
    lat = follow["latency"]

    keys_per_s = round(totals["keys"] / synced.report["apply_seconds"]) if synced.report["apply_seconds"] else None
    full = {r["triggers"]: r for r in overhead if r["synchronous"] == "FULL"}
    normal = {r["triggers"]: r for r in overhead if r["synchronous"] == "NORMAL"}
    print("\n== bench-sync, side by side (one run)")
    print(table(["what", "measured", "against", "target"], [
        ["capture: insert p50 / p99 ms (synchronous=FULL, as the app)",
         f"{full['with']['p50_ms']} / {full['with']['p99_ms']} with triggers",
         f"{full['without']['p50_ms']} / {full['without']['p99_ms']} without", "-"],
        ["capture: insert p50 / p99 ms (synchronous=NORMAL)",
         f"{normal['with']['p50_ms']} / {normal['with']['p99_ms']} with triggers",
         f"{normal['without']['p50_ms']} / {normal['without']['p99_ms']} without", "-"],
        [f"sync: {totals['changes']:,} mixed changes (70/20/10)",
         f"{synced.report['changes_per_s']:,} changes/s ({keys_per_s:,} keys/s)",
         f"load's merge of the emails {merge['rows_per_s']:,} rows/s", "-"],
        [f"--follow: change to commit, {follow['changes_applied']:,} changes",
         f"p50 {lat['p50']:.3f} s, p99 {lat['p99']:.3f} s, max {lat['max']:.3f} s", "-", "p99 < 1 s"],
        ["--follow: heartbeat lag, sampled each 0.5 s",
         f"p50 {follow['lag_p50']:.3f} s, p99 {follow['lag_p99']:.3f} s ({follow['lag_samples']} samples)", "-",
         "p99 < 1 s"],
    ]))
    verdict = "met" if lat["p99"] is not None and lat["p99"] < 1.0 else "NOT met"
    print(f"\n--follow p99 target (< 1 s): {verdict}"
          + ("" if args.scale == "seed" else f" (SCALE={args.scale}; the issue's figures are SCALE=seed)"))
    result = {"scale": args.scale, "load_average_at_start": load_average, "capture_overhead": overhead,
              "load_merge_emails": merge, "backlog": backlog, "sync": {
                  "totals": totals, "apply_seconds": synced.report["apply_seconds"],
                  "changes_per_s": synced.report["changes_per_s"], "keys_per_s": keys_per_s, "phases": phases,
                  "batch_rows": settings["batch_rows"]},
              "follow": follow, "seconds": round(time.monotonic() - started, 1)}
    out = runs / "bench-sync.json"
    out.write_text(json.dumps(result, indent=2, default=str) + "\n")
    print(f"figures: {out} ({result['seconds']:.0f} s in all)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
