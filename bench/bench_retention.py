"""Benchmark of retention under ingest (issue 10, item 4): writers inserting through
mail.insert_email and readers calling mail.search_emails, once without retention and once
while mail.drop_expired_partitions drops a month of --rows emails, side by side in one run.

    make bench-retention                 # or: .venv/bin/python bench/bench_retention.py
    make bench-retention RETENTION_ARGS='--writers 50 --rows 30000 --seconds 20'

Prints, for each phase: inserts, errors, searches, insert latency (p50, p99) and the
longest insert stall (the slowest single mail.insert_email call, from send to commit);
for the retention phase also the longest stall of an insert that overlapped the
procedure, its duration and steps. Target: 0 errors, the longest stall with retention
below 100 ms. Uses a fresh database `mailmig_bench_retention` on the configured target
(the project-local cluster, started if needed). The defaults are the issue's: 50 writers,
a month of 30,000 emails.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from pathlib import Path

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import fresh_database  # noqa: E402

BENCH_DB = "mailmig_bench_retention"
EXPIRED_MONTH = "2019-10-01"
P_NOW = "2020-04-15 00:00+00"  # 90 days before it, October 2019 is wholly expired
TARGET_STALL_MS = 100
WORDS = ("parcel", "invoice", "meeting", "delivery", "account", "security", "welcome", "receipt")


def setup(dsn: str, rows: int) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("SELECT mail.ensure_partitions(3)")
        conn.execute("SELECT mail.ensure_partitions_for_months(ARRAY[%s]::date[])", (EXPIRED_MONTH,))
        started = time.monotonic()
        conn.execute(
            "INSERT INTO mail.emails (message_id, from_address, to_address, subject, body, raw_email, size, created_at) "
            "SELECT '<old-' || g || '@bench.test>', 'sender@example.com', 'inbox' || (g %% 500) || '@tempmail.test', "
            "       'Your ' || (ARRAY['parcel','invoice','meeting','receipt'])[1 + g %% 4] || ' number ' || g, "
            "       repeat(md5(g::text) || ' delivery account security welcome ', 25), 'raw', 1000, "
            "       %s::timestamptz + (g %% 2592000) * interval '1 second' "
            "FROM generate_series(1, %s) g", (EXPIRED_MONTH, rows))
        conn.execute("ANALYZE mail.emails")
        print(f"setup: {rows:,} emails in {EXPIRED_MONTH[:7]} in {time.monotonic() - started:.1f} s", flush=True)


async def writer(dsn: str, n: int, stop: asyncio.Event, pace: float, out: list, errors: list) -> None:
    async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
        i = 0
        while not stop.is_set():
            i += 1
            started = time.monotonic()
            try:
                await conn.execute(
                    "SELECT mail.insert_email(%s, 'sender@example.com', %s, %s, %s, NULL, NULL, 'raw', 3)",
                    (f"<w{n}-{i}-{time.time_ns()}@bench.test>", f"inbox{n}@tempmail.test",
                     f"{WORDS[i % len(WORDS)]} {i}", "a message body with some words " * 20))
                out.append((started, time.monotonic()))
            except psycopg.Error as exc:
                errors.append(f"insert: {exc}")
            await asyncio.sleep(pace)


async def reader(dsn: str, n: int, stop: asyncio.Event, out: list, errors: list) -> None:
    async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
        i = 0
        while not stop.is_set():
            i += 1
            started = time.monotonic()
            try:
                await (await conn.execute("SELECT count(*) FROM mail.search_emails(%s)",
                                          (WORDS[(n + i) % len(WORDS)],))).fetchone()
                out.append((started, time.monotonic()))
            except psycopg.Error as exc:
                errors.append(f"search: {exc}")
            await asyncio.sleep(0.1)


async def phase(dsn: str, args, with_retention: bool) -> dict:
    stop = asyncio.Event()
    inserts: list = []
    searches: list = []
    errors: list = []
    tasks = [asyncio.create_task(writer(dsn, n, stop, args.pace, inserts, errors)) for n in range(args.writers)]
    tasks += [asyncio.create_task(reader(dsn, n, stop, searches, errors)) for n in range(args.readers)]
    retention = {}
    await asyncio.sleep(args.warmup)
    if with_retention:
        async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
            started = time.monotonic()
            try:
                row = await (await conn.execute(
                    "CALL mail.drop_expired_partitions('90 days', %s, p_batch => %s, p_lock_timeout => %s)",
                    (P_NOW, args.batch, args.lock_timeout))).fetchone()
                retention["dropped"], retention["rows"] = row
            except psycopg.Error as exc:
                errors.append(f"retention: {exc}")
            retention["window"] = (started, time.monotonic())
            log = await (await conn.execute(
                "SELECT detach_attempts, guard_released, extract(epoch FROM dropped_at - detached_at) "
                "FROM mail.retention_log ORDER BY id DESC LIMIT 1")).fetchone()
            if log:
                retention["detach_attempts"], retention["guard_released"], retention["detached_to_dropped_s"] = log
        await asyncio.sleep(max(0.0, args.seconds - args.warmup - (retention["window"][1] - retention["window"][0])))
    else:
        await asyncio.sleep(args.seconds - args.warmup)
    stop.set()
    await asyncio.gather(*tasks)
    latencies = sorted(end - start for start, end in inserts)
    result = {
        "inserts": len(inserts), "errors": errors, "searches": len(searches),
        "p50_ms": 1000 * statistics.median(latencies) if latencies else None,
        "p99_ms": 1000 * latencies[int(0.99 * (len(latencies) - 1))] if latencies else None,
        "max_ms": 1000 * latencies[-1] if latencies else None,
        "search_max_ms": 1000 * max((e - s for s, e in searches), default=0),
    }
    if with_retention:
        lo, hi = retention["window"]
        during = [end - start for start, end in inserts if start < hi and end > lo]
        result.update(retention=retention, retention_s=hi - lo, inserts_during=len(during),
                      max_during_ms=1000 * max(during) if during else None)
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--writers", type=int, default=50, help="connections inserting (default 50)")
    parser.add_argument("--readers", type=int, default=5, help="connections searching (default 5)")
    parser.add_argument("--rows", type=int, default=30_000, help="emails of the month retention drops (default 30,000)")
    parser.add_argument("--seconds", type=float, default=20.0, help="length of each phase (default 20)")
    parser.add_argument("--warmup", type=float, default=3.0, help="seconds before retention starts (default 3)")
    parser.add_argument("--pace", type=float, default=0.1, help="seconds each writer waits between inserts (default 0.1)")
    parser.add_argument("--batch", type=int, default=5000, help="guard entries released per transaction (default 5000)")
    parser.add_argument("--lock-timeout", default="50 ms", help="retention's bound on each lock wait (default 50 ms)")
    args = parser.parse_args()

    dsn = fresh_database(BENCH_DB)
    setup(dsn, args.rows)
    print(f"load: {args.writers} writers (one mail.insert_email every {args.pace} s each), {args.readers} readers "
          f"(mail.search_emails every 0.1 s each), {args.seconds:.0f} s per phase", flush=True)
    without = asyncio.run(phase(dsn, args, with_retention=False))
    print("phase 1 (without retention) done", flush=True)
    with_ = asyncio.run(phase(dsn, args, with_retention=True))
    print("phase 2 (with retention) done", flush=True)

    def fmt(value, unit=""):
        return "-" if value is None else (f"{value:,.1f}{unit}" if isinstance(value, float) else f"{value:,}{unit}")

    rows = [
        ("inserts", fmt(without["inserts"]), fmt(with_["inserts"])),
        ("errors", fmt(len(without["errors"])), fmt(len(with_["errors"]))),
        ("searches", fmt(without["searches"]), fmt(with_["searches"])),
        ("insert latency p50", fmt(without["p50_ms"], " ms"), fmt(with_["p50_ms"], " ms")),
        ("insert latency p99", fmt(without["p99_ms"], " ms"), fmt(with_["p99_ms"], " ms")),
        ("longest insert stall", fmt(without["max_ms"], " ms"), fmt(with_["max_ms"], " ms")),
        ("longest stall during the retention call", "-", fmt(with_["max_during_ms"], " ms")),
        ("longest search", fmt(without["search_max_ms"], " ms"), fmt(with_["search_max_ms"], " ms")),
    ]
    width = max(len(r[0]) for r in rows)
    print()
    print(f"{'':<{width}}  {'without retention':>20}  {'with retention':>20}")
    for name, a, b in rows:
        print(f"{name:<{width}}  {a:>20}  {b:>20}")
    r = with_["retention"]
    print()
    print(f"retention: dropped {r.get('dropped')} ({fmt(r.get('rows'))} rows) in {with_['retention_s']:.2f} s; "
          f"detach attempts {r.get('detach_attempts')}, guard entries released {fmt(r.get('guard_released'))} "
          f"in batches of {args.batch:,}; {with_['inserts_during']:,} inserts overlapped the call")
    for errors in (without["errors"], with_["errors"]):
        for e in errors[:5]:
            print(f"  error: {e}")
    ok = not without["errors"] and not with_["errors"] and with_["max_ms"] is not None \
        and with_["max_ms"] < TARGET_STALL_MS and r.get("rows") == args.rows
    print(f"target: 0 errors and the longest insert stall with retention < {TARGET_STALL_MS} ms, the month "
          f"dropped whole: {'met' if ok else 'NOT met'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
